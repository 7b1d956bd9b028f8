"""What "checked" means for the CUDA epoch kernel on one GPU: the cases it must pass, and the timings kept.

The user's run never runs this in its own process: :mod:`gpunet.kernels.cuda.verdicts` starts it as a child with a time
limit (a hang, a crash or a sticky CUDA error, such as an illegal address that poisons the whole CUDA context, ends
the child only), keeps its verdict and asks again only when something it depends on changes. ``pytest -m gpu``
starts the same child. By hand, in this process::

    python -m gpunet.kernels.cuda.check --device 0                       # the cases, then the timings
    compute-sanitizer --tool memcheck python -m gpunet.kernels.cuda.check --no-timing    # out-of-bounds accesses
    compute-sanitizer --tool racecheck python -m gpunet.kernels.cuda.check --no-timing   # shared-memory races
    compute-sanitizer --tool synccheck python -m gpunet.kernels.cuda.check --no-timing   # __syncthreads() misuse
    compute-sanitizer --tool initcheck python -m gpunet.kernels.cuda.check --no-timing   # reads of unwritten memory

The cases run without CuPy's memory pool, so that each array is its own allocation and memcheck sees where it ends.
Exit status: 0 passed, 1 a case failed (its name and numbers in one line), 2 no usable GPU.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..base import config_key
from .launcher import BOOK, EPOCH

TIMED_STEPS = 300  # mini-batches of the portable path and the CPU kernel timed, scaled to an epoch
TOLERANCE = {"float64": 1e-10, "float32": 1e-4}  # relative; absolute is 1/100 of it
ETAS = (0.5, 4.0)  # each member's eta is drawn from this range: chapter 1's eta 3 inside it
# Chapter 3's eta 0.5 and below: at chapter 1's, the cross-entropy's gradients (no σ' to damp them) on these random
# inputs amplify float32's own rounding past its tolerance within 10 mini-batches (the portable path's too).
CHAPTER_3_ETAS = (0.0625, 0.5)


@dataclass(frozen=True)
class Case:
    """One comparison of the kernel with the portable path: ``compare(backend)`` returns None, or what differed."""

    name: str
    compare: Callable[[Any], str | None]


def problem(sizes, k: int, dtype: str, members: int, seed: int = 0, etas=ETAS):
    """Returns random sparse inputs (one all zero), parameters, each member's own order of ``k`` examples and eta
    (uniform in ``etas``), as host arrays of ``dtype``."""
    rng = np.random.default_rng(seed)
    n = max(13, k)
    x = rng.random((n, sizes[0]))
    x[x < 0.6] = 0  # zero pixels, as in MNIST, exercise the skipped columns
    x[3] = 0
    y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)]
    weights = [rng.standard_normal((members, n_out, n_in)) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal((members, n_out, 1)) for n_out in sizes[1:]]
    order = np.stack([rng.permutation(np.arange(n).repeat(-(-k // n)))[:k] for _ in range(members)])
    eta = rng.uniform(etas[0], etas[1], members)
    cast = lambda arrays: [a.astype(dtype) for a in arrays]
    return x.astype(dtype), y.astype(dtype), cast(weights), cast(biases), order, eta


def portable(x, y, weights, biases, order, batch: int, eta, cost="quadratic", lmbda=0.0):
    """Returns (weights, biases) of each member trained by gpunet.maths.sgd_step on NumPy, a mini-batch at a time,
    with ``cost`` (a name of gpunet.maths.COSTS) and L2's ``lmbda`` (a number or one per member) over ``len(x)``."""
    from ...maths import COSTS, sgd_step, weight_decay

    lmbda = np.broadcast_to(np.asarray(lmbda, dtype=np.float64), order.shape[:1])
    out_w, out_b = [], []
    for i in range(order.shape[0]):
        w, b = [a[i] for a in weights], [a[i] for a in biases]
        decay = weight_decay(float(eta[i]), float(lmbda[i]), x.shape[0])
        for start in range(0, order.shape[1], batch):
            rows = order[i, start : start + batch]
            w, b = sgd_step(w, b, x[rows].T, y[rows].T, float(eta[i]), COSTS[cost], decay)
        out_w.append(w)
        out_b.append(b)
    return [np.stack(layer) for layer in zip(*out_w)], [np.stack(layer) for layer in zip(*out_b)]


