"""Chapter 3's network (cross-entropy, L2, both initialisations) on every CPU kernel, against the chapter's
algorithm one example at a time (tests/chapter3.py), and the maths against it and finite differences."""

import json

import chapter3
import numpy as np
import pytest
from helpers import synthetic_data

from gpunet import ConfigError, Network
from gpunet.kernels import numba_cpu as numba_kernel
from gpunet.kernels.cuda.launcher import CudaEpoch
from gpunet.maths import COSTS, CrossEntropyCost, backprop, total_cost

NUMBA_MISSING = numba_kernel.NumbaEpoch.unusable()
needs_numba = pytest.mark.skipif(bool(NUMBA_MISSING), reason=f"{NUMBA_MISSING}")
OBJECTIVES = [("quadratic", 0.0), ("quadratic", 2.0), ("cross-entropy", 0.0), ("cross-entropy", 2.0)]
NETS = [[20, 7, 4], [20, 9, 6, 4]]  # one hidden layer, and two


def sparse_inputs(rng, n, sizes):
    x, y, labels = synthetic_data(rng, n, sizes[0], sizes[-1])
    x[x < 0.6] = 0  # zero pixels, as in MNIST: the numba kernels skip them, and L2 must not
    return x, y, labels


def trained(backend_or_device, kernel, sizes, cost, lmbda, init, x, y, epochs=2, batch=10, eta=0.5):
    net = Network(sizes, seed=5, device=backend_or_device, dtype="float64", cost=cost, init=init)
    net.SGD((x, y), epochs, batch, eta, lmbda=lmbda, callback=None, kernel=kernel)
    assert net.kernel == kernel
    return [net.backend.to_host(p) for p in net.weights + net.biases]


def reference(sizes, cost, lmbda, init, x, y, epochs=2, batch=10, eta=0.5):
    weights, biases, rng = chapter3.start(sizes, 5, init)
    orders = [rng.permutation(len(x)) for _ in range(epochs)]
    weights, biases = chapter3.train(weights, biases, x, y, orders, batch, eta, cost, lmbda)
    return weights + biases


def assert_equal_to_reference(got, want):
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("init", ["large", "default"])
@pytest.mark.parametrize(("cost", "lmbda"), OBJECTIVES)
@pytest.mark.parametrize("sizes", NETS, ids=str)
def test_the_portable_kernel_equals_chapter_3_per_example(backend, rng, sizes, cost, lmbda, init):
    """float64, 2 epochs of 53 examples in mini-batches of 10 (each epoch ends on one of 3), on every namespace."""
    x, y, _ = sparse_inputs(rng, 53, sizes)
    got = trained(backend, "portable", sizes, cost, lmbda, init, x, y)
    assert_equal_to_reference(got, reference(sizes, cost, lmbda, init, x, y))


@needs_numba
@pytest.mark.parametrize("kernel", ["numba", "numba-loop"])
@pytest.mark.parametrize("init", ["large", "default"])
@pytest.mark.parametrize(("cost", "lmbda"), OBJECTIVES)
@pytest.mark.parametrize("sizes", NETS, ids=str)
def test_the_numba_kernels_equal_chapter_3_per_example(rng, kernel, sizes, cost, lmbda, init):
    x, y, _ = sparse_inputs(rng, 53, sizes)
    got = trained("cpu", kernel, sizes, cost, lmbda, init, x, y)
    assert_equal_to_reference(got, reference(sizes, cost, lmbda, init, x, y))


