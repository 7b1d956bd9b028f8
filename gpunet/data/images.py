"""Inputs for ``gpunet predict``: PNG/JPEG pictures (Pillow) or IDX image files, as rows in [0, 1]."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ..files import FileError, check_memory, open_regular
from .idx import iter_idx, read_header, read_idx

IDX_CHUNK = 4096  # images of an IDX file classified at a time
PICTURES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def load_inputs(paths, n_inputs: int, invert: str = "auto", say=print, chunk: int | None = None):
    """Yield (name, rows (k, n_inputs), first) for each file: one row per picture (``first`` None), the images
    of an IDX file ``chunk`` at a time (``first``: the index of the chunk's first image; None if it holds one).

    ``invert``: "yes", "no", or "auto" (pictures with a light background are inverted, with a note).
    """
    for path in map(Path, paths):
        if path.suffix.lower() in PICTURES:
            x, light = _picture(path, n_inputs)
            if invert == "auto" and light:
                say(f"{path}: light background, inverted to MNIST's light digit on black (--no-invert keeps it)")
            flip = invert == "yes" or (invert == "auto" and light)
            yield str(path), 1.0 - x if flip else x, None
            continue
        for x, first in _idx(path, n_inputs, chunk or IDX_CHUNK):
            yield str(path), 1.0 - x if invert == "yes" else x, first


def _picture(path: Path, n_inputs: int) -> tuple[np.ndarray, bool]:
    """Grayscale at the network's square input, transparency composited onto white; and whether the
    background (the picture's border) is light. MNIST's polarity is a light digit on black."""
    side = math.isqrt(n_inputs)
    if side * side != n_inputs:
        raise ConfigError(f"{path}: the network's {n_inputs} inputs are not a square image")
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise ConfigError("reading PNG/JPEG needs Pillow: pip install 'gpunet[images]'") from None
    try:
        with open_regular(path, "picture") as f, warnings.catch_warnings():
            # Pillow warns above half of its decompression-bomb limit; only the limit itself is refused.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(f) as image:
                width, height = image.size
                check_memory(width * height * 6, f"{path}: a {width}x{height} picture")  # RGBA, then gray
                gray = _on_white(image, Image).convert("L")
    except FileError as e:
        raise DataError(str(e)) from None
    except Image.DecompressionBombError as e:  # Pillow's own limit, checked as the header is read
        raise DataError(f"{path}: too large a picture ({' '.join(str(e).split())})") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable image ({e})") from None
    pixels = np.asarray(gray)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    small = gray.resize((side, side), Image.Resampling.LANCZOS)
    return np.asarray(small, np.float64).reshape(1, n_inputs) / 255.0, bool(np.median(border) > 127)


def _on_white(image, Image):
    """A picture with transparency (a drawing app's export: ink on nothing) over a white sheet."""
    if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
        return image
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)


def _idx(path: Path, n_inputs: int, chunk: int):
    """(rows, index of the first or None) of an IDX file's images, ``chunk`` at a time: memory bounded by the
    chunk, whatever count the header claims. A 2-d file is one image."""
    header = read_header(path)
    single = len(header.shape) == 2
    shape = header.shape if single else header.shape[1:]
    if len(shape) != 2 or math.prod(shape) != n_inputs:
        raise DataError(f"{path}: images of shape {shape} do not fit the network's {n_inputs} inputs")
    if single:  # as large as one input, checked just above
        yield _rows(read_idx(path)[None], n_inputs), None
        return
    if header.shape[0] == 0:
        raise DataError(f"{path}: holds no images")
    for _, first, images in iter_idx(path, chunk):
        yield _rows(images, n_inputs), None if header.shape[0] == 1 else first


def _rows(images: np.ndarray, n_inputs: int) -> np.ndarray:
    x = images.reshape(len(images), n_inputs).astype(np.float64)
    return x / 255.0 if images.dtype == np.uint8 else x
