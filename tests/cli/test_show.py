"""``gpunet show FILE`` (issue 30, item 9): a finished run's settings, seed, epochs, best and history, read from
its model, checkpoint or log, without plot or reading JSON."""

import json
import re

import pytest
from helpers import assert_one_line_error, cli, write_mnist_like

from gpunet.network import Network

SMALL = ["--device", "cpu", "--sizes", "64,8,4", "--validation-size", "20", "--kernel", "portable"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    write_mnist_like(folder / "data", 120, 40, rows=8, cols=8, n_classes=4)
    files = {"--checkpoint": folder / "c.npz", "--log": folder / "r.jsonl", "--save-best": folder / "b.npz"}
    flags = [str(a) for pair in files.items() for a in pair]
    trained = cli("train", "--data-dir", folder / "data", *SMALL, "--epochs", 4, "--eta", 8, "--seed", 2, *flags)
    assert trained.returncode == 0, trained.stderr
    return files, trained.stdout


def test_a_log_shows_its_settings_and_every_epoch_as_trained(run):
    files, transcript = run
    shown = cli("show", files["--log"])
    assert shown.returncode == 0, shown.stderr
    assert "seed 2" in shown.stdout and "eta 8.0" in shown.stdout and "kernel portable" in shown.stdout
    trained = re.findall(r"^(Epoch \d: \d+ / 40 \(\d+\.\d\d%\))", transcript, re.M)
    assert re.findall(r"^(Epoch \d: \d+ / 40 \(\d+\.\d\d%\))", shown.stdout, re.M) == trained
    best = re.search(r"^done: (best epoch \d: \d+ / 40 \(\d+\.\d\d%\))", transcript, re.M).group(1)
    assert best in shown.stdout


def test_a_model_shows_its_sizes_settings_and_best_epoch(run):
    files, transcript = run
    shown = cli("show", files["--save-best"])
    assert shown.returncode == 0, shown.stderr
    epoch = Network.load(files["--save-best"], device="cpu").epoch
    assert f"sizes [64, 8, 4] | float32 | {epoch} epochs trained" in shown.stdout
    assert "seed 2" in shown.stdout and f"best epoch {epoch - 1}:" in shown.stdout
    assert f"its log: {files['--log']}" in shown.stdout
    assert "4 epochs trained" in cli("show", files["--checkpoint"]).stdout


def test_show_escapes_what_the_file_says(tmp_path):
    log = tmp_path / "odd.jsonl"
    manifest = {"type": "manifest", "run": "x\x1b[2J\nEpoch 9: 1 / 1", "settings": {"seed": "\x1b]0;title\x07"}}
    log.write_text(json.dumps(manifest) + "\n")
    shown = cli("show", log)
    assert shown.returncode == 0 and "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert not any(line.startswith("Epoch 9") for line in shown.stdout.splitlines())


@pytest.mark.parametrize("name, content", [("notes.txt", b"hello\n"), ("m.npz", b"not a zip"), ("m.jsonl", b"[1]\n")])
def test_anything_else_is_one_line(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    assert_one_line_error(cli("show", tmp_path / name), name)


def test_a_network_saved_from_python_has_no_settings_and_says_so(tmp_path):
    net = Network([4, 3, 2], seed=1, device="cpu")
    net.save(tmp_path / "n.npz")
    shown = cli("show", tmp_path / "n.npz")
    assert shown.returncode == 0 and "sizes [4, 3, 2]" in shown.stdout, shown.stderr
    assert "settings: none recorded" in shown.stdout
