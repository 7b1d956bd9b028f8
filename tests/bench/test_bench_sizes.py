"""``gpunet bench --sizes`` takes the sizes train takes: an output layer wider than the classes is timed."""

import json

import numpy as np
import pytest
from helpers import assert_one_line_error, bench_on, train_on, write_mnist_like

from gpunet.bench import peers
from gpunet.bench import timing as bench
from gpunet.data import load_host


@pytest.fixture
def data_dir(tmp_path):
    write_mnist_like(tmp_path, 120, 10, rows=6, cols=6)
    return tmp_path


def test_an_output_layer_wider_than_the_classes_is_timed_as_train_runs_it(data_dir, monkeypatch):
    monkeypatch.setattr(peers, "available", lambda kind: [])  # whether torch or JAX is installed here
    run = bench_on(data_dir, "36,8,11", "--json", validation_size=20)
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)["rows"]
    assert rows and all(r["sizes"] == [36, 8, 11] for r in rows)
    assert train_on(data_dir, "--sizes", "36,8,11", validation_size=20).returncode == 0


def test_a_peer_gets_targets_as_wide_as_its_output_layer(data_dir, monkeypatch):
    host = load_host(data_dir, 20)
    seen = {}

    def run(name, kind, x, y, *rest):
        seen["y"] = y
        return [0.0]

    monkeypatch.setattr(peers, "run", run)  # the peer itself (torch, JAX) need not be installed
    bench.time_peer(host, "torch eager", "cpu", [36, 8, 11], 10, "float32", 1)
    y = np.asarray(seen["y"])
    assert y.shape == (100, 11) and not y[:, 10].any() and (y.sum(axis=1) == 1).all()


@pytest.mark.parametrize(
    "sizes, fragment",
    [("35,8,10", "--sizes must start with 36"), ("36,8,5", "at least 10"), ("36,10000000000,10", "parameters) needs")],
)  # as train refuses them
def test_sizes_that_do_not_fit_the_data_are_one_line_before_anything_is_timed(data_dir, sizes, fragment):
    run = bench_on(data_dir, sizes, book_examples=20, validation_size=20)
    assert_one_line_error(run, fragment)
    assert "book loop" not in run.stdout
