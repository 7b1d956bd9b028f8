"""What outlives a run: its files, locked and checked before training (:mod:`.files`), and the manifest that
says what ran where (:mod:`.manifest`). Model files, the JSON-lines log, atomic writes and the stop signals
held while one is written are :mod:`gpunet.io`'s (:mod:`~gpunet.io.model_files`, :mod:`~gpunet.io.jsonl`,
:mod:`~gpunet.io.fs`, :mod:`~gpunet.io.signals`); the first three are re-exported here where runs use them.
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
