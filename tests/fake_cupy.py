"""Stand-ins for CuPy on a machine without a GPU, one per way CUDA can be unusable."""

import sys
import types


def install(monkeypatch, mode: str) -> None:
    """Put a fake ``cupy`` in sys.modules: 'missing', 'no-driver' or 'no-nvrtc'."""
    if mode == "missing":
        monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ModuleNotFoundError
        return
    cupy = types.ModuleType("cupy")
    cupy.__version__ = "14.0.0"
    cupy.float32 = "float32"
    cupy.is_available = lambda: mode != "no-driver"

    class Device:
        def __init__(self, index=0):
            self.id = index

        def use(self):
            pass

    def exp(_):
        raise RuntimeError(
            "CuPy failed to load libnvrtc.so.12: OSError: libnvrtc.so.12: cannot open shared object\nmore"
        )

    cupy.arange = lambda *a, **k: None
    cupy.exp = exp
    cupy.cuda = types.SimpleNamespace(Device=Device, runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
