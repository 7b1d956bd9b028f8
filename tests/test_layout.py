"""The layout: gpunet/io/ is the one boundary with the outside world (it alone imports the modules that read
foreign bytes, opens files and catches OSError; cli/ may reopen the standard streams and report what is
left), no import cycles, and a short top level. docs/development.md draws the same tree."""

import ast
import builtins
import importlib
import sys
from pathlib import Path

from helpers import ROOT

PACKAGE = ROOT / "gpunet"

FOREIGN = {"gzip", "pickle", "zipfile", "tempfile", "requests", "filelock", "urllib3"}  # only io/ imports these
OPENS = {"open", "fdopen"}  # open(), os.open, io.open, Path.open, os.fdopen, ...
STREAMS = "gpunet/cli/streams.py"  # reopens stdin, stdout and stderr on /dev/null when they are closed
TOP_LEVEL = 8  # modules directly in gpunet/, besides __init__, __main__ and _version


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


def dotted(node) -> str:
    """``a.b.c`` for a name or an attribute of one; "" for anything else (a call, a subscript)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def aliases(tree: ast.AST) -> dict[str, str]:
    """Each name a module binds by importing, mapped to what it names: ``{"sock": "socket", "mkstemp": ...}``."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {
                (a.asname or a.name.split(".")[0]): (a.name if a.asname else a.name.split(".")[0]) for a in node.names
            }
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found |= {(a.asname or a.name): f"{node.module}.{a.name}" for a in node.names}
    return found


def is_os_error(name: str) -> bool:
    """Whether ``name`` (resolved through the standard library) is OSError or one of its subclasses
    (FileNotFoundError, TimeoutError, socket.timeout, asyncio.TimeoutError, ...)."""
    head, _, rest = name.partition(".")
    if not rest:
        found = getattr(builtins, head, None)
    elif head in sys.stdlib_module_names:
        try:
            found = importlib.import_module(head)
        except ImportError:
            return False
        for part in rest.split("."):
            found = getattr(found, part, None)
    else:
        return False
    return isinstance(found, type) and issubclass(found, OSError)


def caught(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, name) of each OSError (or subclass) that ``except`` or ``contextlib.suppress`` catches; a tuple counts."""
    names = aliases(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            types = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
        elif isinstance(node, ast.Call) and dotted(node.func).rpartition(".")[2] == "suppress":
            types = node.args
        else:
            continue
        for t in types:
            name = dotted(t)
            head, _, rest = name.partition(".")
            resolved = ".".join(filter(None, (names.get(head, head), rest)))
            if name and is_os_error(resolved):
                found.append((node.lineno, name))
    return found


def crossings(relative: str, source: str) -> list[str]:
    """Where the file ``relative`` (``gpunet/...``) reaches past the boundary: a foreign module imported or a file
    opened outside io/ (cli/streams.py may reopen the standard streams), OSError caught outside io/ and cli/."""
    tree = ast.parse(source)
    inside = relative.startswith("gpunet/io/")
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            modules = [node.module or ""]
        else:
            modules = []
        found += [
            f"{relative}:{node.lineno}: imports {m}" for m in modules if m.split(".")[0] in FOREIGN and not inside
        ]
        call = dotted(node.func) if isinstance(node, ast.Call) else ""
        if call.rpartition(".")[2] in OPENS and not (inside or relative == STREAMS):
            found.append(f"{relative}:{node.lineno}: calls {call}")
    if not (inside or relative.startswith("gpunet/cli/")):
        found += [f"{relative}:{line}: catches {name}" for line, name in caught(tree)]
    return sorted(found, key=lambda crossing: int(crossing.split(":")[1]))


def test_only_io_reads_the_outside_world():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        found += crossings(relative, path.read_text(encoding="utf-8"))
    assert found == []


def test_the_boundary_check_finds_each_kind_of_crossing():
    planted = """
import gzip, os
import socket as sock
from contextlib import suppress
from tempfile import mkstemp
from urllib3.util import Retry

def f(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return open(path).read() + path.open().read()
    except (ValueError, FileNotFoundError):
        pass
    except sock.timeout:
        pass
    with suppress(KeyError, PermissionError):
        pass
"""
    assert crossings("gpunet/network.py", planted) == [
        "gpunet/network.py:2: imports gzip",
        "gpunet/network.py:5: imports tempfile",
        "gpunet/network.py:6: imports urllib3.util",
        "gpunet/network.py:9: calls os.open",
        "gpunet/network.py:11: calls open",
        "gpunet/network.py:11: calls path.open",
        "gpunet/network.py:12: catches FileNotFoundError",
        "gpunet/network.py:14: catches sock.timeout",
        "gpunet/network.py:16: catches PermissionError",
    ]
    assert [line.split(": ")[1] for line in crossings("gpunet/cli/train.py", planted)] == [
        "imports gzip",
        "imports tempfile",
        "imports urllib3.util",
        "calls os.open",
        "calls open",
        "calls path.open",
    ]
    assert crossings("gpunet/io/fs.py", planted) == []


def test_catching_other_errors_is_no_crossing():
    harmless = (
        "try:\n    pass\nexcept (ValueError, KeyError, ImportError, subprocess.SubprocessError, DataError):\n    pass\n"
    )
    assert crossings("gpunet/sweep/grid.py", harmless) == []


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_cycle_check_finds_a_cycle():
    edges = {
        "gpunet.network": {"gpunet.kernels"},
        "gpunet.kernels": {"gpunet.kernels.portable"},
        "gpunet.kernels.portable": {"gpunet.network"},
        "gpunet.maths": set(),
    }
    assert cycles(edges) == [["gpunet.kernels", "gpunet.kernels.portable", "gpunet.network"]]


def test_every_module_is_read_and_lazy_imports_count():
    edges = graph()
    assert "gpunet.cli.train" in edges and "gpunet.sweep.runner" in edges
    assert "gpunet.io.model_files" in edges["gpunet.network"]  # imported inside Network.save and load


def top_level(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.py") if p.stem not in ("__init__", "__main__", "_version"))


def test_the_top_level_is_short():
    assert len(top_level(PACKAGE)) <= TOP_LEVEL, top_level(PACKAGE)


def test_the_top_level_count_sees_modules_not_packages(tmp_path):
    for name in ("__init__", "__main__", "_version", *(f"m{k}" for k in range(TOP_LEVEL + 1))):
        (tmp_path / f"{name}.py").write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "__init__.py").write_text("")
    assert len(top_level(tmp_path)) == TOP_LEVEL + 1


def test_every_subpackage_says_what_it_holds():
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc) > 80, f"{init.relative_to(ROOT)} needs a paragraph saying what it holds"
