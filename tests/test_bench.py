"""``gpunet bench`` measures, in one run, the book's loop and each path; no timing is asserted."""

import json

from helpers import cli, write_mnist_like

from gpunet.bench import flops_per_example


def test_flops_per_example_counts_the_three_products():
    # forward 784*30 + 30*10, BP2 below the output 30*10, BP4 784*30 + 30*10; x2 for multiply-add
    assert flops_per_example([784, 30, 10]) == 2 * (2 * (23520 + 300) + 300)


def test_bench_prints_a_row_per_path_with_the_ratio_to_the_book(tmp_path):
    write_mnist_like(tmp_path, 120, 10, rows=6, cols=6)
    run = cli(
        "bench", "--data-dir", str(tmp_path), "--sizes", "36,8,10", "--batch-size", "10",
        "--epochs", "2", "--book-examples", "40", "--json", "--validation-size", "20",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)["rows"]
    assert [r["path"] for r in rows][:2] == ["book loop", "portable"]
    for r in rows:
        assert r["s_per_epoch_min"] <= r["s_per_epoch_median"] and r["vs_book"] > 0
        assert r["h2d_bytes_per_epoch"] == 0  # on the CPU nothing crosses to a device
    table = cli("bench", "--data-dir", str(tmp_path), "--sizes", "36,8,10", "--epochs", "1", "--book-examples", "0",
                "--validation-size", "20")  # fmt: skip
    assert table.returncode == 0 and "portable" in table.stdout and "book loop" not in table.stdout


def test_bench_meters_transfers_to_a_real_second_device(tmp_path, monkeypatch):
    """On array_api_strict's device1 each epoch moves its permutation: 8 bytes per training example."""
    from conftest import strict_backend

    from gpunet import bench
    from gpunet.data import load_host

    write_mnist_like(tmp_path, 120, 10, rows=6, cols=6)
    seconds, moved = bench.time_network(load_host(tmp_path, 20), strict_backend("device1"), [36, 8, 10], 10,
                                        "float32", False, 2)  # fmt: skip
    assert len(seconds) == 2 and moved == 100 * 8
