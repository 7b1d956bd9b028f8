"""A sweep whose output layer is wider than the classes (``--sizes 64,12,11``) trains on targets as wide as
that layer, as ``gpunet train`` pins them: each member counts what ``train --seed S`` counts, locally and on a
Dask worker, where narrower targets once broke the portable kernel and let numba read past a target row."""

import re

import pytest
from helpers import cli

from gpunet.io.identity import checksums as data_checksums
from gpunet.sweep import DataSource, sweep
from gpunet.sweep.dist import run_on_worker
from gpunet.sweep.grid import Config

SIZES = (64, 12, 11)  # 11 outputs for the 10 classes: the 11th is trained towards 0


@pytest.fixture(scope="module")
def data_dir(mnist_like):
    return mnist_like("small")


def train_counts(data_dir, seed, sizes, *flags):
    run = cli(
        "train",
        "--seed",
        seed,
        "--epochs",
        2,
        "--sizes",
        ",".join(map(str, sizes)),
        "--data-dir",
        data_dir,
        "--validation-size",
        100,
        "--device",
        "cpu",
        *flags,
    )
    assert run.returncode == 0, run.stderr
    return [int(c) for c in re.findall(r"^Epoch \d+: (\d+) /", run.stdout, re.M)]


@pytest.mark.parametrize("kernel", [None, "portable"])
def test_members_with_more_outputs_than_classes_count_what_train_counts(data_dir, kernel):
    # Two output widths in one sweep: each stack gets targets of its own width.
    records = sweep(
        [1, 2],
        sizes=[SIZES, (64, 12, 10)],
        epochs=2,
        device="cpu",
        data_dir=data_dir,
        validation_size=100,
        kernel=kernel,
    )
    assert len(records) == 4
    flags = () if kernel is None else ("--kernel", kernel)
    for r in records:
        assert r.correct == train_counts(data_dir, r.seed, r.config.sizes, *flags), r


def test_a_worker_pins_targets_as_wide_as_the_output_layer(data_dir):
    source = DataSource(str(data_dir), validation_size=100)
    members = [(Config(SIZES, 3.0, 10, "float32"), 3)]
    result = run_on_worker(members, 2, "test", "cpu", source, data_checksums(source.load()))
    assert result.records[0].correct == train_counts(data_dir, 3, SIZES)
