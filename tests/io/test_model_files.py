"""Damaged and hostile model files: one schema checked on load, one line naming the file, bounded memory."""

import gc
import io
import json
import os
import stat
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_one_line_error, book_parameters, cli, write_mnist_like

from gpunet.errors import GpunetError
from gpunet.network import Network


def members(tmp_path, **changes):
    """The arrays of a valid saved [4, 3, 2] network, with ``changes`` (None removes a member)."""
    Network([4, 3, 2], seed=0, device="cpu", dtype="float64").save(tmp_path / "good.npz", settings={"eta": 3.0})
    with np.load(tmp_path / "good.npz") as npz:
        arrays = {name: npz[name] for name in npz.files}
    for name, value in changes.items():
        if value is None:
            del arrays[name]
        else:
            arrays[name] = value
    return arrays


def write_model(tmp_path, **changes):
    np.savez(tmp_path / "m.npz", **members(tmp_path, **changes))
    return tmp_path / "m.npz"


def state(tmp_path, **changes):
    s = json.loads(str(members(tmp_path)["state"]))
    for key, value in changes.items():
        if value is None:
            del s[key]
        else:
            s[key] = value
    return np.asarray(json.dumps(s))


def refused(path, *fragments):
    with pytest.raises(GpunetError) as e:
        Network.load(path, device="cpu")
    message = str(e.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("sizes", [[4], [], [[4, 3, 2]], [4, 0, 2], [4, -3, 2]])
def test_sizes_that_are_not_a_network_are_refused(tmp_path, sizes):
    refused(write_model(tmp_path, sizes=np.asarray(sizes, np.int64)), "sizes")


def test_sizes_of_the_wrong_type_are_refused(tmp_path):
    refused(write_model(tmp_path, sizes=np.asarray([4.0, 3.0, 2.0])), "sizes")


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"rng": None}, "rng"),
        ({"epoch": None}, "epoch"),
        ({"epoch": "3"}, "epoch"),
        ({"epoch": True}, "epoch"),
        ({"epoch": -100}, "epoch"),
        ({"epoch": 2.5}, "epoch"),
        ({"rng": "PCG64"}, "rng"),
        ({"rng": {"bit_generator": "MT19937", "state": {"key": [0] * 624, "pos": 0}}}, "rng"),
        ({"rng": {"bit_generator": "PCG64", "state": {"state": "1", "inc": 1}, "has_uint32": 0, "uinteger": 0}}, "rng"),
        ({"rng": {"bit_generator": "PCG64", "state": {"state": 1, "inc": 1}}}, "rng"),
        ({"record": [1, 2]}, "record"),
        ({"objective": {"cost": "hinge", "init": "large", "lmbda": 0.0}}, "objective: cost must be"),
        ({"objective": {"cost": "quadratic", "init": "large", "lmbda": -1}}, "objective: lmbda (L2's λ) must be"),
        ({"objective": {"cost": "quadratic"}}, "its objective is not an object of cost, lmbda, init"),
        ({"schedule": {"best": 3, "stall": -1, "calm": 0, "halvings": 0}}, "its schedule's stall must be"),
        ({"schedule": [0, 0]}, "its schedule is not an object"),
    ],
)
def test_a_state_without_its_fields_or_of_the_wrong_types_is_refused(tmp_path, changes, fragment):
    refused(write_model(tmp_path, state=state(tmp_path, **changes)), fragment)


@pytest.mark.parametrize("text", ["not json", "[1, 2]", ""])
def test_a_state_that_is_not_a_json_object_is_refused(tmp_path, text):
    refused(write_model(tmp_path, state=np.asarray(text)), "state")


@pytest.mark.parametrize("name", ["sizes", "state", "w0", "b1"])
def test_a_missing_member_is_refused(tmp_path, name):
    refused(write_model(tmp_path, **{name: None}), repr(name))


@pytest.mark.parametrize(
    "name, value, fragment",
    [
        ("w0", np.zeros((3, 5)), "shape"),
        ("b1", np.zeros((2,)), "shape"),
        ("w1", np.zeros((2, 3), np.float32), "float32"),
        ("w0", np.zeros((3, 4), np.int64), "dtype"),
        ("w0", np.zeros((3, 4), np.float16), "dtype"),
        ("w0", np.array([None] * 12, dtype=object).reshape(3, 4), "refused"),
    ],
)
def test_parameters_that_do_not_match_the_sizes_are_refused(tmp_path, name, value, fragment):
    refused(write_model(tmp_path, **{name: value}), name, fragment)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ["w0", "b1"])
