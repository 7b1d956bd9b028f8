"""The CUDA kernels' resources per architecture and NVRTC: every instantiation compiled to a cubin by NVRTC (no GPU
needed), with the registers, spills and stack that ptxas reports and the static shared memory in the cubin (which
its log does not show: 1 KiB on sm_90 and later). The table in docs/gpu.md is this command's output:

    .venv/bin/python tests/kernels/cuda_resources.py --python .venv-cuda12/bin/python

(``--python``: also measure under that interpreter's NVRTC, e.g. the one ``gpunet[cuda12]`` installs, made by
tests/kernels/test_cuda_resources.py). Worker mode (``--worker``) reads the kernels as JSON on stdin, writes rows as
JSON: it needs only ``cuda-bindings`` and an NVRTC, not gpunet.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ARCHS = (75, 80, 86, 89, 90, 100, 120)  # T4; A100; RTX 30; RTX 40, L4; H100; B200; RTX 50
# CuPy's RawModule adds these to a kernel's own options (cupy/cuda/compiler.py); -Xptxas=-v makes ptxas report.
CUPY_OPTIONS = ("--device-as-default-execution-space", "-ftz=true", "-Xptxas=-v")


def kernels() -> list[dict]:
    """Both kernels as the launcher and the scorer compile them: name, source text, options, name expressions."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from gpunet.kernels.cuda import launcher, scorer

    return [
        {"kernel": m.SOURCE.stem, "source": m.SOURCE.read_text(encoding="utf-8"), "options": list(m.OPTIONS)}
        | {"names": list(m.INSTANTIATIONS)}
        for m in (launcher, scorer)
    ]


def nvrtc_version() -> str:
    from cuda.bindings import nvrtc

    return "{}.{}".format(*nvrtc.nvrtcVersion()[1:])


def supported(arch: int) -> bool:
    from cuda.bindings import nvrtc

    return arch in nvrtc.nvrtcGetSupportedArchs()[1]


