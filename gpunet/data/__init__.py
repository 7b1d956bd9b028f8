"""The data a run trains on: the three splits on the host (:mod:`.host`), pinned on a device once per run
(:mod:`.device`). :func:`load`, what the commands call, finds the files, downloads them if asked and parses
them through :mod:`gpunet.io`.
"""

from __future__ import annotations

from ..errors import DataError
from ..io.book_pickle import load_book_pickle
from ..io.find import BOOK_PICKLE, FILES, as_folder, data_dir, data_dirs, named_folder, not_found
from .device import DeviceData, pin, pin_split
from .host import HostData, load_host

__all__ = ["DataError", "DeviceData", "HostData", "load", "load_book_pickle", "load_host", "pin", "pin_split"]


def load(folder=None, data=None, validation_size=None, download=None, mirrors=None) -> HostData:
    """The dataset the flags name: the book's pickle ``data``, else the IDX files (or the pickle) of the data
    folder (``folder``, else the first of :func:`data_dirs` that holds data), downloaded into it first when
    missing and ``download`` is true (False: the user said not to; None: not offered); training images beyond
    ``validation_size`` (default 10,000) train."""
    from ..io.download import download as fetch
    from ..io.download import missing

    if data:
        return load_book_pickle(data)
    named_folder(folder)
    folders = data_dirs(folder)
    folder = as_folder(data_dir(folder))
    lacking = missing(folder)
    if lacking and (folder / BOOK_PICKLE).is_file():
        return load_book_pickle(folder / BOOK_PICKLE)
    if lacking and download:
        fetch(folder, mirrors, looked_in=folders)
    elif len(lacking) == len(FILES) and len(folders) > 1:  # searched, found nothing (a named folder: load_host says)
        raise not_found(folders, download)
    return load_host(folder, 10_000 if validation_size is None else validation_size)
