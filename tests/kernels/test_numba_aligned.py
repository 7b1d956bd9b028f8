"""The vector loop's arrays start on a cache line: a vector straddling two lines is a split load."""

import numpy as np
import pytest

numba_cpu = pytest.importorskip("gpunet.kernels.numba_cpu")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (10, 16), (784, 112), (3, 5, 7)])
def test_zeros_start_on_a_cache_line(shape, dtype):
    for _ in range(20):  # NumPy's own allocations land on many offsets; every one of ours on 0
        a = numba_cpu._zeros(shape, dtype)
        assert a.ctypes.data % 64 == 0
        assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous and not a.any()


def test_padded_rows_keep_their_values():
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = numba_cpu._in_zeros(w, (2, 16))
    assert out.ctypes.data % 64 == 0
    assert np.array_equal(out[:, :3], w) and not out[:, 3:].any()
