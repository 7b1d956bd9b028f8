"""A stand-in for the part of CuPy that gpunet/kernels/cuda.py uses, running its kernel on the CPU.

Arrays are NumPy arrays of a subclass, :class:`DeviceArray`, made only by this module's ``asarray``, ``empty``,
``zeros``, ``concatenate`` and ``ascontiguousarray``: a kernel refuses a plain NumPy array, as CuPy refuses a host
array of more than one element, so a launcher that forgets to copy something to the device fails here too. A RawModule's
kernels launch through the g++-built ``harness.cpp``, which converts each argument to the type the kernel declares
at its position and refuses any other, runs the real .cu under ``cuda_emu.h`` and writes the buffers back. So a
test through this module checks the launcher (packing, argument order and types, the memory plan, the
shared-memory opt-in, unpacking) together with the kernel.

It refuses what real CuPy refuses (PREFLIGHT.md section 1): options not a tuple, positional RawModule arguments,
NumPy arrays where CuPy takes device arrays, a max_dynamic_shared_size_bytes above the device's opt-in less the
kernel's static shared memory, a block larger than the -DGPUNET_THREADS it was compiled for. As on a GPU, a kernel's
fault is reported at the next wait (``get_current_stream().synchronize()``) or launch, not by the launch itself;
``cupy.faults`` lists CUDA statuses (702: the watchdog) that the next launches end in instead of running.
"""

import contextlib
import re
import subprocess
import types
from pathlib import Path

import numpy as np

DEFAULT_SHARED = 48 * 1024  # what a kernel may use without raising max_dynamic_shared_size_bytes


class CUDARuntimeError(RuntimeError):
    """CuPy's error of a failed CUDA call, with its status."""

    def __init__(self, status: int, text: str = ""):
        super().__init__(f"{STATUS.get(status, 'cudaError')}: {text}")
        self.status = status


STATUS = {1: "cudaErrorInvalidValue", 702: "cudaErrorLaunchTimeout", 719: "cudaErrorLaunchFailure"}


def module(
    harness: Path, folder: Path, shared_optin: int = 232448, env=None, watchdog: int = 0, static_shared: int = 0
) -> types.ModuleType:
    """A ``cupy`` module whose kernels run through ``harness``, exchanging files in ``folder``, on a GPU with
    ``shared_optin`` bytes of shared memory a block, a display watchdog where ``watchdog`` is 1, and kernels with
    ``static_shared`` bytes of static shared memory (1 KiB on sm_90 and later)."""
    cupy = types.ModuleType("cupy")
    cupy.uint8 = np.uint8
    cupy.asarray = lambda a, dtype=None: np.array(a, dtype=dtype).view(DeviceArray)  # a copy, as a transfer is
    cupy.ascontiguousarray = lambda a, dtype=None: np.ascontiguousarray(device(a), dtype=dtype).view(DeviceArray)
    cupy.concatenate = lambda arrays, axis=0: np.concatenate([device(a) for a in arrays], axis=axis).view(DeviceArray)
    cupy.empty = empty
    cupy.zeros = lambda shape, dtype: np.zeros(shape, dtype).view(DeviceArray)
    cupy.allocators = []  # what cupy.cuda.using_allocator was given, in order
    cupy.faults = []  # CUDA statuses the next launches end in
    cupy.pending = []  # the fault of a launch, until the next wait or launch reports it
    cupy.static_shared = static_shared

    def raw_module(*, code=None, options=(), name_expressions=None, **rest):  # CuPy's are keyword-only
        if not isinstance(options, tuple):
            raise TypeError(f"Argument 'options' has incorrect type (expected tuple, got {type(options).__name__})")
        return RawModule(name_expressions, harness, folder, env, cupy, options)

    cupy.RawModule = raw_module
    properties = {"sharedMemPerBlockOptin": shared_optin, "sharedMemPerMultiprocessor": 233472}  # an H100's
    properties["multiProcessorCount"] = 132

    @contextlib.contextmanager
    def using_allocator(allocator=None):  # None: no memory pool, each array its own cudaMalloc
        cupy.allocators.append(allocator)
        yield

    def synchronize():
        if cupy.pending:
            raise cupy.pending.pop()

    attributes = {17: watchdog}  # cudaDevAttrKernelExecTimeout
    runtime = types.SimpleNamespace(
        getDeviceProperties=lambda i: properties,
        deviceGetAttribute=lambda attribute, i: attributes[attribute],
        cudaDevAttrKernelExecTimeout=17,
        CUDARuntimeError=CUDARuntimeError,
    )
    cupy.cuda = types.SimpleNamespace(
        Device=Device,
        runtime=runtime,
        using_allocator=using_allocator,
        get_current_stream=lambda: types.SimpleNamespace(synchronize=synchronize),
    )
    cupy.shared_optin = shared_optin
    return cupy


