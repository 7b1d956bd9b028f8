"""The speed model of the CUDA epoch kernel, counted from its SASS (issue 28 item 4): modelled, not measured.

Usage: python tests/sass_model.py  (needs the test extra's NVRTC and nvidia-cuda-nvdisasm; no GPU)

NVRTC compiles the instantiation the launcher chooses for [784, 30, 10] float32, mini-batch 10, at 1024 threads
(with -lineinfo), nvdisasm prints its SASS with source lines, and each loop of the SASS (a backward branch and
the instructions from its target to it) is attributed to a loop of sgd_epoch.cu: by the source line most of its
own instructions (those not in an inner loop) come from, its parent loop's, and whether it has inner loops
(FAMILIES). Copies the compiler made of one source loop (unrolled by u, then its remainder by a smaller u) share
that source loop; u is the loop's count of the source loop's key instruction over the key instructions one
source iteration executes. A family gives, per thread, the source iterations of each entry into the loop for
this configuration; a warp runs a loop as long as one of its lanes does. Every instruction is then counted once
per trip of its innermost loop per warp (once per warp per mini-batch outside the inner loops); instructions
before and after the mini-batch loop are left out. Branches inside a loop body are counted as taken (an upper
bound), and a straight-line remainder of an unrolled loop once per entry; the branch that folds the scale trick's s
into the weights, which this configuration never takes, is left out (untaken).

Rates are those of ../shared/gpu/preflight/PREFLIGHT.md section 4 (assumed, not measured): shared and L1 loads
in 128-byte wavefronts (a 32-bit warp load is one, a 64-bit one two, bank conflicts not counted), FP32 FMA per
SM per clock, the clock, and a fixed latency and barrier allowance per mini-batch.
"""

import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from gpunet.kernels.cuda import launcher as cuda

SIZES, BATCH, NA, THREADS = (784, 30, 10), 10, 382, cuda.THREADS  # NA: active input columns, MNIST's mean
COUNTED = ("FFMA", "LDS", "LDG", "BAR")


@dataclass(frozen=True)
class GPU:
    name: str
    arch: str
    shared_optin: int  # the shared memory a block may opt in to, which chooses the instantiation
    clock_ghz: float
    wavefronts_per_clk: float
    fma_per_clk: int  # FP32 lanes
    fixed_cycles: int  # latency and barriers per mini-batch


GPUS = (GPU("H100 SXM", "sm_90", 232448, 1.98, 1.0, 128, 3000), GPU("T4", "sm_75", 65536, 1.4, 0.5, 64, 8000))


def sass(arch: str, name: str) -> str:
    """The SASS, with source lines, of instantiation ``name`` compiled for ``arch`` as CuPy would."""
    from cuda.bindings import nvrtc

    def check(result):
        assert result[0] == nvrtc.nvrtcResult.NVRTC_SUCCESS, result
        return result[1] if len(result) > 1 else None

    prog = check(nvrtc.nvrtcCreateProgram(cuda.SOURCE.read_bytes(), b"sgd_epoch.cu", 0, [], []))
    try:
        check(nvrtc.nvrtcAddNameExpression(prog, name.encode()))
        opts = (*cuda.OPTIONS, f"--gpu-architecture={arch}", "--device-as-default-execution-space", "-ftz=true")
        opts = [o.encode() for o in (*opts, "-lineinfo")]
        check(nvrtc.nvrtcCompileProgram(prog, len(opts), opts))
        cubin = b" " * check(nvrtc.nvrtcGetCUBINSize(prog))
        check(nvrtc.nvrtcGetCUBIN(prog, cubin))
    finally:
        nvrtc.nvrtcDestroyProgram(prog)
    with tempfile.TemporaryDirectory() as folder:  # nvdisasm reads a file, not a pipe
        path = Path(folder) / "kernel.cubin"
        path.write_bytes(cubin)
        return subprocess.run([nvdisasm(), "-c", "-g", str(path)], capture_output=True, check=True).stdout.decode()


