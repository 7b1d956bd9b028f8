"""``evaluate --split validation`` scores the validation split the model was trained with (issue 20, item 4)."""

import re

from helpers import assert_one_line_error, cli, write_mnist_like


def test_validation_is_the_models_own_unless_given(tmp_path):
    write_mnist_like(tmp_path / "d", 60, 20, rows=4, cols=4)
    model = tmp_path / "m.npz"
    trained = cli("train", "--device", "cpu", "--data-dir", tmp_path / "d", "--sizes", "16,10", "--epochs", "1",
                  "--validation-size", "25", "--save", model)  # fmt: skip
    assert trained.returncode == 0, trained.stderr

    def scored(*flags):
        run = cli("evaluate", model, "--device", "cpu", "--data-dir", tmp_path / "d", *flags)
        assert run.returncode == 0, run.stderr
        return int(re.search(r"/ (\d+) correct", run.stdout).group(1)), run

    total, run = scored("--split", "validation")
    assert total == 25 and "the last 25 training images" in run.stderr
    assert scored("--split", "train")[0] == 35  # the model's training images, none of its validation
    total, run = scored("--split", "validation", "--validation-size", "10")
    assert total == 10 and run.stderr == ""
    total, run = scored()  # the test split does not depend on it: says nothing (and fits data of 60 images)
    assert total == 20 and run.stderr == ""


def test_a_data_error_is_alone_without_the_validation_note_before_it(tmp_path):
    write_mnist_like(tmp_path / "d", 60, 20, rows=4, cols=4)
    write_mnist_like(tmp_path / "few", 20, 20, rows=4, cols=4)  # fewer training images than its validation
    model = tmp_path / "m.npz"
    trained = cli("train", "--device", "cpu", "--data-dir", tmp_path / "d", "--sizes", "16,10", "--epochs", "1",
                  "--validation-size", "25", "--save", model)  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    run = cli("evaluate", model, "--device", "cpu", "--data-dir", tmp_path / "few", "--split", "validation")
    assert_one_line_error(run)
