"""``gpunet sweep`` on data it cannot score: one line before anything trains or is written, as train says it."""

from helpers import assert_one_line_error, cli, write_mnist_like


def test_zero_test_images_is_one_line_naming_the_other_eval(tmp_path):
    write_mnist_like(tmp_path / "data", 200, 0, rows=8, cols=8)
    run = cli(
        "sweep",
        "--seeds",
        "1-2",
        "--epochs",
        "1",
        "--sizes",
        "64,12,10",
        "--validation-size",
        "50",
        "--device",
        "cpu",
        "--data-dir",
        tmp_path / "data",
        "--out",
        tmp_path / "out",
    )
    assert_one_line_error(run, "no test images", "--eval validation")
    assert not (tmp_path / "out").exists()
    scored = cli(
        "sweep",
        "--seeds",
        "1-2",
        "--epochs",
        "1",
        "--sizes",
        "64,12,10",
        "--validation-size",
        "50",
        "--device",
        "cpu",
        "--data-dir",
        tmp_path / "data",
        "--eval",
        "validation",
    )
    assert scored.returncode == 0, scored.stderr
