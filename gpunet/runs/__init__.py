"""What outlives a run: its files, locked and checked before training (:mod:`.files`), the manifest that
says what ran where (:mod:`.manifest`) and the signals that end a run cleanly (:mod:`.signals`). Model
files, the JSON-lines log and atomic writes are :mod:`gpunet.io`'s (:mod:`~gpunet.io.model_files`,
:mod:`~gpunet.io.jsonl`, :mod:`~gpunet.io.fs`), re-exported here where runs use them.
"""

from __future__ import annotations

from ..io.fs import atomic_write, check_writable
from ..io.jsonl import JsonLog, read_log
from .files import RunFiles, checkpoint_settings
from .manifest import manifest, new_run_id

__all__ = [
    "JsonLog",
    "RunFiles",
    "atomic_write",
    "check_writable",
    "checkpoint_settings",
    "manifest",
    "new_run_id",
    "read_log",
]
