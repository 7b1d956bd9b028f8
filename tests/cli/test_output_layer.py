"""Issue 20.9: a last layer wider than the classes (`--sizes 784,30`: no output layer) is a warning line in the
header, not an error (the book's code allows it)."""

from helpers import cli, write_mnist_like


def test_a_last_layer_wider_than_the_classes_is_a_warning_line(tmp_path):
    write_mnist_like(tmp_path, 40, 10, rows=4, cols=4)
    common = ["train", "--device", "cpu", "--data-dir", tmp_path, "--epochs", "1", "--validation-size", "10"]
    run = cli(*common, "--sizes", "16,30")
    assert run.returncode == 0, run.stderr
    (warning,) = [line for line in run.stdout.splitlines() if line.startswith("warning:")]
    assert "the last layer has 30 units for 10 classes" in warning and "end --sizes with 10" in warning
    assert run.stdout.index(warning) < run.stdout.index("Epoch 0")  # in the header
    fitting = cli(*common, "--sizes", "16,30,10")
    assert fitting.returncode == 0 and "warning" not in fitting.stdout + fitting.stderr
