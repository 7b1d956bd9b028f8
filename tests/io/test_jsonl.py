"""JSON-lines logs (io/jsonl.py). Damaged input: a log or sweep.jsonl line nested deep or grown long (someone else's
edit) is refused in one line naming the file and the line, in `gpunet plot` and `gpunet sweep --resume`; never a
RecursionError."""

import json

import pytest
from helpers import assert_one_line_error, cli

from gpunet.data import DataError
from gpunet.runs import read_log

MAX_JSON_LINE = 1 << 24  # gpunet.io.fs's limit, as docs/reliability.md states it

HOSTILE = {
    "200,000 [": "[" * 200_000,
    "a 100,000-deep object": '{"a":' * 100_000 + "1" + "}" * 100_000,
}


def _log(tmp_path, extra):
    path = tmp_path / "run.jsonl"
    manifest = {"type": "manifest", "settings": {"sizes": [784, 30, 10]}}
    epoch = {"type": "epoch", "epoch": 0, "accuracy": 0.5, "correct": 5, "total": 10}
    path.write_text("\n".join([json.dumps(manifest), json.dumps(epoch), extra]) + "\n")
    return path


# Damaged input: lines nested deep or grown long
@pytest.mark.parametrize("line", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_deep_line_in_a_log_is_one_line_naming_file_and_line(tmp_path, line):
    path = _log(tmp_path, line)
    with pytest.raises(DataError, match=rf"{path}, line 3: JSON nested too deep"):
        read_log(path)


@pytest.mark.parametrize("line", HOSTILE.values(), ids=HOSTILE.keys())
def test_plot_of_a_deep_line_is_one_line(tmp_path, line):
    pytest.importorskip("matplotlib")
    path = _log(tmp_path, line)
    assert_one_line_error(cli("plot", path, "-o", tmp_path / "p.png"), f"{path}, line 3", "nested")
    assert not (tmp_path / "p.png").exists()


def test_an_over_long_line_is_refused_before_it_is_parsed(tmp_path):
    path = _log(tmp_path, "[" + "1," * (MAX_JSON_LINE // 2) + "1]")
    with pytest.raises(DataError, match=r"line 3: a line of [\d,]+ characters, more than"):
        read_log(path)


def test_sweep_resume_of_a_deep_line_is_one_line(tmp_path):
    folder = tmp_path / "sweep"
    folder.mkdir()
    manifest = {"type": "manifest", "kind": "sweep", "settings": {}}
    (folder / "sweep.jsonl").write_text(json.dumps(manifest) + "\n" + '{"a":' * 100_000 + "1" + "}" * 100_000 + "\n")
    assert_one_line_error(cli("sweep", "--resume", folder), f"{folder / 'sweep.jsonl'}, line 2", "nested")


def test_a_line_within_pythons_depth_still_reads():
    from gpunet.io.fs import parse_json

    value = [[[{"k[": '"]\\"['}]]]
    assert parse_json(json.dumps(value), "x") == value


def test_the_limit_is_the_documented_one():
    import gpunet.io.fs

    assert gpunet.io.fs.MAX_JSON_LINE == MAX_JSON_LINE