def nvdisasm() -> str:
    """The nvdisasm of the nvidia-cuda-nvdisasm wheel."""
    import nvidia

    found = [p for root in nvidia.__path__ for p in Path(root).glob("*/bin/nvdisasm")]
    if not found:
        raise FileNotFoundError("nvdisasm: pip install nvidia-cuda-nvdisasm (the test extra)")
    return str(found[0])


def parse(text: str):
    """(instructions as (opcode, source line), loops as (first, last) instruction indexes of each backward branch)."""
    ins, labels, branches, line = [], {}, [], 0
    for row in text.splitlines():
        if m := re.match(r'\s*//## File "[^"]*", line (\d+)', row):
            line = int(m.group(1))
        elif m := re.match(r"^(\.L_x_\d+):", row):
            labels[m.group(1)] = len(ins)
        elif m := re.match(r"\s*/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)(.*);", row):
            if m.group(1).startswith("BRA") and (t := re.search(r"\.L_x_\d+", m.group(2))):
                branches.append((len(ins), t.group(0)))
            ins.append((m.group(1), line))
    loops = sorted({(labels[t], i) for i, t in branches if labels[t] <= i}, key=lambda lp: (lp[0], -lp[1]))
    return ins, loops


def line_of(pattern: str, after: int = 0) -> int:
    """The first line of sgd_epoch.cu after line ``after`` that matches ``pattern`` (the only one if ``after`` is
    0), so that the families follow the source as it changes."""
    found = [
        n for n, text in enumerate(cuda.SOURCE.read_text().splitlines(), 1) if n > after and re.search(pattern, text)
    ]
    assert len(found) == 1 or (after and found), f"{pattern!r} matches lines {found} of {cuda.SOURCE.name}"
    return found[0]


