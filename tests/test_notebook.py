"""docs/notebooks/chapter1.ipynb: kept without outputs, and run as a reader runs it (nbclient, a real kernel, the
MNIST of data/, no network), on fewer epochs and images so that it ends in seconds."""

import re

import pytest
from helpers import MNIST, ROOT

nbformat = pytest.importorskip("nbformat")
NOTEBOOK = ROOT / "docs" / "notebooks" / "chapter1.ipynb"
PARAMETERS = "EPOCHS, TRAINING_IMAGES = 30, 50_000"  # the chapter's; the suite's are below


def cells():
    return nbformat.read(NOTEBOOK, as_version=4).cells


def test_the_stored_notebook_has_no_outputs():
    nbformat.validate(nbformat.read(NOTEBOOK, as_version=4))
    code = [c for c in cells() if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert sum(PARAMETERS in c.source for c in code) == 1


def test_the_notebook_runs_the_chapters_session(tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("ipywidgets")
    pytest.importorskip("matplotlib")
    pytest.importorskip("PIL")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        cell.source = cell.source.replace(PARAMETERS, "EPOCHS, TRAINING_IMAGES = 2, 3_000")
    monkeypatch.setenv("GPUNET_DATA", str(MNIST))  # the kernel finds MNIST here: nothing is downloaded
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's own, inline, as in Jupyter
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()

    def shown(k):  # what cell k printed, then its value's text, and the kinds of data it displayed
        outputs = [c for c in nb.cells if c.cell_type == "code"][k].outputs
        text = "".join(o.get("text", "") for o in outputs)
        text += "".join(o.data.get("text/plain", "") for o in outputs if o.output_type == "execute_result")
        return text, {kind for o in outputs for kind in o.get("data", {})}

    assert shown(2)[0] == "(3000, 10000, 10000)"  # lists, with a len
    assert re.fullmatch(
        r"Network\(sizes=\[784, 30, 10\], seed=\d+, device='\w+', dtype='float32', epoch=0\)", shown(3)[0]
    )
    text, kinds = shown(4)
    assert re.search(r"Epoch 0: \d+ / 10000 \(.*\nEpoch 1: \d+ / 10000 .*\nHistory\(2 epochs, best epoch \d", text)
    assert "application/vnd.jupyter.widget-view+json" in kinds  # progress=True: tqdm's notebook bar, a widget
    assert "image/png" in shown(5)[1]  # the curve, inline
    label = re.match(r"the picture shows a (\d); the network answers (\d)", shown(6)[0])
    assert label and label.group(1) == "7"  # MNIST's first test digit
    text, kinds = shown(7)
    assert re.search(r"Epoch 1: \d+ / 10000 .*\n\d+ History\(2 epochs, best epoch", text) and "image/png" in kinds
    assert (tmp_path / "digit.png").is_file()
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stderr"]  # no warning
