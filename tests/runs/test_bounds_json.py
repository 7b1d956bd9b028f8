"""Issue 22.6: a log or sweep.jsonl line nested deep or grown long (someone else's edit) is refused in one line
naming the file and the line, in `gpunet plot` and `gpunet sweep --resume`; never a RecursionError."""

import json

import numpy as np
import pytest
from helpers import assert_one_line_error, cli

from gpunet.data import DataError
from gpunet.runs import read_log

MAX_JSON_DEPTH, MAX_JSON_LINE = 100, 1 << 24  # gpunet.io.fs's limits, as docs/reliability.md states them

HOSTILE = {
    "200,000 [": "[" * 200_000,
    "a 100,000-deep object": '{"a":' * 100_000 + "1" + "}" * 100_000,
    "101 levels": "[" * 101 + "]" * 101,
}


def _log(tmp_path, extra):
    path = tmp_path / "run.jsonl"
    manifest = {"type": "manifest", "settings": {"sizes": [784, 30, 10]}}
    epoch = {"type": "epoch", "epoch": 0, "accuracy": 0.5, "correct": 5, "total": 10}
    path.write_text("\n".join([json.dumps(manifest), json.dumps(epoch), extra]) + "\n")
    return path


@pytest.mark.parametrize("line", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_deep_line_in_a_log_is_one_line_naming_file_and_line(tmp_path, line):
    path = _log(tmp_path, line)
    with pytest.raises(DataError, match=rf"{path}, line 3: JSON nested more than {MAX_JSON_DEPTH} levels"):
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


def test_depth_ignores_brackets_inside_strings_and_matches_a_reference():
    """json_depth against a plain character-by-character scan, on random nestings with bracketed strings."""
    from gpunet.io.fs import json_depth, parse_json

    rng = np.random.default_rng(0)

    def reference(text):
        depth = best = 0
        inside = escaped = False
        for ch in text:
            if inside:
                inside, escaped = (inside, False) if escaped else (ch != '"', ch == "\\")
            elif ch == '"':
                inside = True
            elif ch in "[{":
                depth += 1
                best = max(best, depth)
            elif ch in "]}":
                depth -= 1
        return best

    for _ in range(50):
        value: object = ["[{", '"]\\"['][int(rng.integers(2))]
        for _ in range(int(rng.integers(0, 150))):
            value = [value, "[[["] if rng.random() < 0.5 else {"k[": value}
        text = json.dumps(value)
        depth = json_depth(text)  # exact above the limit; within it, at least the true depth
        assert depth == reference(text) if depth > MAX_JSON_DEPTH else depth >= reference(text)
        if reference(text) <= MAX_JSON_DEPTH:
            assert parse_json(text, "x") == value


def test_the_limits_are_the_documented_ones():
    import gpunet.io.fs

    assert (gpunet.io.fs.MAX_JSON_DEPTH, gpunet.io.fs.MAX_JSON_LINE) == (MAX_JSON_DEPTH, MAX_JSON_LINE)
