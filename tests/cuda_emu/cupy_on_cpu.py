"""A stand-in for the part of CuPy that gpunet/kernels/cuda.py uses, running its kernel on the CPU.

Arrays are NumPy arrays; a RawModule's kernels launch through the g++-built ``harness.cpp``, which converts
each argument to the type the kernel declares at its position and refuses any other, runs the real .cu under
``cuda_emu.h`` and writes the buffers back. So a test through this module checks the launcher (packing,
argument order and types, the memory plan, the shared-memory opt-in, unpacking) together with the kernel.
"""

import subprocess
import types
from pathlib import Path

import numpy as np

DEFAULT_SHARED = 48 * 1024  # what a kernel may use without raising max_dynamic_shared_size_bytes


def module(harness: Path, folder: Path, shared_optin: int = 232448, env=None) -> types.ModuleType:
    """A ``cupy`` module whose kernels run through ``harness``, exchanging files in ``folder``."""
    cupy = types.ModuleType("cupy")
    cupy.uint8 = np.uint8
    cupy.asarray = lambda a, dtype=None: np.array(a, dtype=dtype)  # a copy, as a host-to-device transfer is
    cupy.ascontiguousarray = np.ascontiguousarray
    cupy.concatenate = np.concatenate
    cupy.empty = empty
    cupy.RawModule = lambda code, options, name_expressions: RawModule(name_expressions, harness, folder, env)
    device = types.SimpleNamespace(id=0)
    properties = {"sharedMemPerBlockOptin": shared_optin, "sharedMemPerMultiprocessor": 233472}  # an H100's
    cupy.cuda = types.SimpleNamespace(
        Device=lambda *a: device, runtime=types.SimpleNamespace(getDeviceProperties=lambda i: properties)
    )
    cupy.shared_optin = shared_optin
    return cupy


def empty(shape, dtype):
    """Uninitialised memory, as NaN bytes (0xff), so that reading what nobody wrote shows in the results."""
    a = np.empty(shape, dtype)
    a.view(np.uint8)[...] = 0xFF
    return a


class RawModule:
    def __init__(self, names, harness, folder, env):
        self.names, self.harness, self.folder, self.env = tuple(names), harness, folder, env
        self.launches = []

    def compile(self):
        pass

    def get_function(self, name):
        assert name in self.names, f"{name} was not among the module's name expressions"
        return Kernel(name, self)


class Kernel:
    def __init__(self, name, module):
        self.name, self.module = name, module
        self.max_dynamic_shared_size_bytes = DEFAULT_SHARED
        self.preferred_shared_memory_carveout = -1  # no preference

    def __call__(self, grid, block, args, shared_mem=0):
        assert shared_mem <= self.max_dynamic_shared_size_bytes, "more than 48 KiB of shared memory needs an opt-in"
        folder = self.module.folder
        lines = [self.name, f"{grid[0]} {block[0]} {shared_mem}"]
        for i, a in enumerate(args):
            if isinstance(a, np.ndarray):
                assert a.flags.c_contiguous, f"argument {i}: a kernel sees a pointer; the array must be contiguous"
                a.tofile(folder / f"arg{i}.bin")
                lines.append(f"buffer {a.dtype.name}")
            elif isinstance(a, np.generic):
                value = float(a).hex() if isinstance(a, np.floating) else str(int(a))
                lines.append(f"{a.dtype.name} {value}")
            else:
                raise TypeError(f"argument {i}: pass NumPy scalars, whose type says what the kernel receives")
        (folder / "launch.txt").write_text("\n".join(lines) + "\n")
        run = subprocess.run(
            [str(self.module.harness), str(folder)], capture_output=True, text=True, env=self.module.env, timeout=300
        )
        assert run.returncode == 0 and not run.stderr, run.stderr[-4000:]
        for i, a in enumerate(args):
            if isinstance(a, np.ndarray):
                a.reshape(-1)[...] = np.fromfile(folder / f"arg{i}.bin", dtype=a.dtype)
        self.module.launches.append((self.name, grid, block, shared_mem, self.preferred_shared_memory_carveout))
