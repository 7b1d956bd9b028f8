"""Step 1-2 of tools/on_a_gpu.sh, on a GPU: versions, the device's limits, every instantiation's attributes, and
the shared-memory opt-in edge (a launch of zero steps with exactly the opt-in, then with 1 KiB less)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cupy  # noqa: E402
import numpy as np  # noqa: E402

from gpunet.kernels.cuda import launcher, scorer  # noqa: E402

rt = cupy.cuda.runtime
p = rt.getDeviceProperties(0)
optin = p["sharedMemPerBlockOptin"]
print("cupy", cupy.__version__, "driver", rt.driverGetVersion(), "runtime", rt.runtimeGetVersion())
print("nvrtc", cupy.cuda.nvrtc.getVersion(), "name", p["name"], "cc", p["major"], p["minor"])
print("sharedMemPerBlockOptin", optin, "sharedMemPerMultiprocessor", p["sharedMemPerMultiprocessor"])
print("reservedSharedMemPerBlock", p["reservedSharedMemPerBlock"], "regsPerMultiprocessor", p["regsPerMultiprocessor"])
print("cudaDevAttrKernelExecTimeout", rt.deviceGetAttribute(rt.cudaDevAttrKernelExecTimeout, 0))
for mod in (launcher, scorer):
    m = cupy.RawModule(code=mod.SOURCE.read_text(), options=mod.OPTIONS, name_expressions=mod.INSTANTIATIONS)
    m.compile()
    for n in mod.INSTANTIATIONS:
        k = m.get_function(n)
        print(n, "regs", k.num_regs, "static", k.shared_size_bytes, "local", k.local_size_bytes, end=" ")
        print("max_dynamic", k.max_dynamic_shared_size_bytes, "max_threads", k.max_threads_per_block)
m = cupy.RawModule(code=launcher.SOURCE.read_text(), options=launcher.OPTIONS, name_expressions=launcher.INSTANTIATIONS)
k = m.get_function(launcher.INSTANTIATIONS[0])  # <float, true, true>, with k = 0 steps: the copies in and out only
f32 = lambda *shape: cupy.zeros(shape, np.float32)
args = (
    f32(1, 6),
    np.int64(6),
    cupy.zeros(0, np.uint8),
    np.int64(0),
    f32(1, 2),
    f32(1, 2),
    cupy.zeros((1, 0), np.int32),
)
args += (np.int32(0), cupy.ones(1), cupy.ones(1), cupy.ones(1))  # k, eta, decay, first_scale
args += (cupy.asarray(np.array([2, 2], np.int32)), np.int32(1), np.int32(1), np.float32(-88), np.int32(0), np.int32(1))
for size in (optin, optin - 1024):
    try:
        k.max_dynamic_shared_size_bytes = size
        k((1,), (launcher.THREADS,), args, shared_mem=size)
        cupy.cuda.Device().synchronize()
        print("opt-in", size, "ok")
    except Exception as e:  # noqa: BLE001 - what the driver says is the finding
        print("opt-in", size, type(e).__name__, e)