def difference(got_w, got_b, want_w, want_b, dtype: str) -> str | None:
    """Returns None where every parameter is within the tolerance, else where the worst one is, and its numbers."""
    rtol = TOLERANCE[dtype]
    worst = None
    for kind, gots, wants in (("w", got_w, want_w), ("b", got_b, want_b)):
        for l, (got, want) in enumerate(zip(gots, wants), start=1):
            excess = np.abs(got - want) / (rtol * 1e-2 + rtol * np.abs(want))
            excess[~np.isfinite(got)] = np.inf
            at = np.unravel_index(int(np.argmax(excess)), excess.shape)
            if excess[at] > 1 and (worst is None or excess[at] > worst[0]):
                worst = (excess[at], f"{kind}^{l} of member {at[0]} at {list(at[1:])}", got[at], want[at])
    if worst is None:
        return None
    _, where, got, want = worst
    return f"{where}: {got:.9g}, the portable path {want:.9g} (relative tolerance {rtol:g})"


def compare_epoch(
    backend, sizes, batch: int, steps: int, dtype: str, where=None, members: int = 3, cost="quadratic", lmbda=0.0
) -> str | None:
    """Returns None, or what differed, where ``members`` networks trained for ``steps`` mini-batches by the kernel
    and by the portable path, with ``cost`` and L2's ``lmbda``, are compared (chapter 3's with its etas).
    ``where`` (parameters shared, workspace shared) forces that memory plan by lowering the shared-memory budget."""
    from .launcher import CudaEpoch, layout, plan

    etas = CHAPTER_3_ETAS if cost != "quadratic" or np.any(np.asarray(lmbda) != 0) else ETAS
    k = batch * steps - (batch > 1)  # the last mini-batch short
    x, y, weights, biases, order, eta = problem(sizes, k, dtype, members, etas=etas)
    kernel = CudaEpoch(backend, backend.asarray(x), backend.asarray(y))
    itemsize = np.dtype(dtype).itemsize
    if where is not None:
        kernel.budget = min(kernel.budget, layout(sizes, itemsize, batch, *where).shared_bytes)
        chosen = plan(sizes, itemsize, batch, kernel.budget)
        if (chosen.params_shared, chosen.work_shared) != where:
            raise ValueError(f"case {sizes} mini-batch {batch} cannot force the plan {where}")
    params = [backend.asarray(w) for w in weights], [backend.asarray(b) for b in biases]
    got_w, got_b = kernel(*params, order, batch, eta, cost, lmbda)
    want_w, want_b = portable(x, y, weights, biases, order, batch, eta, cost, lmbda)
    return difference([backend.to_host(a) for a in got_w], [backend.to_host(a) for a in got_b], want_w, want_b, dtype)


def compare_score(backend) -> str | None:
    """Returns None, or what differed, where the scoring kernel (every member in one launch,
    :mod:`gpunet.kernels.cuda.scorer`) is compared with the portable scorer on this GPU."""
    try:
        check_score(backend)
    except AssertionError as e:
        return " ".join(str(e).split())[:300]
    return None


def check_score(backend=None, inputs: int = 1000, members: int = 3) -> str:
    """Returns a line naming the plans that scored random stacks on ``backend`` as the portable scorer does, in
    float64 and float32; raises AssertionError naming the first case whose counts differ. Member 0 has a tie of
    two outputs at exactly 1 (the first wins); labels are mostly member 1's answers, so a wrong answer lowers a
    count; an input whose two best outputs are closer than the dtype's rounding is labelled -1, counted by none."""
    from ...backend import get_backend
    from ...maths import feedforward
    from ..base import count_correct
    from . import scorer
    from .launcher import CudaEpoch

    backend = backend or get_backend("cuda")
    rng = np.random.default_rng(1)
    names = set()
    for dtype in ("float64", "float32"):
        for sizes in scorer.CASES:
            x = rng.random((inputs, sizes[0])) * (rng.random((inputs, sizes[0])) < 0.2)  # ~80% zeros, as MNIST
            weights = [rng.standard_normal((members, n, n_in)) for n_in, n in zip(sizes[:-1], sizes[1:])]
            biases = [rng.standard_normal((members, n, 1)) for n in sizes[1:]]
            biases[-1][0, [1, 3]] = 1e3  # member 0: outputs 1 and 3 are both exactly 1
            outputs = np.sort(feedforward(weights, biases, x.T), axis=-2)  # (members, sizes[-1], inputs)
            gaps = outputs[:, -1] - outputs[:, -2]
            gaps[0] = outputs[0, -2] - outputs[0, -3]  # member 0: its tie, then the next best
            answers = np.argmax(feedforward([w[1] for w in weights], [b[1] for b in biases], x.T), axis=0)
            labels = np.where(rng.random(inputs) < 0.9, answers, rng.integers(0, sizes[-1], inputs))
            labels[np.min(gaps, axis=0) < {"float64": 1e-10, "float32": 1e-4}[dtype]] = -1
            device = [backend.asarray(a, dtype=dtype) for a in (x, *weights, *biases)]
            kernel = CudaEpoch(backend, device[0], device[0][:, : sizes[-1]])  # training targets: unused
            layers = len(weights)
            args = device[1 : 1 + layers], device[1 + layers :], device[0], backend.asarray(labels)
            got = backend.to_host(kernel.score(*args)).tolist()
            want = backend.to_host(count_correct(backend, *args)).tolist()
            case = f"scoring {members} x {list(sizes)} {dtype} on {inputs} inputs"
            assert got == want, f"{case}: the kernel counts {got}, the portable scorer {want}"
            assert got[0] == int(np.sum(labels == 1)), f"{case}: a tie of outputs 1 and 3 did not go to 1: {got}"
            p = scorer.plan(list(sizes), np.dtype(dtype).itemsize, kernel.scorer.budget, scorer.THREADS)
            names.add(p.name(dtype) if p else "portable")
    return f"scoring ({', '.join(sorted(names))}): equal to the portable scorer"


