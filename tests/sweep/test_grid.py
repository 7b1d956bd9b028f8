"""Sweep grids: expanded lazily (the count is a product), duplicates found in linear time, and a grid
whose results cannot be kept refused in one line saying how much it would take."""

import csv
import json
import os
import subprocess
import sys

import pytest
from helpers import assert_one_line_error, cli, write_mnist_like

import gpunet.io.fs
from gpunet.errors import ConfigError
from gpunet.sweep.grid import Grid, parse_seeds


def _run(*args, timeout=60):
    """``gpunet ARGS`` in a fresh interpreter, with its peak memory (VmHWM, bytes) printed last."""
    code = (
        "import sys\nfrom gpunet.cli import main\ntry:\n    status = main(sys.argv[1:])\nfinally:\n"
        "    print(next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmHWM:')))\n"
        "sys.exit(status)"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    write_mnist_like(folder, 40, 10, rows=4, cols=4, n_classes=4)
    return folder


def test_seeds_are_not_expanded_to_be_counted_or_looked_up():
    seeds = parse_seeds("5-100000000,1,2")
    assert len(seeds) == 99_999_998 and seeds.ranges == ((5, 100_000_000), (1, 1), (2, 2))
    assert seeds[0] == 5 and seeds[-1] == 2 and seeds[99_999_995] == 100_000_000 and seeds[99_999_996] == 1
    assert 77_777_777 in seeds and 3 not in seeds and seeds.index(2) == 99_999_997
    grid = Grid.create("1-100000000", etas="0.5,3", batch_sizes="10,20")
    assert grid.count == 400_000_000 and grid.to_json()["seeds"] == "1-100000000"


def test_lazy_seeds_behave_as_the_list_they_stand_for(rng):
    for _ in range(30):
        starts = rng.choice(500, size=int(rng.integers(1, 8)), replace=False) * 10
        ranges = [(int(a), int(a + rng.integers(0, 9))) for a in starts]
        text = ",".join(f"{a}-{b}" if rng.random() < 0.7 else ",".join(map(str, range(a, b + 1))) for a, b in ranges)
        expected = [s for a, b in ranges for s in range(a, b + 1)]
        seeds = parse_seeds(text)
        assert list(seeds) == expected and len(seeds) == len(expected) and seeds == tuple(expected)
        assert all(seeds.index(s) == k and s in seeds and seeds[k] == s for k, s in enumerate(expected))
        assert parse_seeds(seeds.text()) == seeds and Grid.from_json(Grid.create(expected).to_json()).seeds == seeds


def test_positions_are_the_grids_order():
    grid = Grid.create(
        "4-6,1", etas="3,0.5", sizes=[[16, 5, 4], [16, 4]], batch_sizes=["10", "7"], dtypes="float32,float64", epochs=2
    )
    networks = grid.networks()
    assert [grid.position(c, s) for c, s in networks] == list(range(grid.count)) and len(networks) == grid.count
    assert all(grid.holds(c, s) for c, s in networks) and not grid.holds(networks[0][0], 2)


def test_an_old_manifest_with_a_list_of_seeds_resumes_as_the_same_grid():
    grid = Grid.create("1-3,7")
    old = {**grid.to_json(), "seeds": [1, 2, 3, 7]}
    assert Grid.from_json(json.loads(json.dumps(old))) == grid


@pytest.mark.parametrize("seeds", ["3,1-5", "1-10,20-30,25", "7,7"])
def test_a_repeated_seed_is_named(seeds):
    with pytest.raises(ConfigError, match=r"--seeds: \d+ is given twice"):
        parse_seeds(seeds)


def test_a_long_list_is_checked_for_repeats_in_linear_time():
    """200,000 seeds listed one by one, the last repeated: main's check was quadratic (4e10 steps, hours)."""
    code = (
        "from gpunet.sweep.grid import Grid\ntry:\n    Grid.create(list(range(0, 400_000, 2)) + [0])\n"
        "except Exception as e:\n    print(e)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "--seeds: 0 is given twice; list each value once", run.stderr


@pytest.mark.parametrize(
    "flags",
    [
        ["--seeds", "1-100000000"],
        [
            "--seeds",
            "1-10000",
            "--eta",
            ",".join(str(k / 10) for k in range(1, 201)),
            "--batch-size",
            ",".join(map(str, range(1, 51))),
        ],
    ],
    ids=["1e8 seeds", "1e8 networks"],
)
def test_a_grid_whose_results_cannot_be_kept_is_one_line_in_bounded_memory(data, flags):
    run = _run("sweep", *flags, "--data-dir", data, "--device", "cpu", "--sizes", "16,4", "--validation-size", "0")
    *_, peak = run.stdout.split()
    run.stdout = ""
    assert_one_line_error(run, "100,000,000 networks x 30 epochs", "GiB", "sweep fewer")
    assert int(peak) < 300 << 20, int(peak)


def test_results_over_the_free_memory_are_refused_saying_how_much(data, monkeypatch):
    monkeypatch.setattr(gpunet.io.fs, "available_memory", lambda: 64 << 20)
    run = cli("sweep", "--seeds", "1-100000", "--data-dir", data, "--device", "cpu", "--sizes", "16,4")
    assert_one_line_error(run, "100,000 networks x 30 epochs", "needs 175.5 MiB", "only 64.0 MiB is free")


def test_results_over_the_free_disk_of_out_are_refused(data, tmp_path, monkeypatch):
    monkeypatch.setattr(gpunet.io.fs.shutil, "disk_usage", lambda _: type("Usage", (), {"free": 1 << 20}))
    run = cli(
        "sweep",
        "--seeds",
        "1-1000",
        "--data-dir",
        data,
        "--device",
        "cpu",
        "--sizes",
        "16,4",
        "--out",
        tmp_path / "out",
    )
    assert_one_line_error(run, f"--out {tmp_path / 'out'}", "on disk", "only 1.0 MiB")
    assert not (tmp_path / "out").exists()


def test_a_small_grid_still_trains_in_the_grids_order(data, tmp_path):
    grid = ("--seeds", "3,1-2", "--eta", "3,0.5", "--sizes", "16,4", "--sizes", "16,3,4", "--epochs", "1")
    run = cli("sweep", *grid, "--data-dir", data, "--device", "cpu", "--validation-size", "0", "--out", tmp_path / "o")
    assert run.returncode == 0, run.stderr
    with open(tmp_path / "o" / "networks.csv", newline="") as f:
        order = [(r["sizes"], r["eta"], r["seed"]) for r in csv.DictReader(f)]
    assert order == [(s, e, seed) for s in ("16-4", "16-3-4") for e in ("3.0", "0.5") for seed in ("3", "1", "2")]