@needs_numba
@pytest.mark.parametrize("kernel", ["numba", "numba-loop"])
@pytest.mark.parametrize("decay", [0.5, 0.0], ids=["folds", "to-zero"])
def test_the_scale_trick_equals_the_dense_decay(rng, kernel, decay):
    """The first layer's w = s v: s halves each step and is folded back into v every 20 steps or so (and at the
    end); a decay of 0 sets w to 0 at each step. Both as the dense update w -> (1 - eta lmbda / n) w - ..."""
    sizes, n, eta = [20, 7, 4], 53, 0.5
    lmbda = (1 - decay) * n / eta
    x, y, _ = sparse_inputs(rng, n, sizes)
    got = trained("cpu", kernel, sizes, "cross-entropy", lmbda, "default", x, y, epochs=1, batch=1, eta=eta)
    assert_equal_to_reference(got, reference(sizes, "cross-entropy", lmbda, "default", x, y, 1, 1, eta))


@needs_numba
def test_numba_with_l2_equals_the_portable_kernel_in_float32(rng):
    sizes = [20, 9, 4]
    x, y, _ = sparse_inputs(rng, 53, sizes)
    nets = {
        k: Network(sizes, seed=3, device="cpu", cost="cross-entropy", init="default") for k in ("portable", "numba")
    }
    for kernel, net in nets.items():
        net.SGD((x, y), 3, 10, 0.5, lmbda=5.0, callback=None, kernel=kernel)
    for got, want in zip(
        nets["numba"].weights + nets["numba"].biases, nets["portable"].weights + nets["portable"].biases
    ):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_the_default_initialisation_is_n_0_1_over_n_in_in_the_books_order():
    sizes = [30, 12, 5]
    net = Network(sizes, seed=9, device="cpu", dtype="float64", init="default")
    weights, biases, _ = chapter3.start(sizes, 9, "default")
    for got, want in zip(net.weights + net.biases, weights + biases, strict=True):
        np.testing.assert_array_equal(got, want)
    big = Network([784, 100, 10], seed=1, device="cpu", dtype="float64", init="default")
    assert abs(float(np.std(big.weights[0])) * np.sqrt(784) - 1) < 0.02  # standard deviation 1/sqrt(n_in)


@pytest.mark.parametrize("cost", ["quadratic", "cross-entropy"])
def test_backprop_of_each_cost_equals_the_per_example_gradients(backend, rng, cost):
    sizes = [6, 5, 3]
    weights, biases, _ = chapter3.start(sizes, 2, "large")
    x, y, _ = synthetic_data(rng, 4, sizes[0], sizes[-1])
    want_w = [
        sum(g)
        for g in zip(*[chapter3.gradient(weights, biases, xi[:, None], yi[:, None], cost)[0] for xi, yi in zip(x, y)])
    ]
    put = lambda arrays: [backend.asarray(a) for a in arrays]
    _, got_w = backprop(put(weights), put(biases), backend.asarray(x.T), backend.asarray(y.T), COSTS[cost])
    for g, w in zip(got_w, want_w, strict=True):
        np.testing.assert_allclose(backend.to_host(g), w, rtol=1e-12, atol=1e-14)


def test_the_cross_entropy_gradient_equals_central_finite_differences(rng):
    sizes = [5, 4, 3]
    weights, biases, _ = chapter3.start(sizes, 4, "default")
    x, y, _ = synthetic_data(rng, 3, sizes[0], sizes[-1])
    _, got_w = backprop(weights, biases, x.T, y.T, CrossEntropyCost)
    h = 1e-6
    for l, w in enumerate(weights):
        for j, k in [(0, 0), (w.shape[0] - 1, w.shape[1] - 1)]:
            plus, minus = [v.copy() for v in weights], [v.copy() for v in weights]
            plus[l][j, k] += h
            minus[l][j, k] -= h
            cost = lambda ws: 3 * chapter3.total_cost(ws, biases, x, y, "cross-entropy", 0.0)  # the sum over x
            assert abs((cost(plus) - cost(minus)) / (2 * h) - got_w[l][j, k]) < 1e-7


