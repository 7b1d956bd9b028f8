"""Hypothesis: whatever the bytes, the IDX parser gives an array or the project's own error."""

import gzip
import io
import struct
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gpunet.errors import DataError
from gpunet.io.idx import IDX_DTYPES, _parse_idx, read_idx


def _check(parse):
    try:
        out = parse()
    except DataError as e:
        assert "\n" not in str(e)
    else:
        assert isinstance(out, np.ndarray)


@given(st.binary(max_size=300))
def test_arbitrary_bytes(data):
    _check(lambda: _parse_idx(io.BytesIO(data), Path("fuzz.idx")))


# Plausible headers (right magic, any code and dimensions) followed by any payload reach the deeper checks.
headers = st.builds(
    lambda code, dims: bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims),
    st.sampled_from(sorted(IDX_DTYPES) + [0x00, 0x0A, 0xFF]),
    st.lists(st.one_of(st.integers(0, 6), st.integers(0, 2**32 - 1)), min_size=0, max_size=4),
)


@given(headers, st.binary(max_size=200))
def test_plausible_headers(header, payload):
    _check(lambda: _parse_idx(io.BytesIO(header + payload), Path("fuzz.idx")))


@settings(max_examples=40, deadline=None)
@given(headers, st.binary(max_size=100), st.integers(0, 120))
def test_cut_gzip_files(header, payload, cut):
    compressed = gzip.compress(header + payload)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.idx.gz"
        path.write_bytes(compressed[:cut] if cut < len(compressed) else compressed)
        _check(lambda: read_idx(path))
