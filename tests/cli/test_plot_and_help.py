"""--help says what each flag does; plot refuses what it cannot draw or write, in one line."""

import json
import os
import re
import subprocess
import sys

import pytest
from helpers import ROOT, assert_one_line_error, cli, write_mnist_like

COMMANDS = ["train", "evaluate", "predict", "plot", "bench", "info"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_says_what_switches_do_not_their_stored_value(command):
    run = cli(command, "--help")
    assert run.returncode == 0
    flat = " ".join(run.stdout.split())
    assert not re.search(r"\(default: (True|False)\)", flat), flat


@pytest.mark.parametrize("command, default", [("train", "auto"), ("evaluate", "auto"), ("predict", "cpu"),
                                              ("plot", "cpu"), ("bench", "cpu")])  # fmt: skip
def test_every_device_flag_states_its_default(command, default):
    flat = " ".join(cli(command, "--help").stdout.split())
    device_help = flat[flat.rindex("--device DEVICE") :]
    assert f"default: {default}" in device_help[:300], device_help[:300]


def test_train_help_says_what_the_validation_size_defaults_to():
    flat = " ".join(cli("train", "--help").stdout.split())
    assert "(default: 10000; on --resume, the checkpoint's; not with --data)" in flat


@pytest.fixture
def logs(tmp_path):
    write_mnist_like(tmp_path / "d", 30, 10, rows=4, cols=4)
    common = ["train", "--device", "cpu", "--data-dir", tmp_path / "d", "--sizes", "16,10", "--epochs", "2",
              "--validation-size", "0"]  # fmt: skip
    assert cli(*common, "--eval", "none", "--log", tmp_path / "none.jsonl").returncode == 0
    assert cli(*common, "--log", tmp_path / "test.jsonl").returncode == 0
    return tmp_path


def test_a_log_with_nothing_scored_is_nothing_to_plot(logs):
    pytest.importorskip("matplotlib")
    run = cli("plot", logs / "none.jsonl", "-o", logs / "c.png")
    assert_one_line_error(run, "nothing to plot", "--eval")
    assert not (logs / "c.png").exists()


@pytest.mark.parametrize("suffix, magic", [(".jpg", b"\xff\xd8\xff"), (".jpeg", b"\xff\xd8\xff"),
                                           (".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml")])  # fmt: skip
def test_plot_writes_the_format_its_name_asks_for(logs, suffix, magic):
    pytest.importorskip("matplotlib")
    pytest.importorskip("PIL")
    run = cli("plot", logs / "test.jsonl", "-o", logs / f"c{suffix}")
    assert run.returncode == 0, run.stderr
    assert (logs / f"c{suffix}").read_bytes().startswith(magic)


@pytest.mark.parametrize("name", ["c.foo", "c", "c.png.part"])
def test_plot_refuses_a_format_it_cannot_tell_before_drawing(logs, name):
    run = cli("plot", logs / "test.jsonl", "-o", logs / name)
    assert_one_line_error(run, "-o", "picture format")
    assert not (logs / name).exists()


def test_plot_into_a_folder_is_one_line(logs):
    (logs / "out.png").mkdir()
    assert_one_line_error(cli("plot", logs / "test.jsonl", "-o", logs / "out.png"), "a folder")


@pytest.mark.parametrize(
    "line, fragment",
    [
        ({"type": "epoch", "seconds": 1.0}, "'epoch'"),
        ({"type": "epoch", "epoch": "2"}, "'epoch'"),
        ({"type": "epoch", "epoch": 2, "accuracy": "high"}, "'accuracy'"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_a_bad_log_line_names_the_file_and_the_line(logs, line, fragment):
    with open(logs / "test.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")
    run = cli("plot", logs / "test.jsonl", "-o", logs / "c.png")
    assert_one_line_error(run, "test.jsonl, line 4", fragment)


def test_a_log_that_is_not_text_is_one_line(logs):
    (logs / "bin.jsonl").write_bytes(b"\xff\xfe\x00junk")
    assert_one_line_error(cli("plot", logs / "bin.jsonl", "-o", logs / "c.png"), "bin.jsonl")


def test_a_matplotlib_backend_named_in_the_environment_is_not_gpunets(logs):
    pytest.importorskip("matplotlib")
    env = {**os.environ, "MPLBACKEND": "garbage", "PYTHONPATH": str(ROOT)}  # read once, when matplotlib is imported
    run = subprocess.run([sys.executable, "-m", "gpunet", "plot", logs / "test.jsonl", "-o", logs / "c.png"],
                         env=env, capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert (logs / "c.png").read_bytes().startswith(b"\x89PNG")


# Issue 30.12: plot without -o, the best epoch marked, the digits wrong with their output and index
def test_plot_without_o_draws_beside_the_log_or_the_model(logs, monkeypatch):
    pytest.importorskip("matplotlib")
    run = cli("plot", logs / "test.jsonl")
    assert run.returncode == 0 and f"drawn to {logs / 'test.png'}" in run.stderr, run.stderr
    assert (logs / "test.png").read_bytes().startswith(b"\x89PNG")
    monkeypatch.chdir(logs)
    assert "drawn to curves.png" in cli("plot", "test.jsonl", "test.jsonl").stderr
    assert (logs / "curves.png").exists()


def test_plot_marks_the_best_epoch(logs):
    pytest.importorskip("matplotlib")
    epochs = [json.loads(line) for line in (logs / "test.jsonl").read_text().splitlines()[1:]]
    best = max(epochs, key=lambda e: e["accuracy"])  # the first of equals
    assert cli("plot", logs / "test.jsonl", "-o", logs / "c.svg").returncode == 0
    svg = (logs / "c.svg").read_text()  # matplotlib names each text in a comment
    assert f"<!-- best: {100 * best['accuracy']:.2f} % at epoch {best['epoch']} -->" in svg


def test_plot_misclassified_titles_each_digit_with_its_index_and_output(logs):
    pytest.importorskip("matplotlib")
    import numpy as np

    from gpunet.book import reference
    from gpunet.data import load_host
    from gpunet.network import Network

    model = logs / "m.npz"
    train = ["train", "--device", "cpu", "--data-dir", logs / "d", "--sizes", "16,10", "--epochs", "1"]
    assert cli(*train, "--validation-size", "0", "--seed", "3", "--save", model).returncode == 0
    run = cli("plot", "--misclassified", model, "--data-dir", logs / "d", "--count", "3")
    assert f"drawn to {logs / 'm-misclassified.png'}" in run.stderr, run.stderr
    assert cli("plot", "--misclassified", model, "--data-dir", logs / "d", "-o", logs / "w.svg").returncode == 0
    svg = (logs / "w.svg").read_text()
    net = Network.load(model, device="cpu")
    weights = [np.asarray(w, np.float64) for w in net.weights]
    biases = [np.asarray(b, np.float64).reshape(-1, 1) for b in net.biases]
    book = reference.Network([16, 10], biases, weights)  # the book's per-example feedforward
    images, labels = load_host(logs / "d", validation_size=0).test
    titles = 0
    for i, (image, label) in enumerate(zip(images, labels)):
        a = book.feedforward(image.reshape(16, 1) / 255.0).ravel()
        if int(np.argmax(a)) != label:
            assert f"<!-- #{i}: true {label} -->" in svg  # the title's two lines
            assert f"<!-- net {np.argmax(a)} (output {a.max():.2f}) -->" in svg
            titles += 1
    assert titles and svg.count("<!-- #") == titles


def _plot_in_a_process(logs, names, **env):
    """``gpunet plot`` of the logs ``names`` (bytes: any file name Linux allows) in a process of its own."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    env.pop("MPLCONFIGDIR", None)
    args = [os.fsencode(logs / "test.jsonl").replace(b"test.jsonl", name) for name in names]
    for path in args:
        os.link(logs / "test.jsonl", path)
    return subprocess.run([sys.executable, "-m", "gpunet", "plot", *args, "-o", logs / "c.png"],
                          env=env, capture_output=True, text=True, errors="replace")  # fmt: skip


def test_log_names_with_an_escape_or_bytes_not_utf8_are_drawn_escaped(logs):
    pytest.importorskip("matplotlib")
    run = _plot_in_a_process(logs, [b"esc\x1b[31m.jsonl", b"latin\xe9.jsonl"], LC_ALL="C", PYTHONUTF8="0")
    assert run.returncode == 0 and run.stderr == "gpunet: curves of 2 runs drawn to " + str(logs / "c.png") + "\n", (
        run.stderr
    )  # no matplotlib traceback (a surrogate it cannot encode) nor warning (a glyph for ESC missing)
    assert (logs / "c.png").read_bytes().startswith(b"\x89PNG")


def test_a_plot_where_home_and_the_xdg_folders_cannot_be_written_says_only_what_it_drew(logs):
    pytest.importorskip("matplotlib")
    unusable = logs / "test.jsonl"  # a file: no folder can be made below it
    run = _plot_in_a_process(logs, [b"run.jsonl"], HOME=str(unusable), XDG_CONFIG_HOME=str(unusable),
                             XDG_CACHE_HOME=str(unusable))  # fmt: skip
    assert run.returncode == 0 and run.stderr == "gpunet: curves of 1 run drawn to " + str(logs / "c.png") + "\n", (
        run.stderr
    )
