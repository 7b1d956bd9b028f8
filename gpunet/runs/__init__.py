"""Stage 6, what outlives a run: model files and checkpoints (:mod:`.model_files`), the manifest
(:mod:`.manifest`), the JSON-lines log (:mod:`.log`), the run's files locked and checked before training
(:mod:`.files`) and signals that end a run cleanly (:mod:`.signals`); files are written atomically by
:mod:`gpunet.io.fs`.
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
