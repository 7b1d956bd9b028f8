"""A data folder the user may not enter (``chmod 000``): one line saying permission was denied.

The suite may run as root, whom permissions do not stop; so, besides a real ``chmod 000`` where it binds,
the os-level calls a process makes are made to answer as the kernel answers a user without the folder's
x and r bits: listing the folder, or looking up, opening or making anything inside it, is EACCES."""

import builtins
import errno
import io
import os
from pathlib import Path

import pytest
from helpers import cli, write_mnist_like


@pytest.fixture
def denied(tmp_path, monkeypatch):
    folder = tmp_path / "locked"
    write_mnist_like(folder, 30, 10, rows=4, cols=4)

    def inside(path, itself=False):
        try:
            p = Path(os.fsdecode(path)).absolute()
        except TypeError:  # a descriptor
            return False
        return folder in p.parents or (itself and p == folder)

    def deny(call, itself=False):
        def denying(path, *args, **kwargs):
            if inside(path, itself):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))
            return call(path, *args, **kwargs)

        return denying

    for name in ("stat", "lstat", "open", "mkdir", "access"):
        monkeypatch.setattr(os, name, deny(getattr(os, name)))
    for name in ("listdir", "scandir"):
        monkeypatch.setattr(os, name, deny(getattr(os, name), itself=True))
    monkeypatch.setattr(builtins, "open", deny(builtins.open))
    monkeypatch.setattr(io, "open", deny(io.open))
    folder.chmod(0)  # binds too where the suite does not run as root
    yield folder
    folder.chmod(0o755)


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--device", "cpu", "--epochs", "1", "--no-download"],
        ["train", "--device", "cpu", "--epochs", "1"],
        ["data", "verify"],
        ["data", "info"],
        ["data", "download", "--mirror", "http://127.0.0.1:9/"],
        ["evaluate", "MODEL"],
    ],
)
@pytest.mark.parametrize("how", ["--data-dir", "GPUNET_DATA"])
def test_an_unreadable_data_folder_is_one_line_saying_permission_denied(denied, command, how, monkeypatch, tmp_path):
    if "MODEL" in command:
        model = tmp_path / "net.npz"
        write_mnist_like(tmp_path / "ok", 30, 10, rows=4, cols=4)
        trained = cli("train", "--device", "cpu", "--epochs", "1", "--sizes", "16,10", "--validation-size", "0",
                      "--data-dir", tmp_path / "ok", "--save", model)  # fmt: skip
        assert trained.returncode == 0, trained.stderr
        command = [c if c != "MODEL" else str(model) for c in command]
    if how == "GPUNET_DATA":
        monkeypatch.setenv("GPUNET_DATA", str(denied))
        run = cli(*command)
    else:
        run = cli(*command, "--data-dir", denied)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert "permission denied" in lines[-1].lower() and str(denied) in lines[-1], run.stderr
