"""``gpunet sweep``: every member is the run ``gpunet train --seed S`` would make, the results outlive Ctrl-C,
and a sweep loses no one's work nor trains on data it cannot score."""

import csv
import json
import re
import statistics
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_one_line_error, cli, write_mnist_like

from gpunet import Network
from gpunet.data import load_host, pin
from gpunet.sweep import Sweep, outputs, sweep
from gpunet.sweep import dist as sweep_dist
from gpunet.sweep import stats as sweep_stats
from gpunet.sweep.grid import Config, Grid, parse_seeds
from gpunet.sweep.stacks import run_chunk

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--sizes", "64,12,10", "--validation-size", "100", "--device", "cpu"]


@pytest.fixture(scope="module")
def data_dir(mnist_like):
    return mnist_like("small")


def train_counts(data_dir, seed, *flags):
    run = cli("train", "--seed", seed, "--data-dir", data_dir, *SMALL, *flags)
    assert run.returncode == 0, run.stderr
    return [int(c) for c in re.findall(r"^Epoch \d+: (\d+) /", run.stdout, re.M)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_each_member_counts_what_train_with_its_seed_counts(data_dir, tmp_path, dtype):
    """The acceptance: 4 seeds, two learning rates and two mini-batch sizes (one leaving a short last batch)."""
    records = sweep(
        "1-3,9",
        eta=[3.0, 0.5],
        sizes=[64, 12, 10],
        batch_size=[10, 7],
        dtype=dtype,
        epochs=3,
        device="cpu",
        data_dir=data_dir,
        validation_size=100,
    )
    assert len(records) == 16
    for r in records:
        flags = ("--eta", r.config.eta, "--batch-size", r.config.batch_size, "--dtype", dtype, "--epochs", 3)
        assert r.correct == train_counts(data_dir, r.seed, *flags), r


def test_a_forced_kernel_is_the_one_train_forces(data_dir, tmp_path):
    """--kernel portable on a machine whose registry would choose numba: the same counts as train --kernel portable."""
    out = tmp_path / "out"
    run = cli(
        "sweep", "--seeds", "4,5", "--epochs", 2, "--kernel", "portable", "--data-dir", data_dir, "--out", out, *SMALL
    )
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader((out / "networks.csv").read_text().splitlines()))
    assert {row["kernel"] for row in rows} == {"portable"}
    for seed in (4, 5):
        lines = [json.loads(l) for l in (out / "sweep.jsonl").read_text().splitlines()[1:]]
        counts = [l["correct"] for l in lines if l["seed"] == seed]
        assert counts == train_counts(data_dir, seed, "--epochs", 2, "--kernel", "portable")


def test_members_equal_single_runs_on_every_backend(backend, rng):
    """Through the kernel the backend gets (numba on NumPy, the portable steps elsewhere), against Network.SGD."""
    from helpers import synthetic_data

    x, y, labels = synthetic_data(rng, 95, 6, 3)
    tx, _, tl = synthetic_data(rng, 40, 6, 3)

    class Data:
        training_data = (backend.asarray(x, dtype=backend.xp.float64), backend.asarray(y, dtype=backend.xp.float64))
        test_data = (backend.asarray(tx, dtype=backend.xp.float64), backend.asarray(tl))
        validation_data = None

    members = [(Config((6, 5, 3), eta, 10, "float64"), seed) for seed, eta in ((1, 3.0), (2, 3.0), (5, 3.0))]
    result = run_chunk(backend, Data, members, 3, "test")
    for (config, seed), record in zip(members, result.records):
        net = Network([6, 5, 3], seed=seed, device=backend, dtype="float64")
        alone = net.SGD(Data.training_data, 3, 10, config.eta, test_data=Data.test_data, callback=None)
        assert record.correct == [e.correct for e in alone]


def test_one_epoch_on_real_mnist_equals_train():
    records = sweep([1, 2], epochs=1, device="cpu", data_dir=ROOT / "data")
    for r in records:
        run = cli("train", "--seed", r.seed, "--epochs", 1, "--device", "cpu", "--data-dir", ROOT / "data")
        assert f"Epoch 0: {r.correct[0]} / 10000" in run.stdout
        assert r.correct[0] > 8500