def compile_all(backend) -> None:
    """Compiles every instantiation the launcher can choose, together (CudaEpoch does it once it has data)."""
    from .launcher import CudaEpoch

    CudaEpoch(backend, backend.asarray(np.zeros((1, 1))), backend.asarray(np.zeros((1, 1))))


def epoch_case(sizes, batch: int, steps: int, dtype: str, where=None, cost="quadratic", lmbda=0.0) -> Case:
    place = ("global", "shared")  # indexed by a flag of where
    memory = "" if where is None else f", parameters in {place[where[0]]} memory, workspace in {place[where[1]]}"
    objective = "" if (cost, lmbda) == ("quadratic", 0.0) else f", {cost} cost, lmbda {lmbda:g}"
    name = f"{dtype} {list(sizes)} mini-batch {batch}, {steps} mini-batch{'es' if steps > 1 else ''}{memory}{objective}"
    compare = functools.partial(
        compare_epoch, sizes=list(sizes), batch=batch, steps=steps, dtype=dtype, where=where, cost=cost, lmbda=lmbda
    )
    return Case(name, compare)


PLANS = ((True, True), (True, False), (False, True), (False, False))
# The cases, in order; the first failure ends the check. Another kernel's check appends its own (a Case each).
CASES: list[Case] = [
    Case("compile every instantiation", lambda backend: compile_all(backend)),
    *[
        case
        for dtype in ("float64", "float32")
        for case in (
            epoch_case((784, 30, 10), 10, 1, dtype),  # the book's; its parameters in shared memory where they fit
            epoch_case((784, 30, 10), 10, 10, dtype),
            epoch_case((784, 100, 10), 10, 10, dtype),  # parameters in global memory (L2)
            epoch_case((784, 30, 10), 7, 10, dtype),  # an odd mini-batch, the last one short
            epoch_case((784, 30, 10), 100, 2, dtype),  # float64's workspace in global memory
            *(epoch_case((30, 20, 15, 10), 3, 10, dtype, where) for where in PLANS),  # 3 layers, every plan
            # chapter 3's: BP1 of the cross-entropy, L2's decay (the first layer's by the scale trick)
            epoch_case((784, 30, 10), 10, 10, dtype, cost="cross-entropy", lmbda=5.0),
        )
    ],
    Case("score every member in one launch, float64 and float32", lambda backend: compare_score(backend)),
]


def first_failure(backend, cases=None) -> str | None:
    """Returns the first case that fails, run in order, and how, in one line; None when all pass."""
    for case in CASES if cases is None else cases:
        try:
            failed = case.compare(backend)
        except Exception as e:  # noqa: BLE001 - a CUDA error, a compiler error: the case failed, say how
            lines = str(e).strip().splitlines()
            failed = f"{type(e).__name__}: {lines[0][:300] if lines else ''}"
        if failed:
            return f"{case.name}: {failed}"
        print(f"ok  {case.name}")
    return None


def _timed(call, backend) -> float:
    backend.synchronize()
    start = time.perf_counter()
    call()
    backend.synchronize()
    return time.perf_counter() - start


