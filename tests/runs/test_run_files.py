"""The files a training run writes: checked before training, never silently overwritten, locked, no debris."""

import json
import os
import shutil
import subprocess

import pytest
from helpers import assert_one_line_error, train_small

from gpunet import Network
from gpunet.runs.manifest import git_info


@pytest.mark.parametrize(
    "flag, name, what",
    [
        ("--log", "model.npz", "not a gpunet log"),
        ("--save", "run.jsonl", "not a gpunet model"),
        ("--checkpoint", "notes.txt", "not a gpunet model"),
        ("--log", "notes.txt", "not a gpunet log"),
        ("--save", "model.npz", "another run"),
        ("--checkpoint", "model.npz", "--resume"),
        ("--log", "run.jsonl", "another run"),
    ],
)
def test_a_file_that_is_not_this_runs_is_not_overwritten_without_force(
    tmp_path, small_data, small_model, flag, name, what
):
    (tmp_path / "notes.txt").write_text("precious\n")
    before = (tmp_path / name).read_bytes()
    run = train_small(small_data, flag, tmp_path / name)
    assert_one_line_error(run, f"{flag} {tmp_path / name}", what, "--force")
    assert run.stdout == "" and (tmp_path / name).read_bytes() == before
    forced = train_small(small_data, flag, tmp_path / name, "--force")
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / name).read_bytes() != before


def test_the_same_file_as_log_and_model_is_refused(tmp_path, small_data):
    run = train_small(small_data, "--save", tmp_path / "x", "--log", tmp_path / "x")
    assert_one_line_error(run, "--log", "own name")


def test_the_manifest_records_the_run_and_its_data(tmp_path, small_data, small_model):
    manifest = json.loads((tmp_path / "run.jsonl").read_text().splitlines()[0])
    record = Network.load(small_model, device="cpu").record
    assert manifest["run"] == record["run"] and len(manifest["run"]) == 32
    assert sorted(manifest["data"].values()) == record["settings"]["data"]
    assert record["settings"]["validation_size"] == 0


git = shutil.which("git")


def commit_all(repo):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "x"], check=True, env=env)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


@pytest.mark.skipif(git is None, reason="needs git")
def test_the_git_commit_is_gpunets_own_with_a_dirty_flag(tmp_path):
    (tmp_path / "checkout" / "gpunet").mkdir(parents=True)
    (tmp_path / "checkout" / "gpunet" / "runs.py").write_text("x = 1\n")
    head = commit_all(tmp_path / "checkout")
    assert git_info(tmp_path / "checkout" / "gpunet") == {"git_commit": head, "git_dirty": False}
    (tmp_path / "checkout" / "gpunet" / "runs.py").write_text("x = 2\n")
    assert git_info(tmp_path / "checkout" / "gpunet") == {"git_commit": head, "git_dirty": True}


@pytest.mark.skipif(git is None, reason="needs git")
def test_a_copy_inside_another_repository_has_no_commit(tmp_path):
    (tmp_path / "project" / "venv" / "site-packages" / "gpunet").mkdir(parents=True)
    (tmp_path / "project" / "README").write_text("someone else's project\n")
    commit_all(tmp_path / "project")
    assert git_info(tmp_path / "project" / "venv" / "site-packages" / "gpunet") == {"git_commit": None}