def test_seed_lists():
    assert parse_seeds("1-3,7, 10-11") == (1, 2, 3, 7, 10, 11)
    assert parse_seeds("0") == (0,)
    grid = Grid.create(
        "1-2", etas="3,0.5", sizes=[[64, 12, 10], [64, 10]], batch_sizes=["10", "7"], dtypes="float32", epochs=2
    )
    assert len(grid.networks()) == 2 * 2 * 2 * 2


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--seeds", "5-1"], "--seeds 5-1"),
        (["--seeds", ""], "--seeds"),
        (["--seeds", "1,x"], "--seeds"),
        (["--seeds", "1-3,2"], "2 is given twice"),
        (["--seeds", "1", "--eta", "0"], "--eta"),
        (["--seeds", "1", "--eta", ""], "--eta is empty"),
        (["--seeds", "1", "--eta", "3,,1"], "--eta"),
        (["--seeds", "1", "--batch-size", "0"], "--batch-size"),
        (["--seeds", "1", "--batch-size", "2.5"], "--batch-size"),
        (["--seeds", "1", "--dtype", "float16"], "--dtype"),
        (["--eta", "3"], "--seeds"),
        (["--seeds", "1", "--sizes", "784,30,10"], "--sizes must start with 64"),
        (["--seeds", "1", "--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler"),
        (["--seeds", "1", "--scheduler", "not an address"], "cannot reach the Dask scheduler"),
    ],
)
def test_a_malformed_grid_is_one_line_before_training(data_dir, tmp_path, monkeypatch, args, fragment):
    monkeypatch.setattr(sweep_dist, "CONNECT_SECONDS", 0.1)  # nothing listens at port 9: fail fast, not in 3 s
    run = cli(
        "sweep", "--data-dir", data_dir, "--validation-size", 100, "--device", "cpu", "--out", tmp_path / "out", *args
    )
    assert_one_line_error(run, fragment)
    assert not re.search(r"seed \d+:", run.stdout) and not (tmp_path / "out" / "networks.csv").exists()


def sweep_files(out):
    with (out / "networks.csv").open() as f:
        rows = list(csv.DictReader(f))
    lines = [json.loads(line) for line in (out / "sweep.jsonl").read_text().splitlines()]
    return rows, lines