def test_non_finite_parameters_are_refused(tmp_path, name, bad):
    arrays = members(tmp_path)
    arrays[name][0, 0] = bad
    np.savez(tmp_path / "m.npz", **arrays)
    refused(tmp_path / "m.npz", name, "NaN or infinite")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_finite_weights_whose_sums_overflow_are_refused_and_those_that_fit_score_without_a_warning(tmp_path, dtype):
    largest = np.finfo(dtype).max
    arrays = {name: a.astype(dtype) if a.dtype.kind == "f" else a for name, a in members(tmp_path).items()}
    arrays["w0"][:] = 0
    arrays["w0"][0, :2] = largest / 1.5  # finite, but w a overflows for an input of ones (a row sum past largest)
    np.savez(tmp_path / "m.npz", **arrays)
    refused(tmp_path / "m.npz", "w0", f"past {dtype}'s largest number")
    arrays["w0"][0, :2] = largest / 2.5  # the row's |w| sums within the dtype: every input is computed exactly
    np.savez(tmp_path / "m.npz", **arrays)
    net = Network.load(tmp_path / "m.npz", device="cpu")
    assert net.predict(np.ones((1, 4), dtype)).shape == (1,)  # the suite turns a RuntimeWarning into an error


def test_big_endian_and_fortran_order_parameters_load_as_saved(tmp_path):
    arrays = members(tmp_path)
    want = arrays["w0"].copy()
    arrays["w0"] = np.asfortranarray(want.astype(">f8"))
    np.savez(tmp_path / "m.npz", **arrays)
    got = Network.load(tmp_path / "m.npz", device="cpu").weights[0]
    assert np.array_equal(got, want) and got.dtype == np.float64


