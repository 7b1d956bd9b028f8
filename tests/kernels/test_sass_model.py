"""The SASS speed model (tests/sass_model.py): where NVRTC and nvdisasm are installed (the test extra), every loop
of today's kernel's mini-batch loop is attributed to a loop of sgd_epoch.cu, and the counts agree with what the
source says independently: the __syncthreads() it reaches per mini-batch, and the multiply-adds of the book's
algorithm as a lower bound of the FFMAs."""

import re
from pathlib import Path

import pytest
import sass_model

pytest.importorskip("cuda.bindings.nvrtc", reason="needs cuda-bindings and nvidia-cuda-nvrtc (test extra)")
try:
    sass_model.nvdisasm()
except FileNotFoundError as e:
    pytest.skip(str(e), allow_module_level=True)


@pytest.fixture(scope="module", params=sass_model.GPUS, ids=lambda g: g.name)
def modelled(request):
    return request.param, sass_model.model(request.param)


def test_every_loop_of_the_mini_batch_is_attributed(modelled):
    gpu, (name, *_) = modelled
    _, attributed, unattributed = sass_model.count(sass_model.sass(gpu.arch, name))
    assert not unattributed, f"SASS loops at these source lines match no family of tests/sass_model.py: {unattributed}"
    assert {n for n, _ in attributed.values()} == set(sass_model.families()[0])


def test_barriers_per_mini_batch_are_the_sources(modelled):
    """[784, 30, 10]: A, B, C (two per layer: parts > 1), D and E: 8 __syncthreads() per warp."""
    _, (_, _, total, _, _) = modelled
    body = sass_model.cuda.SOURCE.read_text().split("for (int start = 0", 1)[1]
    # two of them in the layer loop of C, one in the fold of a small s (E), a branch this configuration never takes
    assert len(re.findall(r"__syncthreads\(\)", body)) == 7
    assert total["BAR"] == (6 + 2) * sass_model.THREADS // 32


def test_ffma_cover_the_books_multiply_adds(modelled):
    """At least the MACs of feedforward, BP2 and BP4 over the mini-batch (32 per warp FFMA), and not thrice them."""
    _, (_, _, total, us, epoch) = modelled
    (_, H, O), m, na = sass_model.SIZES, sass_model.BATCH, sass_model.NA
    macs = H * m * na + O * m * H + H * m * O + H * na * m + O * H * m
    assert macs / 32 <= total["FFMA"] < 3 * macs / 32
    assert 0 < us and epoch == pytest.approx(us * 6000 / 1e6)


def test_the_printed_model_says_modelled(capsys):
    assert sass_model.main() == 0
    out = capsys.readouterr().out
    assert out.count("modelled") >= 3 and "H100" in out and "T4" in out


def test_docs_table_is_the_models(modelled):
    """docs/gpu.md's table gives what the model prints, so a changed kernel cannot leave it stale."""
    gpu, (_, _, total, us, epoch) = modelled
    docs = (Path(__file__).parents[2] / "docs" / "gpu.md").read_text()
    row = next(line for line in docs.splitlines() if line.startswith(f"| {gpu.name}, {gpu.arch},"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert [int(c.split()[0].replace(",", "")) for c in cells[1:5]] == [total[c] for c in sass_model.COUNTED]
    assert cells[5] == f"{us:.1f} (modelled)" and cells[6] == f"{epoch * 1e3:.0f} ms (modelled)"
