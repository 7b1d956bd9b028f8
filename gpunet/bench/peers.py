"""What a reader would write instead, timed by ``gpunet bench`` beside gpunet's kernels (optional imports).

Each peer trains ``Network(sizes, seed)``'s start in its generator's order with the book's maths in rows:
PyTorch eager with manual gradients, PyTorch with 100 steps per CUDA graph (CUDA only), and JAX with an
epoch's full mini-batches in one jitted ``lax.scan``. None is a dependency of gpunet.
"""

from __future__ import annotations

import importlib.util
import time

import numpy as np

GRAPH_STEPS = 100  # steps captured per CUDA graph, as measured in shared/gpu/README.md


def available(device_kind: str) -> list[str]:
    """The peers whose library is installed, for ``device_kind`` ("cpu" or "cuda"), found without importing it."""
    names = []
    if importlib.util.find_spec("torch"):
        names += ["torch eager", "torch graphs"] if device_kind == "cuda" else ["torch eager"]
    if importlib.util.find_spec("jax"):
        names.append("jax scan")
    return names


def not_installed() -> list[str]:
    """The peers' libraries that are not installed (their rows are left out of the table)."""
    return [name for name in ("torch", "jax") if not importlib.util.find_spec(name)]


def run(name, device_kind, x, y, weights, biases, orders, batch, eta, dtype):
    """Seconds of each epoch of peer ``name``: ``orders`` (one host permutation per epoch) drive it."""
    return train(name, device_kind, x, y, weights, biases, orders, batch, eta, dtype)[0]


def train(name, device_kind, x, y, weights, biases, orders, batch, eta, dtype):
    """(seconds of each epoch, final weights, final biases as NumPy arrays in the book's shapes)."""
    if name.startswith("torch"):
        return _torch(device_kind, x, y, weights, biases, orders, batch, eta, dtype, graphs=name == "torch graphs")
    return _jax(device_kind, x, y, weights, biases, orders, batch, eta, dtype)


def _torch(device_kind, x, y, weights, biases, orders, batch, eta, dtype, graphs):
    import torch

    if device_kind == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"PyTorch {torch.__version__} sees no CUDA GPU")
    dev = torch.device("cuda" if device_kind == "cuda" else "cpu")
    dt = getattr(torch, dtype)
    X, Y = (torch.as_tensor(a, dtype=dt, device=dev) for a in (x, y))
    W = [torch.as_tensor(w, dtype=dt, device=dev).clone() for w in weights]
    B = [torch.as_tensor(b[:, 0], dtype=dt, device=dev).clone() for b in biases]

    def step(idx, m):
        acts = [X[idx]]  # rows: a^l as (m, n_l)
        for w, b in zip(W, B):
            acts.append(torch.sigmoid(acts[-1] @ w.T + b))
        delta = (acts[-1] - Y[idx]) * acts[-1] * (1 - acts[-1])  # BP1
        for l in range(len(W) - 1, -1, -1):
            below = (delta @ W[l]) * acts[l] * (1 - acts[l]) if l else None  # BP2, from w before the update
            W[l].sub_((eta / m) * (delta.T @ acts[l]))  # BP4, eq. 20
            B[l].sub_((eta / m) * delta.sum(0))  # BP3, eq. 21
            delta = below

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    n = X.shape[0]
    full = n // batch
    saved = [a.clone() for a in W + B]
    for _ in range(3):  # warm up (allocator, kernels) outside the clock; the updates are undone below
        step(torch.arange(batch, device=dev) % n, batch)
    graph, slots = None, None
    if graphs and full >= GRAPH_STEPS:
        slots = torch.zeros((GRAPH_STEPS, batch), dtype=torch.int64, device=dev)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm up outside the capture, as torch's docs ask
            for _ in range(3):
                step(slots[0], batch)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for i in range(GRAPH_STEPS):
                step(slots[i], batch)
    for a, s in zip(W + B, saved):  # undo the warm-up's updates
        a.copy_(s)
    seconds = []
    for order in orders:
        sync()
        start = time.perf_counter()
        perm = torch.as_tensor(order, device=dev)
        done = 0
        if graph is not None and slots is not None:
            while done + GRAPH_STEPS <= full:
                slots.copy_(perm[done * batch : (done + GRAPH_STEPS) * batch].view(GRAPH_STEPS, batch))
                graph.replay()
                done += GRAPH_STEPS
        for k in range(done * batch, n, batch):
            step(perm[k : k + batch], min(batch, n - k))
        sync()
        seconds.append(time.perf_counter() - start)
    return seconds, [w.cpu().numpy() for w in W], [b.cpu().numpy()[:, None] for b in B]


def _jax(device_kind, x, y, weights, biases, orders, batch, eta, dtype):
    import jax
    import jax.numpy as jnp

    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    devices = [d for d in jax.devices() if (d.platform == "gpu") == (device_kind == "cuda")]
    if not devices:
        raise RuntimeError(f"JAX {jax.__version__} sees no {'GPU' if device_kind == 'cuda' else 'CPU'}")
    dev = devices[0]
    put = lambda a: jax.device_put(np.asarray(a, dtype), dev)  # noqa: E731
    X, Y = put(x), put(y)
    params = ([put(w) for w in weights], [put(b[:, 0]) for b in biases])

    def step(params, idx):
        W, B = params
        acts = [X[idx]]
        for w, b in zip(W, B):
            acts.append(jax.nn.sigmoid(acts[-1] @ w.T + b))
        delta = (acts[-1] - Y[idx]) * acts[-1] * (1 - acts[-1])  # BP1
        W, B, m = list(W), list(B), idx.shape[0]
        for l in range(len(W) - 1, -1, -1):
            below = (delta @ W[l]) * acts[l] * (1 - acts[l]) if l else None  # BP2
            W[l] = W[l] - (eta / m) * (delta.T @ acts[l])  # BP4, eq. 20
            B[l] = B[l] - (eta / m) * delta.sum(0)  # BP3, eq. 21
            delta = below
        return (W, B), None

    epoch = jax.jit(lambda params, idxs: jax.lax.scan(step, params, idxs)[0])
    tail = jax.jit(lambda params, idx: step(params, idx)[0])
    n = x.shape[0]
    full = n // batch
    warm = jnp.zeros((full, batch), jnp.int32)
    jax.block_until_ready(epoch(params, jax.device_put(warm, dev)))  # compile outside the clock
    if full * batch < n:
        jax.block_until_ready(tail(params, jax.device_put(np.zeros(n - full * batch, np.int32), dev)))
    seconds = []
    for order in orders:
        start = time.perf_counter()
        idxs = jax.device_put(np.asarray(order[: full * batch], np.int32).reshape(full, batch), dev)
        params = epoch(params, idxs)
        if full * batch < n:
            params = tail(params, jax.device_put(np.asarray(order[full * batch :], np.int32), dev))
        jax.block_until_ready(params)
        seconds.append(time.perf_counter() - start)
    return seconds, [np.asarray(w) for w in params[0]], [np.asarray(b)[:, None] for b in params[1]]
