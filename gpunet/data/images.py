"""Inputs for ``gpunet predict``: PNG/JPEG pictures (Pillow) or IDX image files, as rows in [0, 1]."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ..files import FileError, check_memory, open_regular
from .idx import read_idx

PICTURES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def load_inputs(paths, n_inputs: int, invert: str = "auto", say=print):
    """Yield (name, rows (k, n_inputs)) for each file: one row per picture, every image of an IDX file.

    ``invert``: "yes", "no", or "auto" (pictures with a light background are inverted, with a note).
    """
    for path in map(Path, paths):
        if path.suffix.lower() in PICTURES:
            x, light = _picture(path, n_inputs)
            if invert == "auto" and light:
                say(f"{path}: light background, inverted to MNIST's light digit on black (--no-invert keeps it)")
            flip = invert == "yes" or (invert == "auto" and light)
        else:
            x, flip = _idx(path, n_inputs), invert == "yes"
        yield str(path), 1.0 - x if flip else x


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


def _idx(path: Path, n_inputs: int) -> np.ndarray:
    images = read_idx(path)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.shape[1] * images.shape[2] != n_inputs:
        raise DataError(f"{path}: images of shape {images.shape[1:]} do not fit the network's {n_inputs} inputs")
    if len(images) == 0:
        raise DataError(f"{path}: holds no images")
    x = images.reshape(len(images), n_inputs).astype(np.float64)
    return x / 255.0 if images.dtype == np.uint8 else x
