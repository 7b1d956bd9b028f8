"""tools/on_a_gpu.sh, the one command to run first on a GPU (issue 27 item 8), kept working without one: it parses,
and each of its steps names a module, file, test or option of this checkout that exists."""

import ast
import re
import shlex
import shutil
import subprocess

import pytest
from helpers import ROOT

from gpunet.kernels.cuda import check, launcher

SCRIPT = ROOT / "tools" / "on_a_gpu.sh"


def steps() -> list[list[str]]:
    """The command of each ``step NAME SECONDS COMMAND...`` line (continuations joined), as words."""
    text = SCRIPT.read_text(encoding="utf-8").replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        words = shlex.split(line.split(" #")[0].strip(), comments=True)
        if words[:1] == ["step"] and words[1] not in ("NAME",):
            found.append(words[3:])
    return found


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_script_parses():
    done = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_the_steps_run_in_the_issues_order_within_ten_minutes():
    text = SCRIPT.read_text(encoding="utf-8").replace("\\\n", " ")
    limits = [int(line.split()[2]) for line in text.splitlines() if line.strip().startswith("step ")]
    loops = text.count("for tool in memcheck synccheck racecheck; do")
    assert sum(limits) + 2 * limits[-1] * loops <= 600, limits  # the loop's one step runs three times
    names = [w[0:3] for w in steps()]
    assert [n[0] for n in names] == ["nvidia-smi", "python3", "python3", "python3", "compute-sanitizer"], names


def test_each_step_names_what_exists(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(check, "check", lambda *args: calls.append(args) or {"failure": None})
    for words in steps():
        if words[0] == "compute-sanitizer":
            assert words[words.index("--tool") + 1] == "$tool"  # the loop's memcheck, synccheck, racecheck
            words = words[words.index("python3") :]
        if words[:2] == ["python3", "-m"] and words[2] == "gpunet.kernels.cuda.check":
            argv = [w.replace("$out", str(tmp_path)) for w in words[3:]]
            assert check.main(argv) == 0, argv  # every option parses (the check itself is replaced)
        elif words[:3] == ["python3", "-m", "pytest"]:
            assert "gpu" in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
            for path in (w for w in words if w.startswith("tests/")):
                assert (ROOT / path).is_file(), path
        elif words[0] == "python3":
            ast.parse((ROOT / words[1]).read_text(encoding="utf-8"))
    assert len(calls) == 2 and calls[0][2] and not calls[1][2], "the check with timings, the sanitizers' without"


def test_the_opt_in_probe_launches_the_kernel_with_its_arguments():
    """tools/gpu_attributes.py launches sgd_epoch by hand (zero steps): as many arguments as the kernel declares,
    or the probe would fail on the GPU for a reason of ours."""
    source = re.sub(r"//[^\n]*", "", launcher.SOURCE.read_text(encoding="utf-8"))  # comments hold commas
    declared = source.split("sgd_epoch(", 1)[1].split(") {", 1)[0]
    want = len([p for p in declared.split(",") if p.strip()])
    probe = ast.parse((ROOT / "tools" / "gpu_attributes.py").read_text(encoding="utf-8"))
    tuples = [
        node.value
        for node in ast.walk(probe)
        if isinstance(node, (ast.Assign, ast.AugAssign))
        and isinstance(node.value, ast.Tuple)
        and any(
            isinstance(t, ast.Name) and t.id == "args"
            for t in getattr(node, "targets", [getattr(node, "target", None)])
        )
    ]
    assert sum(len(t.elts) for t in tuples) == want