class Device:
    """``cupy.cuda.Device(i)``: as a context manager, device i is the thread's current one (CuPy's is per thread,
    and kernels compile for and launch on the current device, whatever device their arrays are on)."""

    current = 0

    def __init__(self, id=None):
        self.id = Device.current if id is None else id

    def __enter__(self):
        self.previous, Device.current = Device.current, self.id
        return self

    def __exit__(self, *exc):
        Device.current = self.previous


class DeviceArray(np.ndarray):
    """An array "on the device": what a kernel accepts as a pointer argument."""


def device(a):
    """``a``, where it is a device array; CuPy refuses a NumPy array where it needs one (a TypeError)."""
    if not isinstance(a, DeviceArray):
        raise TypeError(f"Unsupported type {type(a)}: expected cupy._core.core._ndarray_base")
    return a


def empty(shape, dtype):
    """Uninitialised memory, as NaN bytes (0xff), so that reading what nobody wrote shows in the results."""
    a = np.empty(shape, dtype)
    a.view(np.uint8)[...] = 0xFF
    return a.view(DeviceArray)


class RawModule:
    def __init__(self, names, harness, folder, env, cupy, options):
        self.names, self.harness, self.folder, self.env = tuple(names), harness, folder, env
        self.cupy = cupy
        defined = [int(m.group(1)) for o in options if (m := re.fullmatch(r"-DGPUNET_\w*THREADS=(\d+)", o))]
        self.threads = defined[0] if defined else 1024  # the kernels' __launch_bounds__
        self.launches = []
        self.devices = []  # the current device at each launch

    def compile(self):
        pass

    def get_function(self, name):
        assert name in self.names, f"{name} was not among the module's name expressions"
        return Kernel(name, self)


class Kernel:
    def __init__(self, name, module):
        self.name, self.module = name, module
        self.shared_size_bytes = module.cupy.static_shared  # the kernel's static shared memory
        self._dynamic = DEFAULT_SHARED - self.shared_size_bytes  # the driver's default
        self.preferred_shared_memory_carveout = -1  # no preference

    @property
    def max_dynamic_shared_size_bytes(self):
        return self._dynamic

    @max_dynamic_shared_size_bytes.setter
    def max_dynamic_shared_size_bytes(self, value):
        limit = self.module.cupy.cuda.runtime.getDeviceProperties(0)["sharedMemPerBlockOptin"] - self.shared_size_bytes
        if value > limit:
            raise CUDARuntimeError(1, f"{value} bytes of dynamic shared memory, above the opt-in {limit}")
        self._dynamic = value

    def __call__(self, grid, block, args, shared_mem=0):
        cupy = self.module.cupy
        if cupy.pending:  # an earlier launch's fault, reported by this call (as CUDA reports a sticky error)
            raise cupy.pending.pop()
        # CuPy's Function.__call__ declares `tuple grid, tuple block`: a list is a TypeError there.
        assert isinstance(grid, tuple) and isinstance(block, tuple), "CuPy takes grid and block as tuples"
        assert grid[1:] in ((), (1,), (1, 1)) and block[1:] in ((), (1,), (1, 1)), "the harness runs x only"
        assert 1 <= grid[0] < 2**31 and 1 <= block[0] <= 1024, f"a launch CUDA refuses: grid {grid}, block {block}"
        if block[0] > self.module.threads:
            raise CUDARuntimeError(1, f"block {block[0]} above the {self.module.threads} threads compiled for")
        assert shared_mem <= self.max_dynamic_shared_size_bytes, "more than 48 KiB of shared memory needs an opt-in"
        if cupy.faults:
            cupy.pending.append(CUDARuntimeError(cupy.faults.pop(0), f"the launch of {self.name}"))
            return
        folder = self.module.folder
        lines = [self.name, f"{grid[0]} {block[0]} {shared_mem}"]
        for i, a in enumerate(args):
            if isinstance(a, np.ndarray):
                assert isinstance(a, DeviceArray), f"argument {i}: a host array; CuPy refuses it, copy it to the device"
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
        if run.returncode or run.stderr:  # a fault: reported at the next wait or launch
            cupy.pending.append(CUDARuntimeError(719, run.stderr[-4000:]))
            return
        for i, a in enumerate(args):
            if isinstance(a, np.ndarray):
                a.reshape(-1)[...] = np.fromfile(folder / f"arg{i}.bin", dtype=a.dtype)
        self.module.devices.append(Device.current)
        self.module.launches.append((self.name, grid, block, shared_mem, self.preferred_shared_memory_carveout))
