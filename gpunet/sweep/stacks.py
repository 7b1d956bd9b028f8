"""Stacks: many networks of chapter 1 at once, over a grid of seeds, learning rates, sizes and mini-batches.

Every member starts and shuffles as ``Network(sizes, seed=S, cost=, init=)`` does. Members that share sizes,
mini-batch size, dtype, cost and λ train as one stack (the kernels' leading member axis, an eta each), in chunks,
scored after each epoch as ``Network.evaluate`` counts: their counts equal ``gpunet train --seed S``'s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..backend import Backend, get_backend
from ..data import pin
from ..kernels import choose
from ..maths import mini_batch
from ..network import Network
from .grid import Config


@dataclass
class NetworkRecord:
    """What one network of a sweep did: correct answers after each epoch (epochs from 0, as in train)."""

    config: Config
    seed: int
    correct: list[int]
    total: int
    seconds: float  # its share of the wall time of its stack's epochs (training and evaluation)
    kernel: str = ""  # the epoch kernel that trained it

    @property
    def best_epoch(self) -> int:
        return int(np.argmax(self.correct))  # the first epoch of the best count

    @property
    def best_accuracy(self) -> float:
        return self.correct[self.best_epoch] / self.total

    @property
    def final_accuracy(self) -> float:
        return self.correct[-1] / self.total

    @property
    def rank(self) -> tuple[int, int]:
        """Networks of one configuration compare by this: the higher best count, then the earlier seed."""
        return self.correct[self.best_epoch], -self.seed


@dataclass
class Best:
    """The best network of one configuration seen so far: its parameters at its best epoch, on the host."""

    config: Config
    seed: int
    epoch: int
    correct: int
    weights: list = field(repr=False)
    biases: list = field(repr=False)
    rng_state: dict = field(repr=False)  # the shuffle generator after that epoch, for `train --resume`

    @property
    def rank(self) -> tuple[int, int]:
        return self.correct, -self.seed  # as NetworkRecord.rank

    def network(self) -> Network:
        c = self.config
        net = Network(list(c.sizes), seed=self.seed, device="cpu", dtype=c.dtype, cost=c.cost, init=c.init)
        net.lmbda = c.lmbda
        net.weights, net.biases = list(self.weights), list(self.biases)
        net.rng.bit_generator.state = self.rng_state
        net.epoch = self.epoch + 1
        return net


def better(a: Best | None, b: Best) -> Best:
    """The higher count wins; a tie goes to the earlier seed."""
    return b if a is None or b.rank > a.rank else a


def threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _epoch_runner(backend: Backend, x, y, stack: tuple, batch: int, name: str | None = None):
    """The epoch kernel for one stack, chosen by the registry as for a single run, compiled outside the clock."""
    sizes, _, dtype, cost, lmbda = stack
    kernel, _ = choose(backend, list(sizes), dtype, batch, name, cost=cost, lmbda=lmbda)
    run = kernel(backend, x, y)
    xp = backend.xp
    zeros = [
        xp.zeros((1, n_out, n_in), dtype=backend.dtype(dtype), device=backend.device)
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    ]
    run(zeros, [w[:, :, :1] for w in zeros], np.empty((1, 0), np.int64), batch, np.ones(1), cost=cost, lmbda=lmbda)
    return run


@dataclass
class ChunkResult:
    records: list[NetworkRecord]
    best: dict  # Config -> Best, the chunk's best network of each configuration


def run_chunk(
    backend: Backend,
    data,
    members: list[tuple[Config, int]],
    epochs: int,
    eval: str,
    kernels: dict | None = None,
    progress: Callable[[int], None] | None = None,
    kernel_name: str | None = None,
) -> ChunkResult:
    """The records and best networks of one stack trained ``epochs``; ``progress(k)``: k more network-epochs done.

    ``data`` is pinned on ``backend``; ``kernels`` caches a prepared kernel per stack key across chunks."""
    stack = members[0][0].stack
    sizes, batch, dtype, cost, lmbda = stack
    xp = backend.xp
    x, y = data.training_data
    batch = mini_batch(batch, x.shape[0])
    host = get_backend("cpu")
    nets = [Network(list(sizes), seed=seed, device=host, dtype=dtype, cost=cost, init=c.init) for c, seed in members]
    weights = [backend.asarray(np.stack([n.weights[l] for n in nets])) for l in range(len(sizes) - 1)]
    biases = [backend.asarray(np.stack([n.biases[l] for n in nets])) for l in range(len(sizes) - 1)]
    eta = np.asarray([c.eta for c, _ in members])
    kernels = {} if kernels is None else kernels
    if stack not in kernels:
        kernels[stack] = _epoch_runner(backend, x, y, stack, batch, kernel_name)
    kernel = kernels[stack]
    scored = {"test": data.test_data, "validation": data.validation_data}[eval]
    n, total = x.shape[0], scored[0].shape[0]
    correct = np.zeros((len(members), epochs), np.int64)
    best_weights, best_biases = weights, biases  # replaced by xp.where in the first epoch
    best_states: list = [None] * len(members)
    seconds = 0.0
    for epoch in range(epochs):
        start = time.perf_counter()
        order = np.stack([net.rng.permutation(n) for net in nets])  # each member's own shuffle, as in SGD
        weights, biases = kernel(weights, biases, order, batch, eta, cost=cost, lmbda=lmbda)
        correct[:, epoch] = backend.to_host(kernel.score(weights, biases, *scored))  # one read for the stack
        improved = correct[:, epoch] > (correct[:, :epoch].max(axis=1) if epoch else -1)
        mask = xp.reshape(backend.asarray(improved), (-1, 1, 1))
        best_weights = [xp.where(mask, w, best) for w, best in zip(weights, best_weights)]
        best_biases = [xp.where(mask, b, best) for b, best in zip(biases, best_biases)]
        for k in np.flatnonzero(improved):
            best_states[k] = nets[k].rng.bit_generator.state
        backend.synchronize()
        seconds += time.perf_counter() - start
        if progress is not None:
            progress(len(members))
    records = [
        NetworkRecord(c, s, correct[i].tolist(), total, seconds / len(members), kernel.name)
        for i, (c, s) in enumerate(members)
    ]
    winners: dict = {}  # Config -> the index of its best member in this chunk
    for i, r in enumerate(records):
        if r.config not in winners or r.rank > records[winners[r.config]].rank:
            winners[r.config] = i
    best = {}
    for c, i in winners.items():
        w, b = ([backend.to_host(a[i, ...]) for a in arrays] for arrays in (best_weights, best_biases))
        r = records[i]
        best[c] = Best(c, r.seed, r.best_epoch, r.correct[r.best_epoch], w, b, best_states[i])
    return ChunkResult(records, best)


def pin_for(pinned: dict, host, backend: Backend, config: Config):
    """The data as a stack of ``config`` trains on it (as train pins it), pinned once per (dtype, outputs)."""
    key = config.dtype, config.sizes[-1]
    if key not in pinned:
        pinned[key] = pin(host, backend, backend.dtype(config.dtype), config.sizes[-1])
    return pinned[key]


def default_chunk(device: str, cores: int) -> int:
    """Networks per stack: a few per core on the CPU (a Ctrl-C loses at most one chunk); many on a GPU."""
    return 1024 if device.startswith("cuda") else 4 * cores
