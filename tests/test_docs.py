"""The README and docs/ stay true: their gpunet commands parse, their relative links resolve.

Every fenced shell block (```sh, ```shell, ```bash, ```console) of README.md and docs/*.md is read as a shell
would split it (prompts ``$ `` stripped, ``\\`` continuations joined, comments dropped, ``&&``/``|``/``;`` between
commands); each command that runs gpunet (``gpunet``, ``.venv/bin/gpunet``, ``python -m gpunet``) goes through the
real parser. Every relative link and image, and its ``#anchor``, must name an existing file and heading.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from gpunet.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
SHELL_BLOCKS = {"sh", "shell", "bash", "console"}
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([\w+-]*)")
OPERATORS = {"&&", "||", "|", ";", "&", ";;", "|&"}


def fenced(text: str) -> tuple[list[tuple[str, list[tuple[int, str]]]], list[tuple[int, str]]]:
    """The fenced blocks of ``text`` as (language, [(line number, line)]), and the numbered lines outside them."""
    blocks: list[tuple[str, list[tuple[int, str]]]] = []
    outside: list[tuple[int, str]] = []
    inside: list[tuple[int, str]] | None = None
    fence = ""
    for number, line in enumerate(text.splitlines(), 1):
        opening = FENCE.match(line)
        if inside is None and opening:
            inside, fence = [], opening.group(1)
            blocks.append((opening.group(2).lower(), inside))
        elif inside is not None and line.strip().startswith(fence) and not line.strip().strip(fence[0]):
            inside = None
        elif inside is not None:
            inside.append((number, line))
        else:
            outside.append((number, line))
    return blocks, outside


def shell_commands(text: str):
    """(line number, argv) of every simple command in the fenced shell blocks of ``text``."""
    for language, lines in fenced(text)[0]:
        if language not in SHELL_BLOCKS:
            continue
        logical: list[tuple[int, str]] = []
        continued = False
        for number, line in lines:
            if continued:
                logical[-1] = (logical[-1][0], logical[-1][1] + " " + line)
            elif line.lstrip().startswith("$ "):
                logical.append((number, line.lstrip()[2:]))
            elif language != "console":  # in a console block, lines without a prompt are output
                logical.append((number, line))
            else:
                continue
            continued = logical[-1][1].endswith("\\")
            if continued:
                logical[-1] = (logical[-1][0], logical[-1][1][:-1])
        for number, line in logical:
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            argv: list[str] = []
            for token in [*lexer, ";"]:
                if token in OPERATORS:
                    if argv:
                        yield number, argv
                    argv = []
                else:
                    argv.append(token)


def gpunet_args(argv: list[str]) -> list[str] | None:
    """The arguments given to gpunet, or None when the command is not gpunet."""
    while argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):  # VAR=value gpunet ...
        argv = argv[1:]
    if not argv:
        return None
    program = argv[0].rsplit("/", 1)[-1]
    if program == "gpunet":
        return argv[1:]
    if re.fullmatch(r"python[\d.]*", program) and argv[1:3] == ["-m", "gpunet"]:
        return argv[3:]
    return None


def documented_commands():
    for page in PAGES:
        for number, argv in shell_commands(page.read_text()):
            args = gpunet_args(argv)
            if args is not None:
                yield pytest.param(args, id=f"{page.relative_to(ROOT)}:{number}")


COMMANDS = list(documented_commands())


def parse(args: list[str]):
    """Parse as `gpunet` would; a usage error or any other exit is a failure naming what argparse said."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            return build_parser().parse_args(args)
        except SystemExit as stop:
            if stop.code == 0 and {"-h", "--help", "--version"} & set(args):
                return None
            pytest.fail(f"gpunet {shlex.join(args)}: exit {stop.code}: {err.getvalue().strip()}")


def test_the_docs_have_commands_to_check():
    pages = {command.id.split(":")[0] for command in COMMANDS}
    assert "README.md" in pages and len(pages) >= 5, pages
    assert len(COMMANDS) >= 30, len(COMMANDS)


@pytest.mark.parametrize("args", COMMANDS)
def test_every_documented_command_parses(args):
    parse(args)


def test_the_reader_finds_what_a_shell_would_run():
    text = """
```console
$ gpunet train --seed 1
Epoch 0: 9133 / 10000
```

```sh
python3 -m venv .venv && .venv/bin/pip install x && .venv/bin/gpunet train --device cpu   # gpunet bogus
gpunet sweep --seeds 1-3 \\
    --out 'a b'   # then: gpunet sweep --resume 'a b'
GPUNET_DATA=~/m python -m gpunet info | head
docker run --rm gpunet train
```

```python
gpunet = "not a command"
```
"""
    found = [gpunet_args(argv) for _, argv in shell_commands(text)]
    assert [args for args in found if args is not None] == [
        ["train", "--seed", "1"],
        ["train", "--device", "cpu"],
        ["sweep", "--seeds", "1-3", "--out", "a b"],
        ["info"],
    ]


@pytest.mark.parametrize("args", [["train", "--made-up-flag"], ["train", "--device", "tpu"], ["frobnicate"], ["data"]])
def test_a_wrong_command_fails(args):
    with pytest.raises(pytest.fail.Exception, match="exit 2"):
        parse(args)


# Links: [text](target "title"), ![alt](target), and reference definitions [label]: target
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
CODE_SPAN = re.compile(r"(`+)(?:.+?)\1")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of the headings outside fenced blocks (a repeated heading gets -1, -2... as on GitHub)."""
    found: set[str] = set()
    repeats: dict[str, int] = {}
    for _, line in fenced(text)[1]:
        heading = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            base = slug(heading.group(1))
            n = repeats.get(base, 0)
            found.add(base if n == 0 else f"{base}-{n}")
            repeats[base] = n + 1
    return found


def links(text: str):
    """(line number, target) of every link outside fenced blocks and code spans."""
    for number, line in fenced(text)[1]:
        line = CODE_SPAN.sub("", line)
        for match in [*LINK.finditer(line), *REFERENCE.finditer(line)]:
            yield number, match.group(1)


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    broken = []
    for number, target in links(page.read_text()):
        if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:|//", target):  # http:, https:, mailto:...: not checked here
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        where = f"{page.relative_to(root)}:{number}: {target}"
        if not file.is_relative_to(root) or not file.exists():
            broken.append(f"{where}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
            broken.append(f"{where}: no heading #{anchor} in {file.relative_to(root)}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert not broken_links(page), "\n".join(broken_links(page))


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Its `second` part: here\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# Top\n[ok](docs/a.md) [ok](docs/a.md#its-second-part-here) [ok](#top) [web](https://example.org/x)\n"
        "`[not a link](nowhere.md)`\n```sh\n[not a link](nowhere.md)\n```\n"
        "[gone](docs/b.md) [no heading](docs/a.md#nothing) ![picture](pic.png)\n[ref]: ../outside.md\n"
    )
    assert [line.split(": ", 1)[1] for line in broken_links(page, tmp_path)] == [
        "docs/b.md: no such file",
        "docs/a.md#nothing: no heading #nothing in docs/a.md",
        "pic.png: no such file",
        "../outside.md: no such file",
    ]
