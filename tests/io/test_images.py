"""predict on pictures as people make them: transparent, dark on light, huge; and answers that show their doubt."""

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_one_line_error, cli, notes_of, off_centre

from gpunet.data import load_host
from gpunet.io.images import load_inputs
from gpunet.network import Network

Image = pytest.importorskip("PIL.Image")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def digits():
    """Three MNIST test digits (light on black, uint8 28x28) and their labels."""
    images, labels = load_host(ROOT / "data").test
    return images[:3].reshape(3, 28, 28), labels[:3]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.npz"
    train = ("train", "--device", "cpu", "--epochs", "1", "--seed", "0", "--eval", "none", "--save", path)
    run = cli(*train, "--data-dir", ROOT / "data", "--validation-size", "50000")  # 10,000 training images
    assert run.returncode == 0, run.stderr
    return path


def _rows(path, invert="auto"):
    with notes_of("gpunet") as notes:
        ((_, x, _),) = load_inputs([path], 784, invert=invert)
    return x, notes


def test_a_transparent_drawing_reads_its_alpha_as_the_ink(tmp_path, digits):
    """Black ink whose alpha is the stroke (a drawing app's export) reads as the digit light on black."""
    digit = digits[0][0]
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., 3] = digit  # ink only where the digit is; transparent elsewhere
    Image.fromarray(rgba, "RGBA").save(tmp_path / "drawn.png")
    Image.fromarray(digit).save(tmp_path / "plain.png")
    got, notes = _rows(tmp_path / "drawn.png")
    want, plain_notes = _rows(tmp_path / "plain.png")
    np.testing.assert_allclose(got, want, atol=1.5 / 255)
    assert notes == [] and plain_notes == []  # nothing to invert: the strokes are what is drawn


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_a_light_background_is_inverted_automatically_and_says_so(tmp_path, digits, mode):
    digit = digits[0][0]
    Image.fromarray(255 - digit).convert(mode).save(tmp_path / "ink.png")
    inverted, kept_light = [], []
    ((_, got, _),) = load_inputs([tmp_path / "ink.png"], 784, inverted=inverted)
    np.testing.assert_allclose(got, digit.reshape(1, 784) / 255.0, atol=1.5 / 255)
    assert inverted == [str(tmp_path / "ink.png")]  # for predict's one note
    ((_, kept, _),) = load_inputs([tmp_path / "ink.png"], 784, invert="no", inverted=kept_light)
    assert kept is None and kept_light == []  # no light ink on the light sheet: no digit


def test_predict_prints_the_top_three_normalised_activations(tmp_path, digits, model):
    for i, digit in enumerate(digits[0]):
        rgba = np.zeros((28, 28, 4), np.uint8)
        rgba[..., 3] = digit
        Image.fromarray(rgba, "RGBA").save(tmp_path / f"{i}.png")
    run = cli("predict", model, *[tmp_path / f"{i}.png" for i in range(3)])
    assert run.returncode == 0, run.stderr
    net = Network.load(model, device="cpu")
    out = np.asarray(net.outputs(digits[0].reshape(3, 784) / 255.0))
    lines = run.stdout.splitlines()
    assert len(lines) == 3 and run.stderr == ""
    for line, a in zip(lines, out):
        top = re.search(r"\.png: (\d)  \(top 3: (\d): ([\d.]+), (\d): ([\d.]+), (\d): ([\d.]+)\)", line).groups()
        order = np.argsort(-a)[:3]
        assert int(top[0]) == order[0]  # the network's answer on the digit itself, through a transparent picture
        for k in range(3):
            assert int(top[1 + 2 * k]) == order[k]
            assert float(top[2 + 2 * k]) == pytest.approx(a[order[k]] / a.sum(), abs=0.006)


# Damaged input: bombs, files without images, impossible headers
def _png_of_zeros(path, width, height):
    """A valid 1-bit grayscale PNG of width x height black pixels, built without holding the picture."""
    chunk = lambda kind, data: (  # noqa: E731
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    )
    row = bytes(1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def test_a_png_decompression_bomb_is_one_line(tmp_path, model):
    bomb = _png_of_zeros(tmp_path / "bomb.png", 20_000, 20_000)
    assert bomb.stat().st_size < 1 << 20
    assert_one_line_error(cli("predict", model, bomb), "bomb.png", "400000000 pixels", "too large")


def test_a_large_allowed_picture_is_read_without_a_warning(tmp_path, model):
    """Above Pillow's warning threshold (89 M pixels), below its limit: read, and no two-line warning."""
    big = _png_of_zeros(tmp_path / "big.png", 9_500, 9_500)
    run = cli("predict", model, big)  # the suite turns warnings into errors: a warning would fail here
    assert run.returncode == 0, run.stderr
    assert run.stderr == "" and re.match(r".*big\.png: no digit: the picture has no ink", run.stdout)


def test_an_idx_file_without_images_is_one_line(tmp_path, model):
    from helpers import write_idx

    empty = write_idx(tmp_path / "none.idx", np.zeros((0, 28, 28), np.uint8))
    assert_one_line_error(cli("predict", model, empty), "none.idx", "no images")


@pytest.mark.parametrize("shape", [(0, 2**32 - 1, 2**32 - 1), (3, 0, 28)], ids=str)
def test_an_idx_header_with_a_zero_and_huge_dimensions_is_one_line(tmp_path, model, shape):
    (tmp_path / "odd.idx").write_bytes(b"\0\0\x08\x03" + struct.pack(">3I", *shape))
    assert_one_line_error(cli("predict", model, tmp_path / "odd.idx"), "odd.idx", str(shape))


# Centring: the digit as MNIST's preprocessing made it
def row(path):
    ((_, x, _),) = load_inputs([path], 784)
    return x


def test_mnist_digits_are_already_centred_as_mnist_made_them(tmp_path, scaled_digits):
    """MNIST's own preprocessing is a fixed point: its scaled_digits come back unchanged."""
    for i, digit in enumerate(scaled_digits[0]):
        Image.fromarray(np.uint8(np.round(digit * 255))).save(tmp_path / f"{i}.png")
        np.testing.assert_allclose(row(tmp_path / f"{i}.png"), digit.reshape(1, 784), atol=0.5 / 255)


def test_the_paper_under_every_mnist_test_digit_is_black():
    """The background estimate leaves MNIST's own digits as they are: all 10,000 test digits (and every MNIST
    digit's box is 20 px in a 28 px field) hold no ink-free square half the picture's side of paper to lift."""
    from gpunet.io.images import background

    images, _ = load_host(ROOT / "data").test
    assert max(background(d / 255.0).max() for d in images.reshape(-1, 28, 28)) == 0


def test_an_off_centre_large_drawing_becomes_the_mnist_digit(tmp_path, scaled_digits):
    likeness = [np.corrcoef(row(off_centre(d, tmp_path / f"{i}.png")).ravel(), d.ravel())[0, 1]
                for i, d in enumerate(scaled_digits[0])]  # fmt: skip
    assert np.mean(likeness) > 0.9 and min(likeness) > 0.6, likeness


def test_a_pencil_digit_on_grey_paper_is_the_digit_on_black(tmp_path, scaled_digits):
    """The sheet's level is no ink: a digit drawn at 60 % contrast on grey paper is MNIST's digit."""
    digit = scaled_digits[0][0]
    Image.fromarray(np.uint8(np.round(200 - digit * 150))).save(tmp_path / "grey.png")
    np.testing.assert_allclose(row(tmp_path / "grey.png"), digit.reshape(1, 784), atol=1 / 255)
