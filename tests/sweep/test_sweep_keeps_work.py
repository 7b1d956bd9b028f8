"""A sweep loses no one's work: --save-best goes through train's overwrite guard, --resume keeps --save-best,
and --out names a folder (issue 20, items 1, 2 and 6)."""

import csv
import json

import pytest
from helpers import assert_one_line_error, cli, write_mnist_like

from gpunet import Network
from gpunet.sweep import Sweep, outputs

SMALL = ["--sizes", "16,10", "--validation-size", "10", "--device", "cpu", "--epochs", "1"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    write_mnist_like(folder, 60, 20, rows=4, cols=4)
    return folder


def sweep(data_dir, *args):
    return cli("sweep", "--seeds", "1-2", "--data-dir", data_dir, *SMALL, *args)


def test_save_best_refuses_a_file_that_is_not_a_gpunet_model(data_dir, tmp_path):
    log = tmp_path / "run.jsonl"
    log.write_text('{"type": "manifest"}\n')
    assert_one_line_error(sweep(data_dir, "--save-best", log), f"--save-best {log}", "not a gpunet model", "--force")
    assert log.read_text() == '{"type": "manifest"}\n'
    forced = sweep(data_dir, "--save-best", log, "--force")
    assert forced.returncode == 0, forced.stderr
    assert Network.load(log, device="cpu").record["sweep"]["configuration"]


def test_save_best_refuses_another_runs_model(data_dir, tmp_path):
    other = tmp_path / "run.npz"
    trained = cli("train", "--data-dir", data_dir, *SMALL, "--checkpoint", other)
    assert trained.returncode == 0, trained.stderr
    before = other.read_bytes()
    assert_one_line_error(sweep(data_dir, "--save-best", other), "holds another run's model", "--force")
    assert other.read_bytes() == before
    several = sweep(data_dir, "--eta", "3,1", "--save-best", tmp_path / "run.npz")  # one file a configuration
    assert several.returncode == 0, several.stderr
    assert other.read_bytes() == before


def test_a_resumed_sweep_keeps_its_save_best_and_says_how_to_resume(data_dir, tmp_path, monkeypatch):
    import gpunet.sweep.runner as runner

    real = runner.run_chunk

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_chunk", interrupted)
    out = tmp_path / "out"
    best = out / "models" / "best.npz"  # inside the sweep's folder, as resume writes it
    best.parent.mkdir(parents=True)
    stopped = cli("sweep", "--seeds", "1-4", "--chunk", "2", "--data-dir", data_dir, *SMALL, "--out", out,
                  "--save-best", best)  # fmt: skip
    assert stopped.returncode == 130
    assert stopped.stderr.splitlines()[-1].endswith(f"  gpunet sweep --resume {out}")  # complete as printed
    monkeypatch.setattr(runner, "run_chunk", real)
    monkeypatch.chdir(best.parent)  # resumed from elsewhere: the path is kept whole
    resumed = cli("sweep", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr
    assert f"is in {best}" in resumed.stderr
    with (out / "networks.csv").open() as f:
        top = max(int(round(float(r["best_accuracy"]) * 20)) for r in csv.DictReader(f))
    assert Network.load(best, device="cpu").record["sweep"]["correct"] == top
    assert Sweep.resume(out).save_best == str(best)


def test_save_best_given_on_resume_replaces_the_kept_one(data_dir, tmp_path):
    out = tmp_path / "out"
    assert sweep(data_dir, "--out", out, "--save-best", tmp_path / "a.npz").returncode == 0
    assert cli("sweep", "--resume", out, "--save-best", tmp_path / "b.npz").returncode == 0
    assert (tmp_path / "b.npz").is_file()
    assert outputs.read(out)[0]["settings"]["save_best"] == str(tmp_path / "b.npz")  # kept for the next resume


def test_a_resumed_sweep_writes_no_save_best_its_folder_names_outside_it(data_dir, tmp_path, monkeypatch):
    import gpunet.sweep.runner as runner

    real = runner.run_chunk
    monkeypatch.setattr(runner, "run_chunk", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    out, victim = tmp_path / "received", tmp_path / "victim"
    victim.mkdir()
    stopped = cli("sweep", "--seeds", "1-4", "--chunk", "2", "--data-dir", data_dir, *SMALL, "--out", out)
    assert stopped.returncode == 130
    lines = (out / "sweep.jsonl").read_text().splitlines()
    head = json.loads(lines[0])
    head["settings"]["save_best"] = str(victim / "best.npz")  # the folder's author chose it
    (out / "sweep.jsonl").write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n")
    monkeypatch.setattr(runner, "run_chunk", real)
    resumed = cli("sweep", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr
    assert list(victim.iterdir()) == []
    assert f"--save-best {victim / 'best.npz'} is not inside {out}; not writing it" in resumed.stderr


def test_out_naming_a_file_is_one_line(data_dir, tmp_path):
    taken = tmp_path / "results.txt"
    taken.write_text("kept\n")
    assert_one_line_error(sweep(data_dir, "--out", taken), f"--out {taken}", "not a folder")
    assert taken.read_text() == "kept\n"
