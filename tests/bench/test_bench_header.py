"""`bench` with no usable device exits 2 before timing anything; its header says what is measured
and names the peers that are not installed."""

import importlib.util

import fake_cupy
import pytest
from helpers import assert_one_line_error, cli

from gpunet.bench import peers
from gpunet.bench import timing as bench


@pytest.fixture
def data_dir(mnist_like):
    return mnist_like("tiny")


def nothing_may_be_timed(*args, **kwargs):
    raise AssertionError("timed something")


@pytest.mark.parametrize("devices", ["cuda", "cuda,cuda:1"])
def test_no_usable_device_is_one_line_and_exit_2_before_timing(data_dir, monkeypatch, devices):
    fake_cupy.install(monkeypatch, "missing")
    for timer in ("time_book", "time_network", "time_peer"):
        monkeypatch.setattr(bench, timer, nothing_may_be_timed)
    run = cli("bench", "--data-dir", data_dir, "--sizes", "16,4,10", "--validation-size", "10", "--device", devices)
    assert_one_line_error(run, "CuPy is not installed", "time the CPU with --device cpu")
    assert run.stdout == ""


def test_the_header_says_what_is_measured_and_which_peers_are_missing(data_dir, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("torch", "jax") else real(name))
    run = cli(
        "bench",
        "--data-dir",
        data_dir,
        "--sizes",
        "16,4,10",
        "--validation-size",
        "10",
        "--epochs",
        "2",
        "--book-examples",
        "20",
        "--device",
        "cpu",
    )
    assert run.returncode == 0, run.stderr
    head = run.stdout.splitlines()[:3]
    assert head[1].startswith("measured: 2 timed epoch(s) per kernel and peer; ") and (
        "the book's loop timed once on 20 examples, scaled to an epoch" in head[1]
    ), head
    assert head[2] == "peers not installed, not timed: torch, jax", head
    assert peers.available("cpu") == []
