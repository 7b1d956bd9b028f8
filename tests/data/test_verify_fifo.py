"""``gpunet data verify`` reads the files through ``files.open_regular``, as training does: a FIFO is refused."""

import os

from helpers import MNIST, assert_one_line_error, cli
from test_limits import _unblock_later

from gpunet.io.download import MNIST as FILES


def test_a_fifo_among_the_files_is_one_line_not_a_hang(tmp_path):
    first, *rest = FILES
    for name in rest:
        (tmp_path / name).write_bytes((MNIST / name).read_bytes())
    os.mkfifo(tmp_path / first)
    _unblock_later(tmp_path / first)  # should verify block on it, it ends with an empty read, and this fails
    assert_one_line_error(cli("data", "verify", "--data-dir", tmp_path), first, "not a regular file")
