"""Where the data is found (io/find.py): the folders searched in order, and what a missing, misnamed or
unreadable folder says."""

import builtins
import errno
import io
import os
from pathlib import Path

import pytest
from helpers import assert_one_line_error, cli, write_mnist_like

import gpunet.io.find
import gpunet.io.fs
from gpunet.network import Network


# Damaged input: a data folder the user may not enter (``chmod 000``): one line saying permission was denied.
#
# The suite may run as root, whom permissions do not stop; so, besides a real ``chmod 000`` where it binds,
# the os-level calls a process makes are made to answer as the kernel answers a user without the folder's
# x and r bits: listing the folder, or looking up, opening or making anything inside it, is EACCES.
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


ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_data_is_found_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GPUNET_DATA", raising=False)
    run = cli("data", "info")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(str(ROOT / "data")) and "50000 / 10000 / 10000" in run.stdout


def test_data_dirs_in_order_and_the_cache_from_platformdirs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GPUNET_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    found = gpunet.data.data_dirs()
    assert found[0] == Path("data") and found[1] == ROOT / "data" and found[-1] == tmp_path / "cache/gpunet/mnist"
    assert gpunet.data.data_dirs("elsewhere") == [Path("elsewhere")]
    monkeypatch.setenv("GPUNET_DATA", "from-env")
    assert gpunet.data.data_dirs() == [Path("from-env")]


def test_nothing_found_and_the_download_fails_is_one_short_line_naming_folders_and_flags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GPUNET_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(gpunet.io.find, "checkout_data", lambda: [])  # as if installed from a wheel
    run = cli("train", "--device", "cpu")  # the mirror is a closed port on 127.0.0.1 (conftest)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    folder = str(tmp_path / "cache" / "gpunet" / "mnist")
    assert last.startswith("gpunet: error: could not download") and len(last.replace(folder, "")) < 400, last
    for fragment in ("data", str(tmp_path / "cache" / "gpunet" / "mnist"), "--data-dir", "GPUNET_DATA", "--mirror"):
        assert fragment in last
    copy = "offline, copy train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
    copy += f"t10k-labels-idx1-ubyte.gz into {tmp_path / 'cache' / 'gpunet' / 'mnist'} (a source checkout of gpunet"
    assert copy in last and "has them in data/)" in last  # a wheel installed offline: the files and the folder
    assert not (tmp_path / "cache" / "gpunet" / "mnist").exists()  # nothing left behind
    offline = cli("data", "info")
    assert_one_line_error(offline, "no MNIST data in ./data, ", "--data-dir", "GPUNET_DATA", "gpunet data download")


@pytest.mark.parametrize("command", [("train", "--device", "cpu"), ("data", "download"), ("data", "verify")])
def test_data_dir_naming_a_file_is_one_line(tmp_path, command):
    (tmp_path / "a-file").write_text("not a folder")
    assert_one_line_error(cli(*command, "--data-dir", tmp_path / "a-file"), "a-file", "not a folder")


FLAGS = ["--device", "cpu", "--sizes", "16,10", "--validation-size", "5"]


@pytest.mark.parametrize(
    "command",
    [["train", *FLAGS], ["sweep", "--seeds", "1", *FLAGS], ["evaluate", "m.npz"], ["data", "verify"], ["data", "info"]],
)
def test_a_data_dir_that_is_not_there_is_refused_not_downloaded_into(tmp_path, monkeypatch, command):
    missing = tmp_path / "nonexistent"
    Network([16, 10], seed=0, device="cpu").save(tmp_path / "m.npz")
    monkeypatch.chdir(tmp_path)
    run = cli(*command, "--data-dir", missing)
    assert_one_line_error(run, f"--data-dir {missing}: no such folder", "gpunet data download --data-dir DIR")
    monkeypatch.setenv("GPUNET_DATA", str(missing))
    run = cli(*command)
    assert_one_line_error(run, f"GPUNET_DATA is set to {missing}: no such folder")
    assert not missing.exists()


def test_nothing_found_says_how_to_fetch_the_data_as_the_command_can():
    folders = [Path("data"), Path("/cache")]
    for download, fetch in ((None, "run `gpunet data download`"), (False, "drop --no-download")):
        assert str(gpunet.io.find.not_found(folders, download)) == (
            "no MNIST data in ./data, /cache; pass --data-dir DIR or GPUNET_DATA=DIR to a folder holding it, "
            f"or {fetch}"
        )


def test_a_missing_data_dir_of_another_data_set_is_not_told_to_hold_mnist(tmp_path):
    """``--data-dir ~/fashion-mnist`` mistyped or not made yet: downloading MNIST into it is not the fix."""
    missing = tmp_path / "fashion-mnist"
    run = cli("train", "--device", "cpu", "--data-dir", missing)
    assert_one_line_error(run, f"--data-dir {missing}: no such folder", "the data set (its four IDX files")
    assert f"--data-dir {missing}`" not in run.stderr
