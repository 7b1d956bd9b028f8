"""Where the data is: the folders searched, in order, and the files looked for in them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..errors import DataError

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
BOOK_PICKLE = "mnist.pkl.gz"  # the book's own file, with its own split
DATA_HINT = (
    "pass --data-dir or set GPUNET_DATA to a folder holding the four MNIST IDX files (.gz or raw), "
    "or run `gpunet data download`"
)


DATA_FLAGS = "--data-dir DIR or GPUNET_DATA=DIR"


def data_dirs(path=None) -> list[Path]:
    """Where the data is looked for, in order: ``path``, else $GPUNET_DATA, else ./data, the data/ of the
    checkout gpunet was installed from, and the user's cache folder (where downloads go)."""
    explicit = path or os.environ.get("GPUNET_DATA")
    if explicit:
        return [Path(explicit).expanduser()]
    found: list[Path] = []
    for folder in (Path("data"), *checkout_data(), cache_dir()):
        if all(folder.resolve() != f.resolve() for f in found):
            found.append(folder)
    return found


def named_folder(path=None) -> None:
    """A folder named by --data-dir (``path``) or $GPUNET_DATA must exist: a mistyped name is refused, not
    downloaded into (``gpunet data download --data-dir DIR`` makes a new one)."""
    folder = path or os.environ.get("GPUNET_DATA")
    if not folder or Path(folder).expanduser().exists():
        return
    if path:  # not "download MNIST there": the name may be another data set's (~/fashion-mnist)
        raise DataError(
            f"--data-dir {folder}: no such folder; name the folder holding the data set (its four IDX files or "
            "mnist.pkl.gz), or make one with MNIST in it: `gpunet data download --data-dir DIR`"
        )
    raise DataError(f"GPUNET_DATA is set to {folder}: no such folder; {data_hint(Path(folder).expanduser())}")


def data_dir(path=None) -> Path:
    """The data folder: the first of :func:`data_dirs` that holds a dataset, else the last (downloads go there)."""
    folders = data_dirs(path)
    for folder in folders:
        if has_data(folder):
            return folder
    return folders[-1]


def has_data(folder: Path) -> bool:
    """The folder holds the four IDX files (.gz or raw) or the book's pickle."""
    return all(locate(folder, stem) for stem in FILES.values()) or _lexists(folder / BOOK_PICKLE)


def checkout_data() -> list[Path]:
    """data/ of the source checkout gpunet runs from, or was pip-installed from (PEP 610 direct_url.json)."""
    roots = [Path(__file__).resolve().parents[2]]
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        url = json.loads(distribution("gpunet").read_text("direct_url.json") or "{}").get("url", "")
        if url.startswith("file://"):
            roots.append(Path(unquote(urlparse(url).path)))
    except (PackageNotFoundError, ValueError, OSError):
        pass
    return [root / "data" for root in roots if (root / "pyproject.toml").is_file() and (root / "data").is_dir()]


def cache_dir() -> Path:
    """The user's cache folder for MNIST (``~/.cache/gpunet/mnist`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("gpunet")) / "mnist"


def as_folder(folder: Path) -> Path:
    """``folder``, refused in one line when it names something that is not a folder."""
    if folder.exists() and not folder.is_dir():
        raise DataError(folder, f"not a folder; give {DATA_FLAGS} a folder (it is created if missing)")
    return folder


def shown(folder) -> str:
    """A folder as a user types it: a relative one with ``./`` in front (``./data``, not ``data``)."""
    text = str(folder)
    return text if Path(folder).is_absolute() or text.startswith((".", "~")) else f"./{text}"


def data_hint(folder: Path) -> str:
    """How to point at the data, from ``folder`` that lacks it: $GPUNET_DATA's own words when it named it."""
    env = os.environ.get("GPUNET_DATA")
    if env and Path(env).expanduser() == folder:
        return (
            f"GPUNET_DATA is set to {env}: point it at a folder holding the four MNIST IDX files (.gz or raw), "
            "or unset it (or pass --data-dir DIR)"
        )
    return DATA_HINT


def not_found(folders, download: bool | None = None) -> DataError:
    """The one line saying where the data was looked for and how to point elsewhere, or to download it
    (``download`` False: the user said not to)."""
    where = ", ".join(shown(f) for f in folders)
    fetch = "drop --no-download" if download is False else "run `gpunet data download`"
    return DataError(f"no MNIST data in {where}; pass {DATA_FLAGS} to a folder holding it, or {fetch}")


def locate(folder: Path, stem: str) -> Path | None:
    """``stem.gz`` if present, else the raw ``stem``, else None."""
    for name in (stem + ".gz", stem):
        if _lexists(folder / name):  # whatever it is: the reader says if it cannot be read
            return folder / name
    return None


def _lexists(path: Path) -> bool:
    """Something is at ``path``; a folder the user may not look into is one line, not taken for an empty one."""
    try:
        os.lstat(path)
    except PermissionError:
        raise DataError(
            path.parent, f"permission denied; give {DATA_FLAGS} a folder you may read, or change its permissions"
        ) from None
    except (OSError, ValueError):  # not there, a parent that is a file, a name too long, a NUL byte
        return False
    return True


def find_file(folder: Path, stem: str) -> Path:
    """``stem.gz`` if present, else the raw ``stem``; one line if neither is."""
    path = locate(folder, stem)
    if path is None:
        raise DataError(folder / (stem + ".gz"), f"file not found; {data_hint(folder)}")
    return path
