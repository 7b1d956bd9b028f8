"""Real CuPy without a GPU, run by tests/kernels/test_cuda_resources.py in the second environment (``gpunet[cuda12]``'s
CuPy and NVRTC): reads the kernels as JSON on stdin (as cuda_resources.py does), writes JSON on stdout.

- ``calls``: each call the launcher and the scorer make, bound to ``inspect.signature`` of CuPy's own function, and
  each call they must not make (a list of options, positional RawModule arguments) refused by it;
- ``compiled``: CuPy's own compile path (``compile_with_cache``) driven to NVRTC for sm_90. Without a driver CuPy asks
  the device for its architecture first, so the two per-device look-ups of PREFLIGHT.md §1 are replaced; the options
  CuPy gave NVRTC and each name expression's lowered name come back. Where those private names are gone,
  ``skipped`` says which, and the test skips with it.
"""

import inspect
import json
import os
import re
import shutil
import sys
import tempfile

# An empty kernel cache, set before CuPy reads it: a cubin cached by an earlier run would never reach NVRTC.
CACHE = os.environ["CUPY_CACHE_DIR"] = tempfile.mkdtemp(prefix="cupy-cache-")
import cupy  # noqa: E402
import numpy as np  # noqa: E402

ARCH = "90"


def signature(function) -> inspect.Signature:
    """``inspect.signature``, or for Cython's functions and classes the signature Cython embeds in the docstring
    (``name(str code=None, *, tuple options=(), ...)``) with its C types left out."""
    try:
        return inspect.signature(function)
    except ValueError:
        text = function.__doc__.strip()
        depth = next(i for i, c in enumerate(text) if c == ")" and text[: i + 1].count("(") == text[: i + 1].count(")"))
        params = re.sub(
            r"\b(?:str|tuple|bool|int|list|dict|object|double|float)\s+(?=\w)", "", text[text.index("(") + 1 : depth]
        )
        scope: dict = {}
        exec(f"def f({params}): pass", scope)  # noqa: S102 - CuPy's own signature text, in this test's child
        return inspect.signature(scope["f"])


def binds(function, *args, **kwargs) -> str | None:
    """None where CuPy's ``function`` accepts these arguments, else why not."""
    try:
        signature(function).bind(*args, **kwargs)
    except TypeError as e:
        return str(e)
    return None


def calls() -> dict:
    """What binds (None) and what is refused (a reason), by the call gpunet makes or must not make."""
    kernel, grid, block = cupy.RawKernel, (1,), (1024,)
    return {
        "RawModule(code=, options=<tuple>, name_expressions=)": binds(
            cupy.RawModule, code="", options=("--std=c++17",), name_expressions=("f",)
        ),
        "RawModule(code, options) positional": binds(cupy.RawModule, "", ("--std=c++17",)),
        "RawModule.compile()": binds(cupy.RawModule.compile, None),
        "RawModule.get_function(name)": binds(cupy.RawModule.get_function, None, "f"),
        "RawKernel(grid, block, args, shared_mem=)": binds(kernel.__call__, None, grid, block, (), shared_mem=0),
        "ascontiguousarray(a, dtype=)": binds(cupy.ascontiguousarray, None, dtype=np.float32),
        "asarray(a, dtype=)": binds(cupy.asarray, None, dtype=np.int32),
        "concatenate(arrays, axis=)": binds(cupy.concatenate, [], axis=1),
        "empty(n, dtype=)": binds(cupy.empty, 3, dtype=cupy.uint8),
        "zeros(shape, dtype=)": binds(cupy.zeros, (3,), dtype=np.int32),
        "runtime.getDeviceProperties(id)": binds(cupy.cuda.runtime.getDeviceProperties, 0),
        "runtime.deviceGetAttribute(attribute, id)": binds(cupy.cuda.runtime.deviceGetAttribute, 17, 0),
    }


def attributes() -> dict:
    """The kernel attributes the launcher sets (settable data descriptors on RawKernel) and the constants it reads."""
    settable = lambda name: hasattr(getattr(cupy.RawKernel, name, None), "__set__")
    return {
        "max_dynamic_shared_size_bytes settable": settable("max_dynamic_shared_size_bytes"),
        "preferred_shared_memory_carveout settable": settable("preferred_shared_memory_carveout"),
        "RawModule declares options a tuple": bool(re.search(r"\btuple options=", cupy.RawModule.__doc__ or "")),
        "cudaDevAttrKernelExecTimeout": getattr(cupy.cuda.runtime, "cudaDevAttrKernelExecTimeout", None),
        "nvrtc.getVersion()": list(cupy.cuda.nvrtc.getVersion()),
        "is_available()": cupy.is_available(),
    }


def compiled(specs) -> dict:
    """Each kernel through CuPy's compile path: the options NVRTC got and the lowered names, or why it was skipped."""
    from cupy._core import core
    from cupy.cuda import compiler

    needed = ("_get_arch", "_get_arch_for_options_for_nvrtc", "_compile_using_nvrtc_no_warning")
    if missing := [n for n in needed if not hasattr(compiler, n)] + [
        n for n in ("compile_with_cache",) if not hasattr(core, n)
    ]:
        return {"skipped": f"CuPy {cupy.__version__} has no {', '.join(missing)}: its private compile path changed"}
    compiler._get_arch = lambda: ARCH
    compiler._get_arch_for_options_for_nvrtc = lambda arch=None: (f"-arch=sm_{arch or ARCH}", "cubin")
    seen, original = [], compiler._compile_using_nvrtc_no_warning

    def spy(source, options=(), arch=None, filename="kern.cu", name_expressions=None, *args, **kwargs):
        out = original(source, options, arch, filename, name_expressions, *args, **kwargs)
        seen.append((list(options), out[1]))
        return out

    compiler._compile_using_nvrtc_no_warning = spy
    out = {}
    for spec in specs:
        seen.clear()
        try:  # reaches NVRTC, then fails where the cubin is loaded (no driver)
            core.compile_with_cache(
                spec["source"], tuple(spec["options"]), prepend_cupy_headers=False, backend="nvrtc",
                translate_cucomplex=False, enable_cooperative_groups=False, name_expressions=spec["names"],
                jitify=False,
            )  # fmt: skip
            ended = "loaded"
        except Exception as e:  # noqa: BLE001 - CUDARuntimeError/CUDADriverError without a driver, or NVRTC's
            ended = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        options, mapping = seen[-1] if seen else (None, None)
        out[spec["kernel"]] = {"ended": ended, "options": options, "lowered": mapping}
    return out


def main() -> int:
    specs = json.load(sys.stdin)["specs"]
    try:
        found = {"cupy": cupy.__version__, "calls": calls(), "attributes": attributes(), "compiled": compiled(specs)}
    finally:
        shutil.rmtree(CACHE, ignore_errors=True)
    json.dump(found, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