@pytest.mark.parametrize(("cost", "lmbda"), OBJECTIVES)
def test_total_cost_equals_the_per_example_sum(backend, rng, cost, lmbda):
    sizes = [8, 6, 3]
    x, y, _ = synthetic_data(rng, 11, sizes[0], sizes[-1])
    net = Network(sizes, seed=7, device=backend, dtype="float64", cost=cost)
    weights, biases, _ = chapter3.start(sizes, 7, "large")
    want = chapter3.total_cost(weights, biases, x, y, cost, lmbda)
    assert net.total_cost((x, y), lmbda) == pytest.approx(want, rel=1e-12)
    put = lambda arrays: [backend.asarray(a) for a in arrays]
    got = total_cost(put(weights), put(biases), backend.asarray(x.T), backend.asarray(y.T), COSTS[cost], lmbda)
    assert float(got) == pytest.approx(want, rel=1e-12)


def test_a_cost_class_or_its_name_and_bad_options_are_one_line_errors():
    assert Network([4, 2], seed=0, device="cpu", cost=CrossEntropyCost).cost is CrossEntropyCost
    for options in ({"cost": "hinge"}, {"init": "small"}):
        with pytest.raises(ConfigError, match="cost must be quadratic or cross-entropy|init must be large or default"):
            Network([4, 2], seed=0, device="cpu", **options)
    net = Network([4, 2], seed=0, device="cpu")
    with pytest.raises(ConfigError, match="lmbda"):
        net.SGD((np.zeros((3, 4)), np.eye(2)[[0, 1, 0]]), 1, 1, 0.5, lmbda=-1.0, callback=None)


def test_the_cuda_kernel_trains_both_costs_with_any_lmbda_and_refuses_another_cost():
    """sgd_epoch.cu takes the cost and the decay as arguments (tests/kernels/test_cuda_kernel.py holds it to the
    portable path); a cost it has no BP1 for is refused in one line, so auto leaves it out."""
    for objective in ({"cost": "cross-entropy"}, {"lmbda": 5.0}, {"lmbda": np.array([0.0, 1.0])}, {}):
        assert CudaEpoch.cannot_train(**objective) is None
    assert "not log-likelihood; use --device cpu" in CudaEpoch.cannot_train("log-likelihood")


def book_pairs(rng, n, sizes):
    x, y, labels = sparse_inputs(rng, n, sizes)
    return [(xi[:, None], yi[:, None]) for xi, yi in zip(x, y)], [(xi[:, None], int(k)) for xi, k in zip(x, labels)]


def test_the_chapters_session_runs_on_network2_and_returns_its_four_lists(rng, capsys):
    from gpunet import network2

    sizes = [20, 7, 4]
    training, evaluation = book_pairs(rng, 30, sizes)
    net = network2.Network(sizes, cost=network2.CrossEntropyCost, seed=5, device="cpu", dtype="float64")
    assert net.cost is network2.CrossEntropyCost
    net.large_weight_initializer()
    lists = net.SGD(
        iter(training),
        2,
        10,
        0.5,
        lmbda=0.1,
        evaluation_data=evaluation,
        monitor_evaluation_accuracy=True,
        monitor_training_cost=True,
    )
    evaluation_cost, evaluation_accuracy, training_cost, training_accuracy = lists
    assert evaluation_cost == [] and training_accuracy == [] and len(evaluation_accuracy) == len(training_cost) == 2
    assert evaluation_accuracy[-1] == net.accuracy(evaluation) and 0 <= evaluation_accuracy[-1] <= 30
    x = np.stack([p[0][:, 0] for p in training])
    y = np.stack([p[1][:, 0] for p in training])
    weights = [np.asarray(w) for w in net.weights]
    biases = [np.asarray(b) for b in net.biases]
    assert training_cost[-1] == pytest.approx(
        chapter3.total_cost(weights, biases, x, y, "cross-entropy", 0.1), rel=1e-12
    )
    assert net.total_cost(evaluation, 0.1, convert=True) == pytest.approx(training_cost[-1], rel=1e-12)
    assert net.accuracy(training, convert=True) == net.accuracy(evaluation)
    assert "Epoch 1 training complete" in capsys.readouterr().out


