"""What the README and docs say a first run prints and needs (issue 30, items 4, 6, 11 and 12), held to the code."""

import re

from helpers import ROOT, cli, write_mnist_like

from gpunet.kernels.numba_cpu import COMPILING
from gpunet.network import EpochResult


def test_book_md_quotes_todays_epoch_lines():
    page = (ROOT / "docs" / "book.md").read_text()
    scored = re.search(
        r"`(Epoch (\d+): (\d+) / (\d+) \((\d+\.\d\d)%\) \| train (\d+\.\d\d) s, eval (\d+\.\d\d) s)`", page
    )
    assert scored, "book.md quotes no scored epoch line"
    epoch, correct, total, _, train, evals = (scored.group(i) for i in range(2, 8))
    result = EpochResult(int(epoch), int(correct), int(total), float(train), float(evals))
    assert str(result) == scored.group(1)
    unscored = re.search(r"`(Epoch 0 complete \((\d+\.\d\d) s\))`", page)
    assert unscored and str(EpochResult(0, None, 0, float(unscored.group(2)), 0.0)) == unscored.group(1)


def test_the_readme_says_which_seed_its_eta_figures_need():
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "With `--seed 1`, `--eta 0.001` reaches 22.13 % after 5 epochs; `--eta 100`" in readme


def test_the_readme_quotes_the_first_runs_note():
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"`gpunet: {COMPILING.split(': once')[0]}: once, ...`" in readme


def test_one_epoch_is_one_epoch(tmp_path):
    write_mnist_like(tmp_path, 60, 20, rows=4, cols=4, n_classes=3)
    run = cli("train", "--data-dir", tmp_path, "--device", "cpu", "--sizes", "16,4,3", "--epochs", 1,
              "--validation-size", 0)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "| 1 epoch in " in run.stdout.splitlines()[-1]


def test_the_docs_say_how_large_the_cuda12_environment_is():
    for page in (ROOT / "README.md", ROOT / "docs" / "gpu.md"):
        text = " ".join(page.read_text().split())
        assert re.search(r"cuda12.{0,200}(about 3 GB)", text), page
