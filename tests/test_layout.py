"""The layout: stages that import only downwards, no import cycles, and a short path from `gpunet train` to
the epoch kernel. docs/development.md draws the same stages."""

import ast
import inspect
from pathlib import Path

import pytest
from helpers import ROOT, cli, write_mnist_like

from gpunet.io import atomic as writing
from gpunet.kernels.portable import PortableEpoch

PACKAGE = ROOT / "gpunet"

# Stages 1 to 9, lowest first, as docs/development.md draws them: a module imports only from its own stage or
# lower ones. "" is gpunet/__init__.py, the package's public names.
STAGES = (
    {
        "_version",
        "errors",
        "validation",
        "files",
        "writing",
        "reference",
        "book_data",
    },  # foundations: no gpunet imports but these
    {"backend"},  # the xp seam
    {"maths"},  # the book's equations
    {"kernels"},  # epoch kernels and the registry that chooses
    {"data"},  # find, download, parse, pin
    {"runs"},  # model files, checkpoints, logs, manifest, atomic writes, signals
    {"network"},  # the book's Network
    {"sweep", "bench", "plots", "baselines", "mnist_loader"},  # many networks, timing, pictures, the book's
    {"cli", "__main__", ""},  # the command line, and the package's public names
)


def stage(module: str) -> int:
    """The stage of ``gpunet.X.Y...``, by ``X``."""
    top = module.split(".")[1] if "." in module else ""
    for k, names in enumerate(STAGES, 1):
        if top in names:
            return k
    raise AssertionError(f"{module} is in no stage: add it to STAGES here and to docs/development.md")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (ROOT / relative).with_suffix(".py").is_file() or (ROOT / relative / "__init__.py").is_file()


def imports(path: Path) -> set[str]:
    """The gpunet modules ``path`` imports, lazily or not (an import inside a function is an edge too)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "gpunet"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            if base.split(".")[0] != "gpunet":
                continue
            subs = [f"{base}.{a.name}" for a in node.names if is_module(f"{base}.{a.name}")]
            found |= set(subs) if subs and len(subs) == len(node.names) else {base, *subs}
    return found - {name}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each a cycle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def upward(edges: dict[str, set[str]]) -> list[str]:
    return [f"{a} (stage {stage(a)}) imports {b} (stage {stage(b)})"
            for a, targets in sorted(edges.items()) for b in sorted(targets) if stage(b) > stage(a)]  # fmt: skip


def test_no_module_imports_a_higher_stage():
    assert upward(graph()) == []


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_checks_find_a_cycle_and_an_upward_import():
    edges = {"gpunet.network": {"gpunet.kernels"}, "gpunet.kernels": {"gpunet.kernels.portable"},
             "gpunet.kernels.portable": {"gpunet.network"}}  # fmt: skip
    assert cycles(edges) == [["gpunet.kernels", "gpunet.kernels.portable", "gpunet.network"]]
    assert upward(edges) == ["gpunet.kernels.portable (stage 4) imports gpunet.network (stage 7)"]


def test_every_module_is_read_and_lazy_imports_count():
    edges = graph()
    assert "gpunet.cli.train" in edges and "gpunet.sweep.runner" in edges
    assert "gpunet.io.model_files" in edges["gpunet.network"]  # imported inside Network.save and load


def test_every_subpackage_says_what_its_stage_is():
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc) > 80, f"{init.relative_to(ROOT)} needs a paragraph saying what the stage holds"


@pytest.fixture
def gpunet_stacks(monkeypatch):
    """The gpunet modules on the call stack each time the epoch kernel runs and each time a file is written."""
    stacks = []

    def modules():
        return [f.frame.f_globals.get("__name__", "") for f in inspect.stack()]

    real_call, real_write = PortableEpoch.__call__, writing.atomic_write

    def call(self, *args):
        stacks.append(("kernel", modules()))
        return real_call(self, *args)

    def write(*args):
        stacks.append(("write", modules()))
        return real_write(*args)

    monkeypatch.setattr(PortableEpoch, "__call__", call)
    monkeypatch.setattr(writing, "atomic_write", write)
    for module in ("gpunet.io.jsonl", "gpunet.io.model_files"):
        monkeypatch.setattr(f"{module}.atomic_write", write)
    return stacks


def test_train_reaches_the_kernel_and_its_files_through_at_most_8_modules(tmp_path, gpunet_stacks):
    write_mnist_like(tmp_path, 40, 10)
    run = cli("train", "--data-dir", str(tmp_path), "--validation-size", "10", "--epochs", "1", "--device", "cpu",
              "--kernel", "portable",
              "--checkpoint", str(tmp_path / "run.npz"), "--log", str(tmp_path / "run.jsonl"))  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert {what for what, _ in gpunet_stacks} == {"kernel", "write"}
    for what, stack in gpunet_stacks:
        path = [m for m in dict.fromkeys(reversed(stack)) if m.startswith("gpunet")]
        assert path[0] == "gpunet.cli" and len(path) <= 8, f"{what}: {' -> '.join(path)}"
