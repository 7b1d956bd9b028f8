"""Issue 20.15: error lines name what the user typed or set: ./data, the picture's file, a labels file given as
images, $GPUNET_DATA; and predict classifies the pictures it can read when one of them is bad."""

import re

import numpy as np
import pytest
from helpers import assert_one_line_error, cli, write_idx, write_mnist_like

import gpunet.io.find

Image = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    write_mnist_like(folder, 40, 10)
    path = folder / "m.npz"
    train = ["train", "--device", "cpu", "--data-dir", folder, "--sizes", "784,10", "--epochs", "1"]
    assert cli(*train, "--validation-size", "10", "--eval", "none", "--save", path).returncode == 0
    return path


def test_the_current_folder_is_written_as_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GPUNET_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(gpunet.io.find, "checkout_data", lambda: [])  # as if installed from a wheel
    assert_one_line_error(cli("data", "info"), "no MNIST data in ./data, ")


def test_gpunet_data_says_it_is_set_and_where_it_points(tmp_path, monkeypatch):
    monkeypatch.setenv("GPUNET_DATA", str(tmp_path / "nonexistent"))
    for run in (cli("data", "info"), cli("train", "--device", "cpu", "--no-download")):
        assert_one_line_error(run, f"GPUNET_DATA is set to {tmp_path / 'nonexistent'}", "or unset it")
        assert "set GPUNET_DATA to" not in run.stderr


def test_a_fake_png_names_the_file_not_pillows_file_object(tmp_path, model):
    (tmp_path / "fake.png").write_bytes(b"this is text, not a picture")
    run = cli("predict", model, tmp_path / "fake.png")
    assert_one_line_error(run, f"{tmp_path / 'fake.png'}: not a picture Pillow can read")
    assert "BufferedReader" not in run.stderr


def test_a_labels_file_given_as_images_says_so(tmp_path, model):
    labels = write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(5, dtype=np.uint8))
    assert_one_line_error(cli("predict", model, labels), "t10k-labels-idx1-ubyte: holds 5 labels", "not images")


def test_predict_classifies_the_rest_and_reports_the_bad_one(tmp_path, model):
    for name in ("a", "c"):
        Image.fromarray(np.eye(28, dtype=np.uint8) * 255).save(tmp_path / f"{name}.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    run = cli("predict", model, tmp_path / "a.png", tmp_path / "bad.png", tmp_path / "c.png")
    assert_one_line_error(run, "bad.png", status=2)
    assert [re.sub(r":.*", "", line) for line in run.stdout.splitlines()] == [
        str(tmp_path / "a.png"),
        str(tmp_path / "c.png"),
    ]
