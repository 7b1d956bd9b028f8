"""Issue 20.12: one set of option definitions, each help line true for its command; usage errors point to the
subcommand's help and to the flag meant; flags are never abbreviated."""

import pytest
from helpers import assert_one_line_error, cli

COMMANDS_WITHOUT_RESUME = (["evaluate"], ["bench"], ["data", "info"])


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # argparse wraps the help to the terminal's width


def help_of(*command) -> str:
    run = cli(*command, "--help")
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.mark.parametrize("command", COMMANDS_WITHOUT_RESUME)
def test_no_resume_wording_where_there_is_no_resume(command):
    text = help_of(*command)
    assert "--validation-size" in text and "--resume" not in text


def test_plot_which_draws_test_digits_takes_no_validation_size():
    assert "--data-dir" in help_of("plot") and "--validation-size" not in help_of("plot")


def test_train_says_what_resume_does_to_the_validation_size():
    assert "on --resume, the checkpoint's" in help_of("train")


@pytest.mark.parametrize(
    "command, auto",
    [
        (["train"], "the GPU where its kernel was measured faster than the CPU's, else the CPU; default: auto"),
        (["evaluate"], "auto: CUDA if usable, else the CPU; default: auto"),
        (["predict"], "auto: CUDA if usable, else the CPU; default: cpu"),
        (["plot"], "auto: CUDA if usable, else the CPU; default: cpu"),
        (["sweep"], "per configuration, as gpunet train chooses; default: auto"),
    ],
)
def test_device_auto_is_worded_per_command(command, auto):
    assert auto in help_of(*command)


def test_sweep_usage_shows_seeds_or_resume_required():
    assert "(--seeds LIST | --resume DIR)" in help_of("sweep")
    assert_one_line_error(cli("sweep", "--epochs", "1"), "--seeds", "--resume", "is required", "gpunet sweep --help")


@pytest.mark.parametrize("command", (["train"], ["bench"], ["sweep"]))
def test_sizes_are_written_the_same_everywhere(command):
    text = help_of(*command)
    assert "--sizes N,N,..." in text and "SIZES" not in text


def test_info_takes_only_the_folder():
    text = help_of("info")
    assert "--data-dir" in text and "--data FILE" not in text and "--validation-size" not in text
    assert_one_line_error(cli("info", "--validation-size", "5"), "unrecognized arguments", "gpunet info --help")


def test_data_verify_does_not_take_data_for_data_dir(tmp_path):
    run = cli("data", "verify", "--data", tmp_path / "mnist.pkl.gz")
    assert_one_line_error(run, "unrecognized arguments: --data", "gpunet data verify --help")


def test_predict_invert_shows_one_default():
    lines = [line for line in help_of("predict").splitlines() if "invert" in line]
    assert sum(line.count("default") for line in lines) == 1, lines


@pytest.mark.parametrize(
    "args, meant",
    [
        (["train", "--batchsize", "100"], "did you mean --batch-size?"),
        (["evaluate", "m.npz", "--splitt", "test"], "did you mean --split?"),
        (["data", "download", "--mirrors=http://x/"], "did you mean --mirror?"),
    ],
)
def test_unknown_arguments_point_to_the_subcommand_and_the_flag_meant(args, meant):
    run = cli(*args)
    command = " ".join(args[: 2 if args[0] == "data" else 1])
    assert_one_line_error(run, "unrecognized arguments", meant, f"see 'gpunet {command} --help'")


def test_no_suggestion_for_something_unlike_any_flag():
    run = cli("train", "--zzzz")
    assert_one_line_error(run, "unrecognized arguments: --zzzz", "'gpunet train --help'")
    assert "did you mean" not in run.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["data", "download", "--mirror", "http://[::1"], "argument --mirror: expected a URL"),
        (["sweep", "--resume", ""], "argument --resume: expected a path, got ''"),
        (
            ["train", "--resume", "", "--data-dir", "/nonexistent"],
            "argument --resume: expected a path, got ''",
        ),  # else a fresh run, silently
    ],
)
def test_a_flag_its_parser_cannot_take_is_one_line_where_it_is_parsed(args, fragment):
    assert_one_line_error(cli(*args), fragment)
