"""The suite started in the background, where SIGINT arrives ignored, runs its Ctrl-C tests as the foreground does."""

import signal
import subprocess
import sys
from pathlib import Path


def test_the_suite_lets_its_children_see_ctrl_c():
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN


def test_a_suite_started_in_the_background_still_delivers_ctrl_c():
    # What `(python -m pytest &)` does to the suite: SIGINT ignored before Python starts.
    here = Path(__file__)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"{here}::test_the_suite_lets_its_children_see_ctrl_c",
        ],
        cwd=here.parents[1],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert done.returncode == 0, done.stdout + done.stderr
