"""Issue 20.8: predict says when a picture has no ink, and centres the digit as MNIST's preprocessing did (its
bounding box scaled into 20x20, its centre of mass at the centre of 28x28)."""

import re
from pathlib import Path

import numpy as np
import pytest
from helpers import cli, off_centre

Image = pytest.importorskip("PIL.Image")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.npz"
    train = ("train", "--device", "cpu", "--epochs", "1", "--seed", "0", "--eval", "none", "--save", path)
    assert cli(*train, "--data-dir", ROOT / "data").returncode == 0  # 50,000 images, one epoch: about 90 %
    return path


def test_an_off_centre_drawing_is_read_as_the_digit_itself(tmp_path, scaled_digits, model):
    for i, digit in enumerate(scaled_digits[0]):
        Image.fromarray(np.uint8(np.round(digit * 255))).save(tmp_path / f"{i}-mnist.png")
        off_centre(digit, tmp_path / f"{i}-drawn.png")
    answers = {}
    for kind in ("mnist", "drawn"):
        run = cli("predict", model, *[tmp_path / f"{i}-{kind}.png" for i in range(20)])
        assert run.returncode == 0, run.stderr
        answers[kind] = [int(d) for d in re.findall(r"\.png: (\d)", run.stdout)]
    agree = sum(a == b for a, b in zip(answers["mnist"], answers["drawn"]))
    assert len(answers["drawn"]) == 20 and agree >= 18, answers
    assert sum(a == label for a, label in zip(answers["drawn"], scaled_digits[1])) >= 17, answers


def blank_pictures(folder):
    Image.new("RGB", (300, 200), "white").save(folder / "white.png")
    Image.new("L", (300, 200), 0).save(folder / "black.png")
    Image.new("RGBA", (300, 200), (0, 0, 0, 0)).save(folder / "transparent.png")
    Image.new("RGBA", (300, 200), (255, 255, 255, 0)).save(folder / "white-transparent.png")
    speck = np.full((200, 300), 255, np.uint8)
    speck[100, 150] = speck[101, 150] = 0  # two dark pixels: almost no ink
    Image.fromarray(speck).save(folder / "speck.png")
    return ["white", "black", "transparent", "white-transparent", "speck"]


def test_a_picture_with_no_ink_gets_no_answer(tmp_path, model, scaled_digits):
    names = blank_pictures(tmp_path)
    strokes = np.zeros((28, 28, 4), np.uint8)
    strokes[..., :3] = 255
    strokes[..., 3] = np.uint8(np.round(scaled_digits[0][0] * 255))  # white strokes on transparency: the digit
    Image.fromarray(strokes, "RGBA").save(tmp_path / "white-on-transparent.png")
    run = cli("predict", model, *[tmp_path / f"{n}.png" for n in names], tmp_path / "white-on-transparent.png")
    assert run.returncode == 0 and run.stderr == "", run.stderr  # no "inverted" note for a blank white sheet
    lines = run.stdout.splitlines()
    for name, line in zip(names, lines):
        assert line == f"{tmp_path / name}.png: no digit: the picture has no ink (or almost none), nothing to classify"
    plain = cli("predict", model, "--no-invert", tmp_path / "white-on-transparent.png")
    assert lines[-1].split(":")[1] == plain.stdout.split(":")[1] and "(top 3: " in lines[-1]