def families(m=BATCH, na=NA, T=THREADS):
    """name -> (header, inner, parent, key, iterations) for a two-layer network SIZES at 1024 threads: the line of
    the source loop's `for` (where the SASS loop's backward branch comes from), the header of an inner loop it must
    have (None: it has none), its parent's header where that tells copies apart, the key opcode and its count per
    source iteration (None: not unrolled), and tid -> the source iterations of each entry into the loop."""
    n0, H, O = SIZES
    lines = (n0 * 4 + 127) // 128
    p1, p2 = T // (H * m), T // (O * m)  # parts of the layer sums (C)
    L = line_of
    col_active, dot_cols, dot = L(r"any \|= x\["), L(r"s \+= w\[cols\[q\]\]"), L(r"s \+= w\[q\] \* a")
    columns, next_columns = L(r"for \(int c = c_begin; c < c_end; \+\+c\) \{"), L(r"c < c_end && m_next > 0")
    c_items, d_items, e_items = L(r"t < outputs; t \+= nthreads"), L(r"t < n \* m; t \+= nthreads"), L(r"t < n \* cols")
    biases = L(r"for \(int j = tid; j < n; j \+= nthreads\)")
    layers = r"for \(int l = 1; l <= layers; \+\+l\)"
    c_layers, e_layers = L(layers, after=L(r"// C\. Feedforward")), L(layers, after=L(r"// E\. BP3"))

    def part(tid, terms, parts, outputs):
        r = tid // outputs
        return [terms * (r + 1) // parts - terms * r // parts] if tid < parts * outputs else []

    def spread(tid, n):  # for (t = tid; t < n; t += T): one entry, len(range(...)) iterations
        return [len(range(tid, n, T))] if tid < n else []

    def each(tid, n, per):  # an inner loop of `per` iterations in each iteration of such a loop
        return [per] * len(range(tid, n, T))

    none = lambda t: []  # a copy for a case this configuration never takes (an empty inner loop, parts 1)
    return {
        "E  fold of a small s": (L(r"p\[t\] \*= s;", after=L(r"if \(s < FOLD")), None, None, None, none),
        "A  group sums": (L(r"s \+= counts\[i\]"), None, None, ("LDS", 1), lambda t: [32] if t * 32 < T else []),
        "A  rows": (L(r"rows\[e\] = my_order"), None, None, None, lambda t: spread(t, m)),
        "A  prefetch": (L(r"i < m_next \* lines"), None, None, None, lambda t: spread(t, m * lines)),
        "B  prefix over groups": (L(r"q \+= group_sums"), None, None, ("LDS", 1), lambda t: [t // 32]),
        "B  prefix in group": (L(r"q \+= counts\[i\]"), None, None, ("LDS", 1), lambda t: [t % 32]),
        "B  columns": (columns, col_active, None, None, lambda t: spread(t, n0)),
        "B  column active?": (col_active, None, columns, ("LDG", 1), lambda t: each(t, n0, m)),
        "B  gather inputs": (L(r"xa\[q \* m \+ e\] = x"), None, None, ("LDG", 1), lambda t: each(t, n0, m)),
        "C  layers": (c_layers, c_items, None, None, lambda t: [2]),
        "C1 partial sums": (dot_cols, None, c_layers, ("FFMA", 1), lambda t: part(t, na, p1, H * m)),
        "C2 partial sums": (dot, None, c_layers, ("FFMA", 1), lambda t: part(t, H, p2, O * m)),
        "C  sums, sigmoid, BP1": (
            c_items,
            L(r"z \+= partial"),
            None,
            None,
            lambda t: spread(t, H * m) + spread(t, O * m),
        ),
        "C  sum of parts": (
            L(r"z \+= partial"),
            None,
            None,
            ("FADD", 1),
            lambda t: each(t, H * m, p1) + each(t, O * m, p2),
        ),
        "C  dot of one part (parts 1)": (dot_cols, None, c_items, None, none),
        "C  dot of one part, layer 2": (dot, None, c_items, None, none),
        "D  layers": (L(r"for \(int l = layers - 1; l >= 1; --l\)"), d_items, None, None, lambda t: [1]),
        "D  BP2 items": (d_items, L(r"s \+= w_next"), None, None, lambda t: spread(t, H * m)),
        "D  BP2 items, no sum": (d_items, None, None, None, none),
        "D  BP2 sum": (L(r"s \+= w_next"), None, None, ("FFMA", 1), lambda t: each(t, H * m, O)),
        "E  layers": (e_layers, e_items, None, None, lambda t: [2]),
        "E  dC/dw items": (
            e_items,
            L(r"g \+= d\[j \* m \+ e\] \* a_prev"),
            None,
            None,
            lambda t: spread(t, H * na) + spread(t, O * H),
        ),
        "E  dC/dw items, no sum": (e_items, None, None, None, none),
        "E  dC/dw sum": (
            L(r"g \+= d\[j \* m \+ e\] \* a_prev"),
            None,
            None,
            ("FFMA", 1),
            lambda t: each(t, H * na, m) + each(t, O * H, m),
        ),
        "E  bias items": (biases, L(r"g \+= d\[j \* m \+ e\];"), None, None, lambda t: spread(t, H) + spread(t, O)),
        "E  bias items, no sum": (biases, None, None, None, none),
        "E  bias sum": (
            L(r"g \+= d\[j \* m \+ e\];"),
            None,
            None,
            ("FADD", 1),
            lambda t: each(t, H, m) + each(t, O, m),
        ),
        "E  next columns": (next_columns, col_active, None, None, lambda t: spread(t, n0)),
        "E  next column active?": (col_active, None, next_columns, ("LDG", 1), lambda t: each(t, n0, m)),
    }, L(r"for \(int start = 0")


def untaken() -> set[int]:
    """The source lines of the branch that folds a small s into the first layer's weights (the scale trick): taken
    once s falls below FOLD, at λ > 0 after about a million mini-batches, never in the book's configuration."""
    start = line_of(r"if \(s < FOLD")
    return set(range(start, start + 4))


def count(text: str, m=BATCH, na=NA, T=THREADS):
    """Per mini-batch: executed warp instructions of COUNTED by family, each loop's (family, unroll), and the loops
    inside the mini-batch loop that no family describes."""
    ins, loops = parse(text)
    fams, main = families(m, na, T)
    size = [b - a for a, b in loops]
    inner = [None] * len(ins)  # innermost loop of each instruction
    for k, (a, b) in enumerate(loops):
        for i in range(a, b + 1):
            if inner[i] is None or size[inner[i]] > size[k]:
                inner[i] = k
    header = [ins[b][1] for a, b in loops]  # the line of the backward branch: the source loop's `for`
    parent = [
        min(
            (j for j, (a, b) in enumerate(loops) if j != k and a <= loops[k][0] and loops[k][1] <= b),
            key=size.__getitem__,
            default=None,
        )
        for k in range(len(loops))
    ]
    kids = [{header[j] for j in range(len(loops)) if parent[j] == k} for k in range(len(loops))]
    main_loop = max((k for k in range(len(loops)) if header[k] == main), key=size.__getitem__)
    inside = [
        k
        for k in range(len(loops))
        if k != main_loop and loops[main_loop][0] <= loops[k][0] and loops[k][1] <= loops[main_loop][1]
    ]
    attributed, unattributed = {}, []
    for k in inside:
        for name, (line, needs, above, key, _) in fams.items():
            if (
                header[k] == line
                and (needs in kids[k] if needs else not kids[k])
                and (above is None or header[parent[k]] == above)
            ):
                own = (
                    sum(ins[i][0].split(".")[0] == key[0] for i in range(loops[k][0], loops[k][1] + 1) if inner[i] == k)
                    if key
                    else 0
                )
                attributed[k] = (name, max(1, round(own / key[1])) if key else 1)
                break
        else:
            unattributed.append(header[k])
    trips = {main_loop: T // 32}
    for k, (name, unroll) in attributed.items():
        larger = sorted({u for n, u in attributed.values() if n == name and u > unroll}, reverse=True)
        fn, total = fams[name][4], 0
        for w in range(0, T, 32):
            entries = [fn(t) for t in range(w, w + 32)]
            for e in range(max(map(len, entries))):
                n = max(x[e] if e < len(x) else 0 for x in entries)  # a warp loops while one lane does
                for u in larger:  # the iterations the more unrolled copies left
                    n %= u
                total += n // unroll
        trips[k] = total
    out, skip = {}, untaken()
    for i, (op, line) in enumerate(ins):
        if line in skip:
            continue
        k = inner[i]
        while k is not None and k not in trips:  # outside the mini-batch loop (None), or in an unknown loop
            k = parent[k] if k not in inside else None
        if k is None or (base := op.split(".")[0]) not in COUNTED:
            continue
        group = "   straight-line code, per warp" if k == main_loop else attributed[k][0]
        weight = (2 if ".64" in op else 4 if ".128" in op else 1) if base in ("LDS", "LDG") else 1
        out.setdefault(group, Counter())[base] += trips[k] * weight
    return out, attributed, unattributed


def model(gpu: GPU):
    """(instantiation, counts by family, totals, microseconds per mini-batch, seconds per epoch): modelled."""
    plan = cuda.plan(list(SIZES), 4, BATCH, gpu.shared_optin)
    name = cuda.name_expression("float32", plan.params_shared, plan.work_shared)
    rows, _, _ = count(sass(gpu.arch, name))
    total = sum(rows.values(), Counter())
    cycles = max((total["LDS"] + total["LDG"]) / gpu.wavefronts_per_clk, total["FFMA"] * 32 / gpu.fma_per_clk)
    us = (cycles + gpu.fixed_cycles) / gpu.clock_ghz / 1e3
    return name, rows, total, us, us * 60000 / BATCH / 1e6


def main() -> int:
    print(
        f"[{', '.join(map(str, SIZES))}] float32, mini-batch {BATCH}, {THREADS} threads, {NA} active columns: modelled"
    )
    for gpu in GPUS:
        name, rows, total, us, epoch = model(gpu)
        print(f"\n{gpu.name} ({gpu.arch}), {name}: warp instructions executed per mini-batch (loads in wavefronts)")
        print(f"  {'phase':34s} " + " ".join(f"{c:>8s}" for c in COUNTED))
        for group in sorted(rows):
            print(f"  {group:34s} " + " ".join(f"{rows[group][c]:8d}" for c in COUNTED))
        print(f"  {'total':34s} " + " ".join(f"{total[c]:8d}" for c in COUNTED))
        print(f"  modelled: {us:.1f} us per mini-batch, {epoch * 1e3:.0f} ms per epoch of 60,000 examples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
