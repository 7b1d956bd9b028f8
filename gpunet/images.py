"""Inputs for ``gpunet predict``: PNG/JPEG pictures (Pillow) or IDX image files, as rows in [0, 1]."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .data import DataError, read_idx
from .errors import ConfigError

PICTURES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def load_inputs(paths, n_inputs: int, invert: bool = False):
    """Yield (name, rows (k, n_inputs)) for each file: one row per picture, every image of an IDX file."""
    for path in map(Path, paths):
        x = _picture(path, n_inputs) if path.suffix.lower() in PICTURES else _idx(path, n_inputs)
        yield str(path), 1.0 - x if invert else x


def _picture(path: Path, n_inputs: int) -> np.ndarray:
    """Grayscale, resized to the network's square input: MNIST's polarity is a light digit on black."""
    side = math.isqrt(n_inputs)
    if side * side != n_inputs:
        raise ConfigError(f"{path}: the network's {n_inputs} inputs are not a square image")
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise ConfigError("reading PNG/JPEG needs Pillow: pip install 'gpunet[images]'") from None
    try:
        with Image.open(path) as image:
            gray = image.convert("L").resize((side, side), Image.Resampling.LANCZOS)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"{path}: not a readable image ({e})") from None
    return np.asarray(gray, np.float64).reshape(1, n_inputs) / 255.0


def _idx(path: Path, n_inputs: int) -> np.ndarray:
    images = read_idx(path)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.shape[1] * images.shape[2] != n_inputs:
        raise DataError(f"{path}: images of shape {images.shape[1:]} do not fit the network's {n_inputs} inputs")
    x = images.reshape(len(images), n_inputs).astype(np.float64)
    return x / 255.0 if images.dtype == np.uint8 else x
