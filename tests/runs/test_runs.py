"""Runs that outlive the process: save/load, checkpoint and resume, Ctrl-C, evaluate, predict, logs, plots."""

import json
import re
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    MNIST,
    ROOT,
    assert_one_line_error,
    cli,
    synthetic_data,
    training_process,
    write_idx,
    write_mnist_like,
)

from gpunet import Network
from gpunet.data import DataError, load_host


def parameters(net):
    return [net.backend.to_host(a) for a in net.weights + net.biases]


def test_save_load_round_trip(backend, tmp_path, rng):
    x, y, _ = synthetic_data(rng, 40, 6, 3)
    net = Network([6, 5, 3], seed=4, device=backend, dtype="float64")
    net.SGD((backend.asarray(x, dtype=net.dtype), backend.asarray(y, dtype=net.dtype)), 2, 10, 3.0, callback=None)
    net.save(tmp_path / "m.npz", settings={"eta": 3.0})
    back = Network.load(tmp_path / "m.npz", device=backend)
    assert back.sizes == [6, 5, 3] and back.epoch == 2 and back.record == {"settings": {"eta": 3.0}}
    for got, want in zip(parameters(back), parameters(net)):
        assert got.dtype == np.float64 and np.array_equal(got, want)
    assert back.rng.permutation(10).tolist() == net.rng.permutation(10).tolist()


def test_a_model_moves_between_devices(tmp_path):
    from conftest import strict_backend

    net = Network([6, 4], seed=1, device="cpu", dtype="float32")
    net.save(tmp_path / "m.npz")
    elsewhere = Network.load(tmp_path / "m.npz", device=strict_backend("device1"))
    for got, want in zip(parameters(elsewhere), parameters(net)):
        assert np.array_equal(got, want)


def test_a_pickled_object_array_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, sizes=np.array([2, 1]), w0=np.array([object()], dtype=object))
    with pytest.raises(DataError, match="refused"):
        Network.load(path, device="cpu")


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not really a zip"])
def test_damaged_model_files_are_one_clear_error(tmp_path, content):
    (tmp_path / "m.npz").write_bytes(content)
    run = cli("evaluate", str(tmp_path / "m.npz"), "--device", "cpu")
    assert_one_line_error(run, "m.npz", "not a gpunet model")


@pytest.mark.parametrize("kernel", ["numba", "portable"])
def test_three_epochs_plus_three_resumed_equal_six(tmp_path, kernel):
    write_mnist_like(tmp_path / "d", 200, 40, rows=6, cols=6)
    common = ["--device", "cpu", "--data-dir", str(tmp_path / "d"), "--validation-size", "0", "--kernel", kernel]
    first = ["--sizes", "36,12,10", "--seed", "3", "--batch-size", "7"]
    assert cli("train", *common, *first, "--epochs", "6", "--save", str(tmp_path / "six.npz")).returncode == 0
    half = cli("train", *common, *first, "--epochs", "3", "--checkpoint", str(tmp_path / "ck.npz"))
    rest = cli(
        "train", *common, "--resume", str(tmp_path / "ck.npz"), "--epochs", "6", "--save", str(tmp_path / "resumed.npz")
    )
    assert half.returncode == 0 and rest.returncode == 0, rest.stderr
    assert re.findall(r"^Epoch (\d)", rest.stdout, re.M) == ["3", "4", "5"]
    six, resumed = (Network.load(tmp_path / f, device="cpu") for f in ("six.npz", "resumed.npz"))
    assert resumed.epoch == six.epoch == 6
    for got, want in zip(parameters(resumed), parameters(six)):
        assert np.array_equal(got, want)


def test_resume_takes_its_settings_from_the_checkpoint(tmp_path, mnist_like):
    args = ["--device", "cpu", "--data-dir", str(mnist_like("tiny")), "--validation-size", "0"]
    cli("train", *args, "--sizes", "16,10", "--epochs", "1", "--checkpoint", str(tmp_path / "ck.npz"))
    run = cli("train", *args, "--resume", str(tmp_path / "ck.npz"), "--eta", "1")
    assert_one_line_error(run, "--eta comes from the checkpoint")