def static_shared(cubin: bytes) -> dict[str, int]:
    """Bytes of static shared memory per kernel: the sizes of the cubin's ``.nv.shared.<kernel>`` sections (ELF64,
    little-endian; read here so that a second environment needs no ELF library)."""
    (shoff,) = struct.unpack_from("<Q", cubin, 0x28)
    entsize, count, names = struct.unpack_from("<HHH", cubin, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", cubin, shoff + i * entsize) for i in range(count)]
    strings = headers[names][4]
    name = lambda h: cubin[strings + h[0] : cubin.index(b"\0", strings + h[0])].decode()
    return {name(h)[len(".nv.shared.") :]: h[5] for h in headers if name(h).startswith(".nv.shared.")}


def ptxas(log: str) -> dict[str, dict]:
    """Per entry function: registers, bytes of spill stores and loads, and stack frame, from ``-Xptxas -v``."""
    found, entry = {}, None
    for line in log.splitlines():
        if m := re.search(r"Compiling entry function '(\w+)'", line):
            entry = found.setdefault(m.group(1), {})
        elif entry is not None and (m := re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+)", line)):
            entry.update(stack=int(m.group(1)), stores=int(m.group(2)), loads=int(m.group(3)))
        elif entry is not None and (m := re.search(r"Used (\d+) registers", line)):
            entry["registers"] = int(m.group(1))
    return found


def measure(kernel: dict, arch: int) -> list[dict]:
    """One row per instantiation of ``kernel`` compiled for sm_``arch``; raises with NVRTC's log if it fails."""
    from cuda.bindings import nvrtc

    def check(result):
        if result[0] != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise RuntimeError(f"NVRTC: {result[0]}")
        return result[1] if len(result) > 1 else None

    prog = check(nvrtc.nvrtcCreateProgram(kernel["source"].encode(), f"{kernel['kernel']}.cu".encode(), 0, [], []))
    try:
        for name in kernel["names"]:
            check(nvrtc.nvrtcAddNameExpression(prog, name.encode()))
        options = [o.encode() for o in (*kernel["options"], f"--gpu-architecture=sm_{arch}", *CUPY_OPTIONS)]
        ok = nvrtc.nvrtcCompileProgram(prog, len(options), options)[0] == nvrtc.nvrtcResult.NVRTC_SUCCESS
        log = bytes(check(nvrtc.nvrtcGetProgramLogSize(prog)))
        check(nvrtc.nvrtcGetProgramLog(prog, log))
        log = log.decode(errors="replace").rstrip("\0 ")
        if not ok:
            raise RuntimeError(f"NVRTC {nvrtc_version()} cannot compile {kernel['kernel']} for sm_{arch}:\n{log}")
        cubin = bytes(check(nvrtc.nvrtcGetCUBINSize(prog)))
        check(nvrtc.nvrtcGetCUBIN(prog, cubin))
        lowered = {n: check(nvrtc.nvrtcGetLoweredName(prog, n.encode())).decode() for n in kernel["names"]}
    finally:
        nvrtc.nvrtcDestroyProgram(prog)
    usage, shared = ptxas(log), static_shared(cubin)
    row = lambda n: {"nvrtc": nvrtc_version(), "arch": arch, "name": n, "lowered": lowered[n], **usage[lowered[n]]}
    return [row(n) | {"static_shared": shared.get(lowered[n], 0)} for n in kernel["names"]]


def _measure(job):
    return measure(*job)


def rows(specs: list[dict], archs=ARCHS, jobs: int | None = None) -> list[dict]:
    """Every instantiation of every kernel on every architecture this NVRTC supports (the others are left out)."""
    todo = [(k, a) for a in archs if supported(a) for k in specs]
    with ProcessPoolExecutor(jobs or min(len(todo), os.cpu_count() or 1)) as pool:
        return [r for rs in pool.map(_measure, todo) for r in rs]


def rows_under(python: str, specs: list[dict], archs=ARCHS) -> list[dict]:
    """``rows`` measured by another interpreter (another NVRTC), through worker mode."""
    request = json.dumps({"specs": specs, "archs": list(archs)})
    done = subprocess.run(
        [python, __file__, "--worker"], input=request, capture_output=True, text=True, check=False, timeout=900
    )
    if done.returncode:
        raise RuntimeError(f"{python} {__file__} --worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def cell(r: dict) -> str:
    """Registers, then spill stores/loads in bytes where ptxas spilled."""
    return f"{r['registers']}" + (f" ({r['stores']}/{r['loads']})" if r["stores"] or r["loads"] else "")


def table(found: list[dict]) -> str:
    """One Markdown table per kernel: a row per NVRTC and architecture, a column per instantiation."""
    out = []
    for kernel in ("sgd_epoch", "evaluate"):
        names = list(dict.fromkeys(r["name"] for r in found if f"::{kernel}<" in r["name"]))
        heads = [n.split("<")[1].rstrip(">").replace("float", "f").replace("double", "d") for n in names]
        out += [f"| NVRTC | arch | static shared | {' | '.join(heads)} |", "|---" * (3 + len(names)) + "|"]
        keys = sorted({(r["nvrtc"], r["arch"]) for r in found}, key=lambda k: (tuple(map(int, k[0].split("."))), k[1]))
        for nv, arch in keys:
            mine = {r["name"]: r for r in found if (r["nvrtc"], r["arch"]) == (nv, arch)}
            shared = sorted({mine[n]["static_shared"] for n in names})
            out.append(
                f"| {nv} | sm_{arch} | {'/'.join(map(str, shared))} | {' | '.join(cell(mine[n]) for n in names)} |"
            )
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", action="append", default=[], help="also measure under this interpreter's NVRTC")
    parser.add_argument("--worker", action="store_true", help="JSON in (stdin), JSON rows out (stdout)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.worker:
        request = json.load(sys.stdin)
        json.dump(rows(request["specs"], request["archs"]), sys.stdout)
        return 0
    specs = kernels()
    found = [r for python in args.python for r in rows_under(python, specs)] + rows(specs)
    if args.json:
        Path(args.json).write_text(json.dumps(found), encoding="utf-8")
    sys.stdout.write(table(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
