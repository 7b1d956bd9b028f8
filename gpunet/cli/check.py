"""``gpunet check``: check the CUDA epoch kernel on this GPU now, whatever is kept, and keep the verdict.

It runs by itself when the kernel is about to train on a GPU with no kept verdict (:mod:`..kernels.cuda.verdicts`).
"""

from __future__ import annotations

from ..backend import BackendError, get_backend
from ..kernels.cuda import check as cuda_check
from ..kernels.cuda import verdicts
from ..kernels.cuda.launcher import CudaEpoch
from ..settings import BOOK, DTYPES
from . import options

NAME = "check"
HELP = "check the CUDA kernel on this GPU now, and keep the verdict"


def add_arguments(parser) -> None:
    parser.add_argument("--device", type=options.device, default="cuda", help="the GPU to check: cuda or cuda:N")
    parser.add_argument(
        "--sizes", type=options.sizes, default=list(BOOK.sizes), metavar="N,N,...", help="also time this network"
    )
    parser.add_argument(
        "--batch-size", type=options.positive_int, default=BOOK.batch_size, help="... at this mini-batch size"
    )
    parser.add_argument("--dtype", choices=DTYPES, default=BOOK.dtype, help="... in this type")


def run(args) -> int:
    backend = get_backend(args.device)
    if not backend.name.startswith("cuda"):
        raise BackendError(f"gpunet check checks a GPU; --device {args.device} is not one (use cuda or cuda:N)")
    if why := CudaEpoch.unusable():
        raise BackendError(why)
    config = cuda_check.config_key(args.sizes, args.batch_size, args.dtype)
    verdict = verdicts.verdict(getattr(backend.device, "id", 0), config, force=True)
    print(f"{backend.name} ({backend.description}): the cuda kernel {verdict.describe(config)}")
    for key, t in verdict.timings.items():
        print(
            f"  {key}: cuda {t['cuda']:.3g} s/epoch | portable on {backend.name} {t['portable']:.3g} | "
            f"cpu ({t['cpu_kernel']}) {t['cpu']:.3g}"
        )
    print(f"kept in {verdicts.folder()} (`gpunet check` checks again)")
    return 0 if verdict.passed else 1