def bomb_member(zf, name, header_array, nbytes):
    """A member whose npy header describes ``header_array`` but whose data runs to ``nbytes`` of zeros."""
    with zf.open(name, "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, np.lib.format.header_data_from_array_1_0(header_array))
        zero = bytes(1 << 24)
        for _ in range(nbytes >> 24):
            f.write(zero)


BOMB = 1 << 28  # 256 MiB of zeros: about 260 kB compressed


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bombs")
    arrays = members(folder)
    for name, extra, victim in (("extra.npz", "junk.npy", None), ("w0.npz", None, "w0")):
        with zipfile.ZipFile(folder / name, "w", zipfile.ZIP_DEFLATED) as zf:
            for key, a in arrays.items():
                if key == victim:
                    bomb_member(zf, f"{key}.npy", a, BOMB)
                else:
                    buf = io.BytesIO()
                    np.lib.format.write_array(buf, a, allow_pickle=False)
                    zf.writestr(f"{key}.npy", buf.getvalue())
            if extra:
                bomb_member(zf, extra, np.zeros(BOMB // 8), BOMB)
    return folder


def peak_bytes(call):
    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_an_extra_member_is_never_inflated(bombs):
    assert os.path.getsize(bombs / "extra.npz") < 2_000_000
    net = []
    assert peak_bytes(lambda: net.append(Network.load(bombs / "extra.npz", device="cpu"))) < 50_000_000
    assert net[0].sizes == [4, 3, 2]


def test_a_member_declaring_more_than_its_shape_needs_is_refused_before_inflating(bombs):
    assert peak_bytes(lambda: refused(bombs / "w0.npz", "'w0'", "declares")) < 50_000_000


def test_sizes_asking_for_more_memory_than_there_is_are_refused(tmp_path):
    refused(write_model(tmp_path, sizes=np.asarray([4, 2**40, 2], np.int64)), "GiB")


@pytest.mark.parametrize(
    "content",
    [b"", b"PK\x03\x04 not really a zip", b"PK\x05\x06" + bytes(18), b"\x93NUMPY not a zip", os.urandom(300)],
)
def test_a_damaged_file_is_one_line_and_leaves_nothing_open(tmp_path, content):
    (tmp_path / "m.npz").write_bytes(content)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        refused(tmp_path / "m.npz", "not a gpunet model")
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_a_cut_file_is_one_line(tmp_path):
    path = write_model(tmp_path)
    path.write_bytes(path.read_bytes()[:-200])
    refused(path, "not a gpunet model")


def test_a_corrupted_member_is_one_line(tmp_path):
    path = write_model(tmp_path)
    raw = bytearray(path.read_bytes())
    at = raw.find(b"w0.npy") + 200  # inside the stored data of w0: its CRC no longer matches
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    refused(path, "not a gpunet model")


def test_a_fifo_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "m.npz")
    refused(tmp_path / "m.npz", "not a regular file")


@pytest.mark.parametrize("make", [os.mkfifo, lambda p: os.mknod(p, 0o600 | stat.S_IFCHR, os.makedev(1, 3))])
def test_save_refuses_a_fifo_or_a_device_node_in_one_line(tmp_path, make):
    path = tmp_path / "m.npz"
    try:
        make(path)
    except PermissionError:
        pytest.skip("making a device node needs root")
    with pytest.raises(GpunetError) as e:
        Network([4, 3], seed=1, device="cpu").save(path)
    assert str(e.value) == f"{path}: not a regular file (a pipe, device or socket); give a file name"
    assert not path.is_file() and path.exists()  # left as it was


@pytest.mark.parametrize("command", ["evaluate", "predict", "resume"])
def test_every_command_reading_a_model_says_one_line(tmp_path, command):
    write_mnist_like(tmp_path / "d", 20, 10, rows=2, cols=2, n_classes=2)
    arrays = members(tmp_path)
    arrays["w1"][1, 1] = np.nan
    np.savez(tmp_path / "m.npz", **arrays)
    (tmp_path / "x.idx").write_bytes(b"")
    run = {
        "evaluate": lambda: cli("evaluate", tmp_path / "m.npz", "--device", "cpu", "--data-dir", tmp_path / "d"),
        "predict": lambda: cli("predict", tmp_path / "m.npz", tmp_path / "x.idx"),
        "resume": lambda: cli("train", "--device", "cpu", "--data-dir", tmp_path / "d", "--resume", tmp_path / "m.npz"),
    }[command]()
    assert_one_line_error(run, "m.npz", "NaN or infinite")


def test_a_checkpoint_written_before_the_layout_change_loads_and_resumes():
    """Written by gpunet 0.1.0 at f529862 (flat layout): Network([6, 4, 3], seed=7, float64), epoch 2, saved
    with a checkpoint's record. Its parameters are the book's draws for that seed, as written."""
    from gpunet.runs import checkpoint_settings

    path = Path(__file__).with_name("files") / "model-0.1.0-f529862.npz"
    net = Network.load(path, device="cpu")
    assert (net.sizes, net.epoch, np.dtype(net.dtype)) == ([6, 4, 3], 2, np.float64)
    biases, weights, _ = book_parameters([6, 4, 3], 7)
    for got, want in zip(net.weights + net.biases, weights + biases):
        np.testing.assert_array_equal(np.asarray(got), want)
    settings, run = checkpoint_settings(net, path)
    assert (settings["seed"], settings["epochs"], run) == (7, 5, "a" * 32)


# Bounds: an epoch counter no run reaches, outputs that are not the classes
MAX_EPOCHS = 1_000_000  # gpunet.settings.MAX_EPOCHS, as docs/reliability.md states it


@pytest.fixture
def data(tmp_path):
    write_mnist_like(tmp_path / "data", 40, 20)
    return tmp_path / "data"


@pytest.mark.parametrize("epoch", [10**30, MAX_EPOCHS + 1])
@pytest.mark.parametrize("command", ["evaluate", "train"])
def test_an_epoch_counter_no_run_reaches_is_refused(tmp_path, data, epoch, command):
    net = Network([784, 5, 10], seed=0, device="cpu")
    net.epoch = epoch
    net.save(tmp_path / "m.npz")
    args = ("evaluate", tmp_path / "m.npz") if command == "evaluate" else ("train", "--resume", tmp_path / "m.npz")
    run = cli(*args, "--device", "cpu", "--data-dir", data, "--validation-size", "0")
    assert_one_line_error(run, "epoch counter", f"{MAX_EPOCHS:,}")


def test_a_counter_at_the_limit_loads(tmp_path):
    net = Network([784, 5, 10], seed=0, device="cpu")
    net.epoch = MAX_EPOCHS
    net.save(tmp_path / "m.npz")
    assert Network.load(tmp_path / "m.npz", device="cpu").epoch == MAX_EPOCHS


@pytest.mark.parametrize("command", [("train",), ("sweep", "--seeds", "1")])
def test_more_epochs_than_a_run_reaches_are_refused_in_one_line(data, command):
    run = cli(*command, "--epochs", 10**12, "--device", "cpu", "--data-dir", data)
    assert_one_line_error(run, "--epochs", f"{MAX_EPOCHS:,}")


@pytest.mark.parametrize("sizes", [[784, 30], [784, 12]])
def test_a_model_whose_outputs_are_not_the_classes_is_said_in_one_line(tmp_path, data, sizes):
    Network(sizes, seed=0, device="cpu").save(tmp_path / "m.npz")
    run = cli("evaluate", tmp_path / "m.npz", "--device", "cpu", "--data-dir", data, "--validation-size", "0")
    assert_one_line_error(run, f"output layer has {sizes[-1]} neurons", "10 classes", "no record says")
    assert run.stdout == ""


def test_a_model_trained_with_more_outputs_is_scored_with_a_note(tmp_path, data):
    """Training --sizes 784,5,12 on 10 classes is allowed (docs/reliability.md): its score comes with one line."""
    train = cli("train", "--sizes", "784,5,12", "--epochs", "1", "--device", "cpu", "--data-dir", data,
                "--validation-size", "0", "--save", tmp_path / "m.npz")  # fmt: skip
    assert train.returncode == 0, train.stderr
    run = cli("evaluate", tmp_path / "m.npz", "--device", "cpu", "--data-dir", data, "--validation-size", "0")
    assert run.returncode == 0 and "/ 20 correct" in run.stdout, run.stderr
    (note,) = run.stderr.splitlines()
    assert "output layer has 12 neurons, but the data has 10 classes: it was trained so" in note


def test_a_model_of_the_classes_is_scored(tmp_path, data):
    Network([784, 5, 10], seed=0, device="cpu").save(tmp_path / "m.npz")
    run = cli("evaluate", tmp_path / "m.npz", "--device", "cpu", "--data-dir", data, "--validation-size", "0")
    assert run.returncode == 0 and "/ 20 correct" in run.stdout, run.stderr
