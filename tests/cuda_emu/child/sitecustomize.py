"""Python imports this at start-up in the check's child process, where the tests put this folder on PYTHONPATH
(tests/kernels/test_cuda_check.py): with GPUNET_EMU_HARNESS set, ``get_backend("cuda...")`` is the emulated GPU
of :func:`cuda_emu.standin.backend`, so ``python -m gpunet.kernels.cuda.check`` checks the real .cu on the CPU."""

import os

if os.environ.get("GPUNET_EMU_HARNESS"):
    from cuda_emu import standin

    import gpunet.backend

    real = gpunet.backend.get_backend
    gpunet.backend.get_backend = lambda spec: standin.backend() if spec.startswith("cuda") else real(spec)
