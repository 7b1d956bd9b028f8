"""Paths with a newline, a terminal escape, a line separator or an undecodable byte: the error is still one
line, the path written with Python escapes, through the one formatter (gpunet.errors.printable)."""

import os

import pytest
from helpers import assert_one_line_error, cli, write_mnist_like

from gpunet.errors import DataError, printable

ODD = [
    "new\nline",
    "esc\x1b[31mape",
    "sep\u2028arator",
    "tab\tand\rreturn",
    os.fsdecode(b"byte\xff"),
    "bidi\u202egpj.exe",
]
UNSHOWN = "\x1b\u2028\r\udcff\u202e\a"  # what must never reach a terminal raw


def test_printable_escapes_what_would_break_the_line_and_keeps_the_rest():
    assert printable("a\nb\x1b[1m\u2028\udcff é 日本 \\ ok") == "a\\nb\\x1b[1m\\u2028\\udcff é 日本 \\ ok"
    assert str(DataError("x\ny: not found")) == "x\\ny: not found"
    assert printable("a\u202eb\u2066c\u200bd") == "a\\u202eb\\u2066c\\u200bd"  # format characters: bidi, zero width
    assert printable("a\nb\tc\x07", keep="\n\t") == "a\nb\tc\\x07"


@pytest.mark.parametrize("odd", ODD)
def test_names_a_command_prints_on_stdout_are_escaped(tmp_path, odd):
    write_mnist_like(tmp_path / "data", 30, 10, rows=4, cols=4)
    folder = tmp_path / f"d{odd}"
    folder.mkdir()
    model, log = folder / "net.npz", folder / "run.jsonl"
    trained = cli("train", "--device", "cpu", "--epochs", "1", "--sizes", "16,10", "--validation-size", "0",
                  "--data-dir", tmp_path / "data", "--save", model, "--log", log)  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    runs = [trained, cli("evaluate", model, "--data-dir", tmp_path / "data"), cli("data", "info", "--data-dir", folder)]
    for run in runs:
        assert not any(c in run.stdout + run.stderr for c in UNSHOWN), (run.stdout, run.stderr)
    assert printable(odd, keep="\n\t") in trained.stdout  # a line break or tab in a name stays one (documented)


@pytest.mark.parametrize("odd", ODD)
def test_every_error_naming_an_odd_path_is_one_line(tmp_path, odd):
    folder = tmp_path / f"d{odd}"
    write_mnist_like(tmp_path / "data", 30, 10, rows=4, cols=4)
    model = tmp_path / "net.npz"
    trained = cli("train", "--device", "cpu", "--epochs", "1", "--sizes", "16,10", "--validation-size", "0",
                  "--data-dir", tmp_path / "data", "--save", model)  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    runs = [
        cli("train", "--device", "cpu", "--no-download", "--data-dir", folder),
        cli("data", "verify", "--data-dir", folder),
        cli("evaluate", folder / "model.npz"),
        cli("predict", model, folder / "digit.png"),
        cli("train", "--device", "cpu", "--epochs", "1", "--sizes", "16,10", "--validation-size", "0",
            "--data-dir", tmp_path / "data", "--save", folder / "net.npz"),
        cli("sweep", "--seeds", "1", "--epochs", "1", "--sizes", "16,10", "--validation-size", "0",
            "--data-dir", tmp_path / "data", "--out", folder / "out"),
        cli("plot", folder / "run.jsonl", "-o", tmp_path / "p.png"),
        cli("train", f"--bogus{odd}"),
    ]  # fmt: skip
    for run in runs:
        assert_one_line_error(run)
        assert printable(odd) in run.stderr or "--bogus" in run.stderr, run.stderr
        assert not any(c in run.stderr for c in UNSHOWN + "\t"), run.stderr