def test_network2_starts_as_the_book_does_and_its_initializers_draw_again():
    from gpunet import network2

    sizes = [9, 5, 3]
    net = network2.Network(sizes, seed=2, device="cpu", dtype="float64")
    assert net.cost is network2.CrossEntropyCost
    weights, biases, rng = chapter3.start(sizes, 2, "default")
    for got, want in zip(net.weights + net.biases, weights + biases, strict=True):
        np.testing.assert_array_equal(got, want)
    net.large_weight_initializer()
    biases = [rng.standard_normal((n, 1)) for n in sizes[1:]]
    weights = [rng.standard_normal((n, n_in)) for n_in, n in zip(sizes[:-1], sizes[1:])]
    for got, want in zip(net.weights + net.biases, weights + biases, strict=True):
        np.testing.assert_array_equal(got, want)


def test_save_writes_the_books_json_and_load_reads_it_back(tmp_path):
    import json

    from gpunet import DataError, network2

    net = network2.Network([6, 4, 3], cost=network2.QuadraticCost, seed=1, device="cpu", dtype="float64")
    path = tmp_path / "net.json"
    net.save(path)
    data = json.loads(path.read_text())
    assert data.keys() == {"sizes", "weights", "biases", "cost"} and data["cost"] == "QuadraticCost"
    assert data["sizes"] == [6, 4, 3] and np.array_equal(np.array(data["weights"][0]), net.weights[0])
    back = network2.load(path, device="cpu", dtype="float64")
    assert back.cost is network2.QuadraticCost and back.sizes == [6, 4, 3]
    for got, want in zip(back.weights + back.biases, net.weights + net.biases, strict=True):
        np.testing.assert_array_equal(got, want)
    target = tmp_path / "elsewhere.json"
    target.write_text("keep")
    (tmp_path / "link.json").symlink_to(target)
    net.save(tmp_path / "link.json")  # replaces the link, writes through none
    assert target.read_text() == "keep" and not (tmp_path / "link.json").is_symlink()
    for text, why in [
        ("{", "not JSON"),
        ('{"sizes": [6, 3]}', "keys sizes, weights, biases and cost"),
        (
            '{"sizes": [6, 3], "weights": [[[1]]], "biases": [[[0]]], "cost": "QuadraticCost"}',
            r"weights\[0\] must be 3 x 6",
        ),
        ('{"sizes": [1, 1], "weights": [[[1]]], "biases": [[[0]]], "cost": "Hinge"}', "cost must be QuadraticCost or"),
    ]:
        path.write_text(text)
        with pytest.raises(DataError, match=why) as error:
            network2.load(path, device="cpu")
        assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_train_and_bench_take_chapter_3s_flags(tmp_path):
    from helpers import assert_one_line_error, bench_on, train_on, write_mnist_like

    write_mnist_like(tmp_path, 30, 10, rows=4, cols=4, n_classes=2)
    run = train_on(tmp_path, "--sizes", "16,3,2", "--cost", "cross-entropy", "--lmbda", "5", "--init", "default")
    assert run.returncode == 0, run.stderr
    assert "| cost cross-entropy | lmbda 5 | init default |" in run.stdout
    assert "| cost" not in train_on(tmp_path, "--sizes", "16,3,2").stdout  # chapter 1's header as before
    assert_one_line_error(train_on(tmp_path, "--cost", "hinge"), "--cost", "invalid choice")
    assert_one_line_error(train_on(tmp_path, "--lmbda", "-1"), "--lmbda", "expected a finite number >= 0")
    bench = bench_on(tmp_path, "16,3,2", "--device", "cpu", "--cost", "quadratic,cross-entropy", "--lmbda", "0,5")
    assert bench.returncode == 0, bench.stderr
    for path in ("portable ", "portable l2=5", "portable ce ", "portable ce l2=5"):
        assert f"cpu     {path}" in bench.stdout
    assert_one_line_error(bench_on(tmp_path, "16,2", "--cost", "hinge"), "--cost", "expected costs among")


