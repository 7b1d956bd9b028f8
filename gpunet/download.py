"""Fetch and verify the MNIST files: mirrors in order, checksums, atomic writes."""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import sys
import tempfile
import zlib
from pathlib import Path

from .data import DataError, find_file

# The mirror torchvision tries first, then the others; GPUNET_MNIST_MIRRORS (or --mirror) replaces the list.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
MIRRORS_ENV = "GPUNET_MNIST_MIRRORS"

# name: (md5 of the .gz as published, sha256 of its decompressed content)
MNIST = {
    "train-images-idx3-ubyte.gz": (
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    "train-labels-idx1-ubyte.gz": (
        "d53e105ee54ea40749a09fcbcd1e9432",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    "t10k-images-idx3-ubyte.gz": (
        "9fb629c4189551a2d022fa330f9573f3",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "ec29112dd5afa0611ce80d1b7f02629c",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
}


def mirrors(override=None) -> list[str]:
    """The mirror base URLs to try, in order: ``override``, else $GPUNET_MNIST_MIRRORS, else MIRRORS."""
    if override:
        return list(override)
    env = os.environ.get(MIRRORS_ENV, "").replace(",", " ").split()
    return env or list(MIRRORS)


def _digest(path: Path, algorithm: str, decompress: bool = False) -> str:
    h = hashlib.new(algorithm)
    with gzip.open(path, "rb") if decompress else open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_sha256(path: Path, gzipped: bool | None = None) -> str:
    """sha256 of a gzip file's decompressed content, or of a raw file (by default: by the name's suffix)."""
    try:
        return _digest(path, "sha256", decompress=path.suffix == ".gz" if gzipped is None else gzipped)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read ({e})") from None


def is_genuine(path: Path, name: str) -> bool:
    """The file is MNIST's ``name``: its published md5, or (recompressed) its canonical content."""
    md5, sha256 = MNIST[name]
    if _digest(path, "md5") == md5:
        return True
    try:
        return content_sha256(path, gzipped=True) == sha256
    except DataError:
        return False


def missing(folder: Path) -> list[str]:
    """MNIST files absent from ``folder`` (either the .gz or the raw file counts as present)."""
    return [name for name in MNIST if not (folder / name).is_file() and not (folder / name[:-3]).is_file()]


def download(folder, bases=None, progress: bool | None = None, say=print) -> list[Path]:
    """Fetch the MNIST files missing from ``folder``; each lands whole and verified, or not at all."""
    import pooch

    logging.getLogger("pooch").setLevel(logging.WARNING)
    folder = Path(folder)
    bases = mirrors(bases)
    progress = sys.stderr.isatty() if progress is None else progress
    fetched = []
    created = not folder.exists()
    for name in missing(folder):
        folder.mkdir(parents=True, exist_ok=True)
        failures = []
        for base in bases:
            url = base.rstrip("/") + "/" + name
            say(f"downloading {url}", flush=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
            os.close(fd)
            try:
                pooch.HTTPDownloader(progressbar=progress, timeout=60)(url, tmp, None)
                if not is_genuine(Path(tmp), name):
                    raise ValueError("checksum mismatch: not the published file")
                os.replace(tmp, folder / name)
                fetched.append(folder / name)
                break
            except Exception as e:  # noqa: BLE001 - any failure: note it, try the next mirror
                failures.append(f"{url} ({_one_line(e)})")
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        else:
            if created and not any(folder.iterdir()):
                folder.rmdir()  # leave the disk as it was
            raise DataError(
                f"could not download {name}: every mirror failed: {'; '.join(failures)}. "
                f"Set {MIRRORS_ENV} (or --mirror) to a working mirror, or copy the files into {folder}"
            )
    return fetched


def verify(folder) -> list[str]:
    """Check the four MNIST files in ``folder`` against their canonical content; one line per file."""
    folder = Path(folder)
    lines = []
    for name, (_, sha256) in MNIST.items():
        path = find_file(folder, name.removesuffix(".gz"))
        if content_sha256(path) != sha256:
            raise DataError(f"{path}: content does not match MNIST's published checksum; delete it and download again")
        lines.append(f"ok  {path}  sha256 {sha256[:16]}…")
    return lines


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:200]}" if text else type(e).__name__