def test_outputs_in_missing_folders_fail_before_training(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # where ./data is
    run = cli("train", "--device", "cpu", "--save", str(tmp_path / "no" / "m.npz"))
    assert_one_line_error(run, "--save", "does not exist")


def test_ctrl_c_keeps_the_last_complete_epoch_and_exits_130(tmp_path):
    """A real process and a real SIGINT; small epochs, so the signal may land while a checkpoint is written."""
    checkpoint, epochs = tmp_path / "ck.npz", 100_000
    write_mnist_like(tmp_path / "d", 2000, 10)
    args = [
        "train",
        "--device",
        "cpu",
        "--epochs",
        str(epochs),
        "--seed",
        "0",
        "--eval",
        "none",
        "--validation-size",
        "0",
        "--data-dir",
        str(tmp_path / "d"),
        "--checkpoint",
        str(checkpoint),
    ]
    proc = training_process(args, checkpoint)
    try:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and f"gpunet train --resume {checkpoint}" in err
    net = Network.load(checkpoint, device="cpu")
    assert net.epoch >= 1 and net.record["settings"]["epochs"] == epochs
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    run = cli(
        "train",
        "--device",
        "cpu",
        "--epochs",
        "2",
        "--seed",
        "0",
        "--data-dir",
        str(MNIST),
        "--save",
        str(folder / "m.npz"),
        "--log",
        str(folder / "run.jsonl"),
        "--monitor-cost",
    )
    assert run.returncode == 0, run.stderr
    return folder


def test_the_log_has_a_manifest_then_one_object_per_epoch(trained):
    lines = [json.loads(line) for line in (trained / "run.jsonl").read_text().splitlines()]
    manifest, epochs = lines[0], lines[1:]
    assert manifest["type"] == "manifest" and manifest["settings"]["sizes"] == [784, 30, 10]
    assert manifest["settings"]["seed"] == 0 and manifest["device"] == "cpu" and manifest["gpunet"]
    assert len(manifest["data"]) == 4 and all(len(h) == 64 for h in manifest["data"].values())
    assert manifest["bytes_pinned_on_device"] > 0
    assert [e["epoch"] for e in epochs] == [0, 1] and all(e["type"] == "epoch" for e in epochs)
    for e in epochs:
        assert e["accuracy"] == e["correct"] / e["total"] and e["seconds"] > 0 and 0 < e["training_cost"] < 0.5
    import gpunet

    checkout = Path(gpunet.__file__).resolve().parents[1]  # a run from this checkout records its commit
    if (checkout / ".git").exists():
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True).stdout
        assert manifest["git_commit"] == head.strip()


def test_evaluate_agrees_with_the_network(trained):
    net = Network.load(trained / "m.npz", device="cpu")
    host = load_host(MNIST)
    want = net.evaluate((host.test[0] / 255.0, host.test[1]))
    run = cli("evaluate", str(trained / "m.npz"), "--device", "cpu", "--data-dir", str(MNIST))
    assert run.returncode == 0, run.stderr
    assert f"{want} / 10000 correct" in run.stdout
    matrix = [list(map(int, line.split()[1:])) for line in run.stdout.splitlines()[-10:]]
    assert np.trace(matrix) == want and np.sum(matrix) == 10_000


def test_predict_on_a_png_matches_the_network_on_the_same_image(trained, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    net = Network.load(trained / "m.npz", device="cpu")
    images, labels = load_host(MNIST).test
    for i in (0, 1, 2):
        Image.fromarray(images[i].reshape(28, 28)).save(tmp_path / f"{i}.png")
        Image.fromarray(255 - images[i].reshape(28, 28)).save(tmp_path / f"{i}-dark-on-light.png")
    want = [int(d) for d in net.predict(images[:3] / 255.0)]
    plain = cli("predict", str(trained / "m.npz"), *[str(tmp_path / f"{i}.png") for i in range(3)])
    inverted = cli(
        "predict", str(trained / "m.npz"), "--invert", *[str(tmp_path / f"{i}-dark-on-light.png") for i in range(3)]
    )
    for run in (plain, inverted):
        assert run.returncode == 0, run.stderr
        assert [int(d) for d in re.findall(r"\.png: (\d)", run.stdout)] == want
    idx = write_idx(tmp_path / "three.idx", images[:3].reshape(3, 28, 28))
    from_idx = cli("predict", str(trained / "m.npz"), str(idx))
    assert [int(d) for d in re.findall(r"\]: (\d)", from_idx.stdout)] == want


def test_predict_on_an_unreadable_picture_is_one_line(trained, tmp_path):
    (tmp_path / "x.png").write_bytes(b"not a png")
    assert_one_line_error(cli("predict", str(trained / "m.npz"), str(tmp_path / "x.png")), "x.png")


def test_plots_are_pngs_of_the_expected_size(trained, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    pytest.importorskip("matplotlib")
    curves = cli("plot", str(trained / "run.jsonl"), "-o", str(tmp_path / "curves.png"))
    wrong = cli(
        "plot",
        "--misclassified",
        str(trained / "m.npz"),
        "--count",
        "18",
        "--data-dir",
        str(MNIST),
        "-o",
        str(tmp_path / "wrong.png"),
    )
    assert curves.returncode == 0 and wrong.returncode == 0, curves.stderr + wrong.stderr
    with Image.open(tmp_path / "curves.png") as image:
        assert image.format == "PNG" and image.size == (1200, 450)  # accuracy and cost side by side
    with Image.open(tmp_path / "wrong.png") as image:
        assert image.format == "PNG" and image.size == (1170, 300)  # 18 digits: 2 rows of 9
