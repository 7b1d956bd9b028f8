"""The GPU check's files: kept verdicts read bounded and typed, the report never written through a planted link,
a lock held by another check waited for, said and bounded (io/verdicts_file.py)."""

import dataclasses
import json
import os
import subprocess
import sys
import time

import pytest

from gpunet.errors import DataError
from gpunet.io import verdicts_file
from gpunet.kernels.cuda.verdicts import Verdict

TIMINGS = {"a": {"cuda": 0.01, "portable": 2, "cpu": 0.05, "cpu_kernel": "numba"}}
GOOD = Verdict(True, "H100", "2026-12-07", timings=TIMINGS, identity={"gpu": "H100"}, check_seconds=30.5).__dict__


def test_the_fields_read_are_the_verdicts_fields():
    assert verdicts_file.FIELDS.keys() == {f.name for f in dataclasses.fields(Verdict)}


def test_a_kept_verdict_reads_back(tmp_path):
    verdicts_file.write_json(tmp_path / "v.json", GOOD)
    assert verdicts_file.read_verdict(tmp_path / "v.json") == GOOD


# ---- damaged or planted verdicts: None, so the GPU is checked again --------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"passed": "false"},
        {"passed": 1},
        {"gpu": None},
        {"check_seconds": True},
        {"timings": {"a": {"cuda": "fast", "portable": 1, "cpu": 1}}},
        {"timings": {"a": {"cuda": -1, "portable": 1, "cpu": 1}}},
        {"timings": {"a": {"cuda": float("nan"), "portable": 1, "cpu": 1}}},
        {"timings": {"a": [1, 2]}},
        {"identity": "x"},
        {"extra": 1},
    ],
)
def test_a_verdict_of_the_wrong_types_is_none(tmp_path, change):
    (tmp_path / "v.json").write_text(json.dumps(GOOD | change))
    assert verdicts_file.read_verdict(tmp_path / "v.json") is None


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, "[]", "not json", '{"passed": true', "\udcff"],
    ids=["deep", "a-list", "garbage", "cut", "undecodable"],
)
def test_a_damaged_verdict_is_none(tmp_path, text):
    (tmp_path / "v.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    assert verdicts_file.read_verdict(tmp_path / "v.json") is None


def test_a_huge_verdict_is_not_read_whole(tmp_path):
    (tmp_path / "v.json").write_text(json.dumps(GOOD | {"gpu": "x" * (2 << 20)}))
    assert verdicts_file.read_verdict(tmp_path / "v.json") is None


def test_a_fifo_or_a_device_as_a_verdict_is_none_at_once(tmp_path):
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    start = time.monotonic()
    assert verdicts_file.read_verdict(tmp_path / "fifo.json") is None
    assert verdicts_file.read_verdict(tmp_path / "zero.json") is None
    assert verdicts_file.read_verdict(tmp_path / "missing.json") is None
    assert time.monotonic() - start < 5


# ---- the report -----------------------------------------------------------------------------------------------


def test_a_planted_link_at_the_reports_name_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    report = tmp_path / "cache" / "cuda-check-0123456789ab-report.txt"
    report.parent.mkdir()
    report.symlink_to(victim)
    assert verdicts_file.write_report(report, "the failure\n") == report
    assert victim.read_text() == "precious"
    assert not report.is_symlink() and report.read_text() == "the failure\n"


def test_a_report_that_cannot_be_written_in_the_cache_goes_to_a_new_temporary(tmp_path):
    where = verdicts_file.write_report(tmp_path / "no-folder" / "report.txt", "the failure\n")
    try:
        assert where.read_text() == "the failure\n" and where.parent != tmp_path / "no-folder"
    finally:
        where.unlink()


# ---- the lock ---------------------------------------------------------------------------------------------------


def hold_lock(path, seconds: float) -> subprocess.Popen:
    """Returns a process that holds ``path``'s lock for ``seconds``, once it holds it."""
    code = (
        "import sys, time; from gpunet.io import verdicts_file; from pathlib import Path\n"
        f"with verdicts_file.locked(Path({str(path)!r}), 0):\n"
        "    print('held', flush=True); time.sleep(float(sys.argv[1]))"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "held\n"
    return child


def test_a_check_waits_for_anothers_lock_and_says_so(tmp_path, capsys):
    path = tmp_path / "cache" / "v.json"
    child = hold_lock(path, 1.5)
    start = time.monotonic()
    with verdicts_file.locked(path, 30):
        assert time.monotonic() - start > 1  # it waited until the other let go
    child.wait()
    assert "waiting up to 30 s for another gpunet check" in capsys.readouterr().err


def test_the_wait_for_a_stopped_check_is_bounded(tmp_path, capsys):
    path = tmp_path / "cache" / "v.json"
    child = hold_lock(path, 30)
    try:
        start = time.monotonic()
        with pytest.raises(DataError, match="another gpunet check"):
            with verdicts_file.locked(path, 0.5):
                pass
        assert time.monotonic() - start < 10
    finally:
        child.kill()
        child.wait()