def test_a_resumed_chapter_3_run_goes_on_with_its_cost_and_lmbda(tmp_path):
    from helpers import cli, train_on, write_mnist_like

    data = tmp_path / "data"
    write_mnist_like(data, 30, 10, rows=4, cols=4, n_classes=2)
    flags = ("--sizes", "16,3,2", "--seed", "3", "--cost", "cross-entropy", "--lmbda", "5", "--init", "default")
    straight = train_on(data, *flags, "--save", tmp_path / "straight.npz", epochs=2)
    assert straight.returncode == 0, straight.stderr
    first = train_on(data, *flags, "--checkpoint", tmp_path / "ck.npz", epochs=1)
    assert first.returncode == 0, first.stderr
    resumed = cli("train", "--resume", tmp_path / "ck.npz", "--epochs", "2", "--data-dir", data, "--device", "cpu")
    assert resumed.returncode == 0, resumed.stderr
    assert "| cost cross-entropy | lmbda 5 | init default |" in resumed.stdout
    a, b = Network.load(tmp_path / "straight.npz", device="cpu"), Network.load(tmp_path / "ck.npz", device="cpu")
    for got, want in zip(b.weights + b.biases, a.weights + a.biases, strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_saved_model_keeps_its_objective_and_an_older_file_reads_as_chapter_1s(tmp_path):
    net = Network([6, 4, 3], seed=2, device="cpu", cost="cross-entropy", init="default")
    x, y, _ = synthetic_data(np.random.default_rng(0), 20, 6, 3)
    net.SGD((x, y), 1, 10, 0.5, lmbda=5.0, callback=None)
    net.save(tmp_path / "ce.npz")
    back = Network.load(tmp_path / "ce.npz", device="cpu")
    assert (back.cost, back.init, back.lmbda) == (CrossEntropyCost, "default", 5.0)
    assert back.total_cost((x, y), 5.0) == pytest.approx(net.total_cost((x, y), 5.0), rel=1e-6)
    with np.load(tmp_path / "ce.npz") as npz:  # a file as gpunet wrote it before chapter 3: no objective
        arrays = {name: npz[name] for name in npz.files}
    state = json.loads(str(arrays["state"]))
    del state["objective"]
    arrays["state"] = np.asarray(json.dumps(state))
    np.savez(tmp_path / "old.npz", **arrays)
    old = Network.load(tmp_path / "old.npz", device="cpu")
    assert (old.cost.name, old.init, old.lmbda) == ("quadratic", "large", 0.0)


def test_evaluate_predict_and_show_read_a_cross_entropy_model(tmp_path):
    from helpers import cli, train_on, write_mnist_like

    data = tmp_path / "data"
    write_mnist_like(data, 30, 10, rows=4, cols=4, n_classes=2)
    flags = ("--sizes", "16,3,2", "--cost", "cross-entropy", "--lmbda", "5", "--init", "default")
    trained = train_on(data, *flags, "--save", tmp_path / "m.npz")
    assert trained.returncode == 0, trained.stderr
    assert Network.load(tmp_path / "m.npz", device="cpu").cost is CrossEntropyCost
    scored = cli("evaluate", tmp_path / "m.npz", "--device", "cpu", "--data-dir", data)
    assert scored.returncode == 0 and "/ 10" in scored.stdout, scored.stderr
    answered = cli("predict", tmp_path / "m.npz", data / "t10k-images-idx3-ubyte.gz")
    assert answered.returncode == 0 and answered.stdout.count("\n") == 10, answered.stderr
    shown = cli("show", tmp_path / "m.npz")
    assert shown.returncode == 0 and "cost cross-entropy | init default | lmbda 5.0" in shown.stdout, shown.stderr
