"""A training run's files: locked for the run, checked before training (another run's file is refused),
a checkpoint after every epoch, the log, the model at the end; and the settings a checkpoint must hold."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from ..errors import DataError
from ..io.fs import check_writable, only_writer, remove_stale_parts
from ..io.jsonl import JsonLog, _log_lines_of, _log_run, read_log
from ..io.model_files import save_network, stored_record, stored_run
from ..io.signals import uninterrupted
from ..settings import CHAPTER_1, CONSTRAINTS, Settings, checked

OR_FORCE = "give another name, or --force to overwrite it"


def checkpoint_settings(net, path) -> tuple[dict, str]:
    """(settings, run id) of a checkpoint, refused in one line when one is missing or of the wrong type."""
    record = net.record
    settings = record.get("settings")
    if not isinstance(settings, dict) or not settings:
        raise DataError(path, "a saved model, not a checkpoint (it has no training settings); cannot resume")

    def bad(message):
        return DataError(path, f"cannot resume: {message}")

    settings = {**CHAPTER_1, **settings}  # a checkpoint from before chapter 3 trained chapter 1's network
    for key in CONSTRAINTS:  # what changes a run's results: stored in every checkpoint, required to resume
        if settings.get(key) is None:
            raise bad(f"the checkpoint does not record its {key!r} (written by an older gpunet?)")
    settings.update(Settings(**checked({k: settings[k] for k in CONSTRAINTS}, str, bad)).record())
    if settings["sizes"] != net.sizes or net.backend.dtype(settings["dtype"]) != net.dtype:
        raise bad("its settings do not match its network (sizes or dtype)")
    data = settings.get("data")
    if not (isinstance(data, list) and all(isinstance(h, str) and re.fullmatch(r"[0-9a-f]{64}", h) for h in data)):
        raise bad("the checkpoint does not record which data it was trained on ('data')")
    run = record.get("run")
    if not isinstance(run, str) or not run:
        raise bad("the checkpoint does not record its run id")
    return settings, run


class RunFiles:
    """The files a training run writes, locked for the run and checked before any training.

    ``targets`` maps each flag (``--checkpoint``, ``--log``, ``--save``, a sweep's ``--save-best``) to its path
    or None. A file already there is overwritten only when it is what the flag writes and belongs to this run
    (a resumed run continues its own checkpoint and log), or with ``force``.
    """

    KINDS = {"--checkpoint": "model", "--save": "model", "--log": "log", "--save-best": "model"}

    def __init__(self, targets: dict, run: str, resumed_at: int | None = None, force: bool = False):
        self.paths = {flag: Path(p) for flag, p in targets.items() if p is not None}
        self.run, self.resumed_at, self.force = run, resumed_at, force
        self.locks = contextlib.ExitStack()  # one writer per file (runs.locks), released on exit
        self.kept_log: list[str] | None = None
        self.log: JsonLog | None = None
        self.saved_epoch = None  # the last epoch (counted from 0) whose checkpoint is complete
        models = {p.resolve() for flag, p in self.paths.items() if self.KINDS[flag] == "model"}
        if "--log" in self.paths and self.paths["--log"].resolve() in models:
            raise DataError(f"--log {self.paths['--log']}: the same file as a model output; give the log its own name")

    def __enter__(self):
        try:
            for flag, path in self.paths.items():
                check_writable(path, flag)
            for path in dict.fromkeys(p.resolve() for p in self.paths.values()):  # the same file under two flags
                flag = next(f for f, p in self.paths.items() if p.resolve() == path)
                self.locks.enter_context(only_writer(self.paths[flag], flag, "training"))
            for flag, path in self.paths.items():
                remove_stale_parts(path)
                if path.exists():
                    self._may_overwrite(flag, path)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.locks.close()

    def _may_overwrite(self, flag: str, path: Path) -> None:
        kind = self.KINDS[flag]
        try:
            run = stored_run(path) if kind == "model" else _log_run(path)
        except DataError:  # not ours, or not readable (another user's file): --force replaces it
            if self.force:
                return
            raise DataError(f"{flag} {path}: the file exists and is not a gpunet {kind}; {OR_FORCE}") from None
        if run == self.run:
            if kind == "log" and self.resumed_at:
                self.kept_log = _log_lines_of(path, self.resumed_at)
            return
        if kind == "log" and not read_log(path)[1]:  # a manifest alone: a run stopped before its first epoch
            return
        if not self.force:
            hint = f"resume it with --resume {path}, " if flag == "--checkpoint" else ""
            raise DataError(f"{flag} {path}: holds another run's {kind}{_described(path, kind)}; {hint}{OR_FORCE}")

    def start_log(self, manifest: dict) -> None:
        if "--log" in self.paths:
            self.log = JsonLog(self.paths["--log"], manifest, self.kept_log or (), self.resumed_at)

    def after_epoch(self, net, entry: dict, record: dict) -> None:
        """Log the epoch, then keep it in ``--save-best`` if it scored more than every epoch before it (the first
        of equals; ``record["best"]``), then checkpoint it (a checkpoint is never ahead of its log); Ctrl-C waits."""
        with uninterrupted():
            if self.log is not None:
                self.log.append(entry)
            best = record.get("best")
            if entry.get("correct") is not None and (best is None or entry["correct"] > best["correct"]):
                record["best"] = {k: entry[k] for k in ("epoch", "correct", "total")}
                if "--save-best" in self.paths:
                    save_network(net, self.paths["--save-best"], record)
            if "--checkpoint" in self.paths:
                save_network(net, self.paths["--checkpoint"], record)
                self.saved_epoch = entry["epoch"]

    def save(self, net, record: dict) -> Path | None:
        if "--save" in self.paths:
            save_network(net, self.paths["--save"], record)
            return self.paths["--save"]
        return None


def _described(path: Path, kind: str) -> str:
    """What an earlier run left in a model file, in a few words: a run of the same command line without --seed
    is another network, so its file is not replaced silently even when the flags are the same."""
    if kind != "model":
        return ""
    settings = stored_record(path).get("settings")
    if not isinstance(settings, dict):
        return ""
    said = [f"{k} {settings[k]}" for k in ("sizes", "seed", "epochs") if k in settings]
    return f" ({', '.join(said)})" if said else ""