def timings(backend, sizes, batch: int, dtype: str, examples: int = EPOCH) -> dict:
    """Returns seconds per epoch of ``EPOCH`` examples: the kernel over ``examples`` of them, the portable path on
    this GPU and the CPU's kernel over up to ``TIMED_STEPS`` mini-batches, scaled; on MNIST-like sparse inputs."""
    from ...backend import get_backend
    from ..portable import PortableEpoch
    from ..registry import candidates
    from .launcher import CudaEpoch

    rng = np.random.default_rng(1)
    x = rng.random((examples, sizes[0]), dtype=np.float32)
    x *= rng.random((examples, sizes[0]), dtype=np.float32) < 0.2  # ~80% zero pixels, like MNIST
    x = x.astype(dtype, copy=False)
    y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], examples)]
    weights = [rng.standard_normal((1, n_out, n_in)).astype(dtype) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal((1, n_out, 1)).astype(dtype) for n_out in sizes[1:]]
    eta = np.array([3.0])
    steps = min(TIMED_STEPS, max(1, examples // batch))
    out = {}
    cpu = get_backend("cpu")
    cpu_kernel = next(k for k, why_not in candidates(cpu, list(sizes), dtype, batch) if why_not is None)
    for name, kind, on in (
        ("cuda", CudaEpoch, backend),
        ("portable", PortableEpoch, backend),
        ("cpu", cpu_kernel, cpu),
    ):
        epochs = kind(on, on.asarray(x), on.asarray(y))
        params = ([on.asarray(w) for w in weights], [on.asarray(b) for b in biases])
        epochs(*params, np.empty((1, 0), np.int64), batch, eta)  # compile outside the clock
        k = examples if name == "cuda" else steps * batch
        order = rng.permutation(examples)[None, :k]
        out[name] = _timed(functools.partial(epochs, *params, order, batch, eta), on) * EPOCH / k
    out["cpu_kernel"] = cpu_kernel.name
    return out


def check(device: int = 0, cases: bool = True, timed=(BOOK,), examples: int = EPOCH) -> dict:
    """Returns the check's result, found in this process: ``{"passed", "failure", "timings"}`` (timings only once
    every case passed)."""
    from ...backend import get_backend

    backend = get_backend(f"cuda:{device}")
    failure = None
    if cases:
        import cupy

        with cupy.cuda.using_allocator(None):  # no pool: one cudaMalloc an array (see the module's docstring)
            failure = first_failure(backend)
    measured = {}
    if failure is None:
        for sizes, batch, dtype in timed:
            try:
                measured[config_key(sizes, batch, dtype)] = timings(backend, sizes, batch, dtype, examples)
            except Exception as e:  # noqa: BLE001 - the kernel failed on the timing's data: that is a failure too
                failure = f"timing {config_key(sizes, batch, dtype)}: {type(e).__name__}: {str(e).strip()[:300]}"
                break
            print(f"ok  timed {config_key(sizes, batch, dtype)}: {measured[config_key(sizes, batch, dtype)]}")
    return {"passed": failure is None, "failure": failure, "timings": measured}


def _config(text: str):
    sizes, batch, dtype = text.split("/")
    return tuple(int(s) for s in sizes.split(",")), int(batch), dtype


def main(argv=None) -> int:
    from ...backend import BackendError
    from ...io.verdicts_file import write_json

    parser = argparse.ArgumentParser(prog="python -m gpunet.kernels.cuda.check", description=__doc__.split("\n")[0])
    parser.add_argument("--device", type=int, default=0, help="the CUDA device's number")
    parser.add_argument("--no-cases", dest="cases", action="store_false", help="time only")
    parser.add_argument("--no-timing", dest="timing", action="store_false", help="the cases only")
    time_help = "also time this configuration, e.g. 784,100,10/10/float64"
    parser.add_argument(
        "--time", type=_config, action="append", default=[], metavar="SIZES/BATCH/DTYPE", help=time_help
    )
    parser.add_argument("--examples", type=int, default=EPOCH, help="examples the kernel's timed epoch runs on")
    parser.add_argument("--json", metavar="FILE", help="write the result to FILE as JSON")
    args = parser.parse_args(argv)
    timed = list(dict.fromkeys([BOOK, *args.time])) if args.timing else []
    try:
        result = check(args.device, args.cases, timed, args.examples)
    except BackendError as e:
        print(f"gpunet: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        write_json(args.json, result)
    if result["failure"]:
        print(f"gpunet: the cuda kernel failed its check: {result['failure']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