def without_seconds(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_ctrl_c_keeps_finished_networks_and_resume_runs_only_the_rest(data_dir, tmp_path, monkeypatch):
    import gpunet.sweep.runner as sweep_module

    args = ["sweep", "--seeds", "1-5", "--epochs", "2", "--chunk", "2", "--data-dir", data_dir, *SMALL]
    whole = cli(*args, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr

    real, calls = sweep_module.run_chunk, []

    def interrupted_at_the_second_chunk(*a, **k):
        calls.append([seed for _, seed in a[2]])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(sweep_module, "run_chunk", interrupted_at_the_second_chunk)
    out = tmp_path / "out"
    run = cli(*args, "--out", out)
    assert run.returncode == 130 and f"gpunet sweep --resume {out}" in run.stderr
    rows, lines = sweep_files(out)
    assert [r["seed"] for r in rows] == ["1", "2"]
    assert lines[0]["kind"] == "sweep" and len(lines) == 1 + 2 * 2

    calls.clear()
    monkeypatch.setattr(sweep_module, "run_chunk", lambda *a, **k: calls.append([s for _, s in a[2]]) or real(*a, **k))
    resumed = cli("sweep", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr
    assert calls == [[3, 4], [5]]
    assert without_seconds(sweep_files(out)[0]) == without_seconds(sweep_files(tmp_path / "whole")[0])
    assert resumed.stdout.split("\n\n")[-1] == whole.stdout.split("\n\n")[-1]  # the same last table

    again = cli("sweep", "--resume", out, "--seeds", "1-9")
    assert_one_line_error(again, "--seeds: not allowed with argument --resume")
    again = cli("sweep", "--resume", out, "--eta", "1")
    assert_one_line_error(again, "--eta is set by the sweep")
    taken = cli(*args, "--out", out)
    assert_one_line_error(taken, "already holds a sweep", "--resume")


def test_the_best_network_is_a_normal_model_file(data_dir, tmp_path):
    best = tmp_path / "best.npz"
    run = cli(
        "sweep",
        "--seeds",
        "1-3",
        "--epochs",
        "4",
        "--data-dir",
        data_dir,
        *SMALL,
        "--save-best",
        best,
        "--out",
        tmp_path / "out",
    )
    assert run.returncode == 0, run.stderr
    rows, _ = sweep_files(tmp_path / "out")
    top = max(rows, key=lambda r: (float(r["best_accuracy"]), -int(r["seed"])))
    counts = train_counts(data_dir, top["seed"], "--epochs", 4)
    epoch = int(top["best_epoch"])
    evaluated = cli("evaluate", best, "--data-dir", data_dir, "--validation-size", "100", "--device", "cpu")
    assert f": {counts[epoch]} / 120 correct" in evaluated.stdout
    # It resumes as the checkpoint of that epoch would: the same counts as the whole run from there on.
    resumed = cli("train", "--resume", best, "--data-dir", data_dir, "--validation-size", 100, "--epochs", 4)
    assert [int(c) for c in re.findall(r"^Epoch \d+: (\d+) /", resumed.stdout, re.M)] == counts[epoch + 1 :]


def test_several_configurations_get_several_best_files(data_dir, tmp_path):
    run = cli(
        "sweep",
        "--seeds",
        "1",
        "--eta",
        "3,1",
        "--epochs",
        "1",
        "--data-dir",
        data_dir,
        *SMALL,
        "--save-best",
        tmp_path / "best.npz",
    )
    assert run.returncode == 0, run.stderr
    names = sorted(p.name for p in tmp_path.glob("best-*.npz"))
    assert names == ["best-64-12-10_eta1_batch10_float32.npz", "best-64-12-10_eta3_batch10_float32.npz"]


def test_statistics_against_the_statistics_module():
    values = [0.95, 0.91, 0.42, 0.96, 0.94]
    s = sweep_stats.describe(values)
    assert s["mean"] == pytest.approx(statistics.mean(values))
    assert s["sd"] == pytest.approx(statistics.stdev(values))
    assert (s["min"], s["median"], s["max"]) == (0.42, 0.94, 0.96)
    assert s["below_90"] == 1
    low, high = s["ci95"]
    assert min(values) <= low < s["mean"] < high <= max(values)
    assert sweep_stats.describe(values)["ci95"] == (low, high)  # a fixed bootstrap seed
    one = sweep_stats.describe([0.9])
    assert np.isnan(one["sd"]) and one["ci95"] == (0.9, 0.9)


def test_table_and_plot_of_a_sweep(data_dir, tmp_path):
    run = cli(
        "sweep",
        "--seeds",
        "1-3",
        "--epochs",
        "2",
        "--sizes",
        "64,12,10",
        "--sizes",
        "64,10",
        "--data-dir",
        data_dir,
        "--validation-size",
        "100",
        "--device",
        "cpu",
        "--out",
        tmp_path,
    )
    assert run.returncode == 0, run.stderr
    tables = run.stdout.split("\n\n")[-2:]
    for table, label in zip(tables, ["[64,12,10] eta 3", "[64,10] eta 3"]):
        assert table.startswith(label)
        assert re.search(r"^best\s+3\s+\d+\.\d\d ± \d+\.\d\d", table, re.M)
        assert re.search(r"^final\s+3\s", table, re.M)
    drawn = cli("plot", tmp_path / "sweep.jsonl", "-o", tmp_path / "sweep.png")
    assert drawn.returncode == 0, drawn.stderr
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_python_api_matches_the_stack_and_the_host_data(data_dir):
    host = load_host(data_dir, 100)
    from gpunet import get_backend

    backend = get_backend("cpu")
    data = pin(host, backend, backend.xp.float32)
    config = Config((64, 12, 10), 3.0, 10, "float32")
    chunk = run_chunk(backend, data, [(config, 4), (config, 6)], 2, "validation")
    api = sweep(
        [4, 6], sizes=[64, 12, 10], epochs=2, eval="validation", device="cpu", data_dir=data_dir, validation_size=100
    )
    assert [r.correct for r in api] == [r.correct for r in chunk.records]
    assert all(r.total == 100 for r in api)


def test_a_real_ctrl_c_leaves_consistent_files_that_resume_completes(data_dir, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    code = "import sys; from gpunet.cli import main; sys.exit(main(sys.argv[1:]))"
    args = [
        "sweep",
        "--seeds",
        "1-24",
        "--epochs",
        "8",
        "--chunk",
        "3",
        "--data-dir",
        str(data_dir),
        *SMALL,
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if (out / "networks.csv").exists() and len(sweep_files(out)[0]) >= 3:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "gpunet sweep --resume" in stderr, stderr
    rows, lines = sweep_files(out)
    assert 3 <= len(rows) < 24 and len(rows) % 3 == 0
    assert len(lines) == 1 + 8 * len(rows)  # every kept network with all its epochs, in both files
    assert {(e["seed"], e["epoch"]) for e in lines[1:]} == {(int(r["seed"]), k) for r in rows for k in range(8)}
    resumed = cli("sweep", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr
    assert [r["seed"] for r in sweep_files(out)[0]] == [str(s) for s in range(1, 25)]


# ---- data it cannot score: one line before anything trains or is written, as train says it -----------------


def test_zero_test_images_is_one_line_naming_the_other_eval(tmp_path):
    write_mnist_like(tmp_path / "data", 200, 0, rows=8, cols=8)
    flags = ["--seeds", "1-2", "--epochs", "1", "--sizes", "64,12,10", "--validation-size", "50", "--device", "cpu"]
    run = cli("sweep", *flags, "--data-dir", tmp_path / "data", "--out", tmp_path / "out")
    assert_one_line_error(run, "no test images", "--eval validation")
    assert not (tmp_path / "out").exists()
    scored = cli("sweep", *flags, "--data-dir", tmp_path / "data", "--eval", "validation")
    assert scored.returncode == 0, scored.stderr


# ---- a sweep loses no one's work: --save-best goes through train's overwrite guard, --resume keeps --save-best,
# and --out names a folder

TINY = ["--sizes", "16,10", "--validation-size", "10", "--device", "cpu", "--epochs", "1"]


@pytest.fixture
def tiny(mnist_like):
    return mnist_like("tiny")


def tiny_sweep(data_dir, *args):
    return cli("sweep", "--seeds", "1-2", "--data-dir", data_dir, *TINY, *args)


def test_save_best_refuses_a_file_that_is_not_a_gpunet_model(tiny, tmp_path):
    log = tmp_path / "run.jsonl"
    log.write_text('{"type": "manifest"}\n')
    assert_one_line_error(tiny_sweep(tiny, "--save-best", log), f"--save-best {log}", "not a gpunet model", "--force")
    assert log.read_text() == '{"type": "manifest"}\n'
    forced = tiny_sweep(tiny, "--save-best", log, "--force")
    assert forced.returncode == 0, forced.stderr
    assert Network.load(log, device="cpu").record["sweep"]["configuration"]


def test_save_best_refuses_another_runs_model(tiny, tmp_path):
    other = tmp_path / "run.npz"
    trained = cli("train", "--data-dir", tiny, *TINY, "--checkpoint", other)
    assert trained.returncode == 0, trained.stderr
    before = other.read_bytes()
    assert_one_line_error(tiny_sweep(tiny, "--save-best", other), "holds another run's model", "--force")
    assert other.read_bytes() == before
    several = tiny_sweep(tiny, "--eta", "3,1", "--save-best", tmp_path / "run.npz")  # one file a configuration
    assert several.returncode == 0, several.stderr
    assert other.read_bytes() == before


def test_a_resumed_sweep_keeps_its_save_best_and_says_how_to_resume(tiny, tmp_path, monkeypatch):
    import gpunet.sweep.runner as runner

    real = runner.run_chunk

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_chunk", interrupted)
    out = tmp_path / "out"
    best = out / "models" / "best.npz"  # inside the sweep's folder, as resume writes it
    best.parent.mkdir(parents=True)
    stopped = cli(
        "sweep", "--seeds", "1-4", "--chunk", "2", "--data-dir", tiny, *TINY, "--out", out, "--save-best", best
    )
    assert stopped.returncode == 130
    assert stopped.stderr.splitlines()[-1].endswith(f"  gpunet sweep --resume {out}")  # complete as printed
    monkeypatch.setattr(runner, "run_chunk", real)
    monkeypatch.chdir(best.parent)  # resumed from elsewhere: the path is kept whole
    resumed = cli("sweep", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr
    assert f"is in {best}" in resumed.stderr
    with (out / "networks.csv").open() as f:
        top = max(int(round(float(r["best_accuracy"]) * 20)) for r in csv.DictReader(f))
    assert Network.load(best, device="cpu").record["sweep"]["correct"] == top
    assert Sweep.resume(out).save_best == str(best)


def test_save_best_given_on_resume_replaces_the_kept_one(tiny, tmp_path):
    out = tmp_path / "out"
    assert tiny_sweep(tiny, "--out", out, "--save-best", tmp_path / "a.npz").returncode == 0
    assert cli("sweep", "--resume", out, "--save-best", tmp_path / "b.npz").returncode == 0
    assert (tmp_path / "b.npz").is_file()
    assert outputs.read(out)[0]["settings"]["save_best"] == str(tmp_path / "b.npz")  # kept for the next resume


def test_a_resumed_sweep_writes_no_save_best_its_folder_names_outside_it(tiny, tmp_path, monkeypatch):
    import gpunet.sweep.runner as runner

    real = runner.run_chunk
    monkeypatch.setattr(runner, "run_chunk", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    out, victim = tmp_path / "received", tmp_path / "victim"
    victim.mkdir()
    stopped = cli("sweep", "--seeds", "1-4", "--chunk", "2", "--data-dir", tiny, *TINY, "--out", out)
    assert stopped.returncode == 130
    lines = (out / "sweep.jsonl").read_text().splitlines()
    head = json.loads(lines[0])
    head["settings"]["save_best"] = str(victim / "best.npz")  # the folder's author chose it
    (out / "sweep.jsonl").write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n")
    monkeypatch.setattr(runner, "run_chunk", real)
    resumed = cli("sweep", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr
    assert list(victim.iterdir()) == []
    assert f"--save-best {victim / 'best.npz'} is not inside {out}; not writing it" in resumed.stderr


def test_out_naming_a_file_is_one_line(tiny, tmp_path):
    taken = tmp_path / "results.txt"
    taken.write_text("kept\n")
    assert_one_line_error(tiny_sweep(tiny, "--out", taken), f"--out {taken}", "not a folder")
    assert taken.read_text() == "kept\n"


def test_a_grid_over_cost_lmbda_and_init_counts_what_train_counts_and_names_them(data_dir, tmp_path):
    """Chapter 3's axes: each member is `gpunet train` with its --cost, --lmbda and --init, the table names them."""
    grid = ["--cost", "quadratic,cross-entropy", "--lmbda", "0,5", "--init", "large,default", "--eta", "0.5"]
    run = cli("sweep", "--seeds", "2", "--epochs", 2, "--data-dir", data_dir, "--out", tmp_path / "out", *SMALL, *grid)
    assert run.returncode == 0, run.stderr
    assert "x 2 cost x 2 lmbda x 2 init = 8 networks" in run.stdout
    assert "[64,12,10] eta 0.5 batch 10 float32 cost cross-entropy lmbda 5 init default | test accuracy" in run.stdout
    assert "[64,12,10] eta 0.5 batch 10 float32 | test accuracy" in run.stdout  # chapter 1's, named as before
    rows, _ = sweep_files(tmp_path / "out")
    assert len(rows) == 8 and len({(r["cost"], r["lmbda"], r["init"]) for r in rows}) == 8
    for r in rows:
        flags = ("--cost", r["cost"], "--lmbda", r["lmbda"], "--init", r["init"], "--eta", "0.5", "--epochs", 2)
        lines = [json.loads(l) for l in (tmp_path / "out" / "sweep.jsonl").read_text().splitlines()[1:]]
        counts = [l["correct"] for l in lines if l["config"] == r["configuration"]]
        assert counts == train_counts(data_dir, 2, *flags), r
    assert_one_line_error(cli("sweep", "--seeds", "1", "--cost", "hinge", *SMALL), "--cost", "hinge")


def test_a_sweep_from_before_chapter_3_reads_as_chapter_1s():
    old = {"seeds": "1-3", "etas": [3.0], "sizes": [[784, 30, 10]], "batch_sizes": [10], "dtypes": ["float32"],
           "epochs": 30, "eval": "test"}  # fmt: skip
    grid = Grid.from_json(old)
    assert (grid.costs, grid.lmbdas, grid.inits) == (("quadratic",), (0.0,), ("large",))
    assert [c.label for c in grid.configs()] == ["[784,30,10] eta 3 batch 10 float32"]
    assert Grid.from_json(Grid.create("1", costs="cross-entropy", lmbdas="5").to_json()).costs == ("cross-entropy",)
