"""``gpunet bench`` measures, in one run, the book's loop, each peer and each kernel; no timing is asserted."""

import inspect
import json

import numpy as np
import pytest
from helpers import bench_on, write_mnist_like

from gpunet.bench import peers
from gpunet.bench import timing as bench
from gpunet.bench.timing import flops_per_example
from gpunet.book import reference
from gpunet.kernels import KERNELS


def test_flops_per_example_counts_the_three_products():
    # forward 784*30 + 30*10, BP2 below the output 30*10, BP4 784*30 + 30*10; x2 for multiply-add
    assert flops_per_example([784, 30, 10]) == 2 * (2 * (23520 + 300) + 300)


def test_bench_prints_a_row_per_kernel_with_the_ratio_to_the_book(tmp_path, monkeypatch):
    monkeypatch.setattr(peers, "available", lambda kind: [])  # whether torch or JAX is installed here
    write_mnist_like(tmp_path, 120, 10, rows=6, cols=6)
    run = bench_on(
        str(tmp_path), "36,8,10", "--batch-size", "10", "--json", epochs=2, book_examples=40, validation_size=20
    )
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)["rows"]
    paths = [r["path"] for r in rows]
    assert paths[0] == "book loop" and sorted(paths[1:]) == sorted(k for k in KERNELS if not KERNELS[k].unusable())
    for r in rows:
        assert r["s_per_epoch_min"] <= r["s_per_epoch_median"] and r["vs_book"] > 0 and r["vs_best_peer"] is None
        assert r["h2d_bytes_per_epoch"] == 0  # on the CPU nothing crosses to a device
    table = bench_on(str(tmp_path), "36,8,10", validation_size=20)
    assert table.returncode == 0 and "portable" in table.stdout and "book loop" not in table.stdout


def test_bench_meters_transfers_to_a_real_second_device(tmp_path, monkeypatch):
    """On array_api_strict's device1 each epoch moves its permutation: 8 bytes per training example."""
    from conftest import strict_backend

    from gpunet.bench import timing as bench
    from gpunet.data import load_host

    write_mnist_like(tmp_path, 120, 10, rows=6, cols=6)
    seconds, moved = bench.time_network(
        load_host(tmp_path, 20), strict_backend("device1"), [36, 8, 10], 10, "float32", "portable", 2
    )
    assert len(seconds) == 2 and moved == 100 * 8


def test_the_books_loop_is_timed_as_written():
    """No np.errstate around each sigmoid: it made the book's loop ~16 % slower."""
    assert "errstate" not in inspect.getsource(reference)
    z = np.array([[-1.0], [0.0], [2.0]])
    assert np.array_equal(reference.sigmoid(z), 1.0 / (1.0 + np.exp(-z)))


def test_a_missing_device_is_one_line_and_the_cpu_rows_are_printed(mnist_like, monkeypatch):
    monkeypatch.setattr(peers, "available", lambda kind: [])
    run = bench_on(mnist_like("tiny"), "16,4,10", "--device", "cpu,cuda:7", validation_size=10)
    assert run.returncode == 0
    assert [line for line in run.stderr.splitlines()] == [run.stderr.strip()] and "cuda:7: not measured" in run.stderr
    assert "cpu     portable" in run.stdout


def test_peers_are_timed_from_the_same_start_and_order_and_rows_carry_the_ratio(mnist_like, monkeypatch):
    """A stand-in peer records what it was given; a failing one is one line, and the bench goes on."""
    from gpunet import Network

    seen = {}

    def fake_run(name, kind, x, y, weights, biases, orders, batch, eta, dtype):
        if name == "broken peer":
            raise RuntimeError("no such device\nmore")
        seen.update(weights=weights, orders=orders, batch=batch)
        return [0.5, 0.5]

    monkeypatch.setattr(bench, "PEERS_APART", False)  # the stand-ins live in this process
    monkeypatch.setattr(peers, "available", lambda kind: ["fake peer", "broken peer"])
    monkeypatch.setattr(peers, "run", fake_run)
    run = bench_on(mnist_like("tiny"), "16,4,10", "--batch-size", "100", "--json", epochs=2, validation_size=10)
    assert run.returncode == 0, run.stderr
    assert run.stderr == "gpunet: broken peer on cpu: not measured: RuntimeError: no such device\n"
    rows = json.loads(run.stdout)["rows"]
    peer = rows[0]
    assert peer["path"] == "fake peer" and peer["vs_best_peer"] == 1.0
    assert all(r["vs_best_peer"] == 0.5 / r["s_per_epoch_median"] for r in rows[1:])
    net = Network([16, 4, 10], seed=0, device="cpu")  # what every kernel row starts from
    assert all(np.array_equal(a, b) for a, b in zip(seen["weights"], net.weights))
    assert [o.tolist() for o in seen["orders"]] == [net.rng.permutation(50).tolist() for _ in range(2)]
    assert seen["batch"] == 50  # clamped to the training set, as the kernels are


@pytest.mark.parametrize("name", ["torch eager", "jax scan"])
def test_each_peer_trains_the_books_network(rng, name):
    """A peer is only a fair comparison if it computes what the book does: float64 against the book's code."""
    pytest.importorskip(name.split()[0])
    from helpers import book_parameters, synthetic_data

    sizes, n, batch = [12, 6, 4], 23, 5
    x, y, _ = synthetic_data(rng, n, sizes[0], sizes[-1])
    biases, weights, order_rng = book_parameters(sizes, 7)
    orders = [order_rng.permutation(n) for _ in range(2)]
    seconds, got_w, got_b = peers.train(name, "cpu", x, y, weights, biases, orders, batch, 3.0, "float64")
    book = reference.Network(sizes, biases=[b.copy() for b in biases], weights=[w.copy() for w in weights])
    book.SGD([(xi[:, None], yi[:, None]) for xi, yi in zip(x, y)], 2, batch, 3.0, orders)
    assert len(seconds) == 2
    for got, want in zip(got_w + got_b, book.weights + book.biases):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
