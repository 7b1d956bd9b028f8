"""Inputs for ``gpunet predict``: PNG/JPEG pictures (Pillow) or IDX image files, as rows in [0, 1]."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError, one_line
from .fs import atomic_write, check_memory, open_regular
from .idx import iter_idx, read_header, read_idx, unit

IDX_CHUNK = 4096  # images of an IDX file classified at a time
PICTURES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


INK = 0.25  # a pixel this far above the background (0..1) is ink: every MNIST digit's box is 20 px at this level
LARGEST = 2048  # a picture's longest side is scaled down to this first: the digit ends 20 px tall anyway
FULL = 254 / 255  # every MNIST digit's strongest pixel is 254 or 255
BLANK = 2e-4  # fewer ink pixels than this share of the picture (or than 3) is no digit at all
COVERED = 0.5  # more ink pixels than this share is no digit on paper: MNIST's boldest test digit covers 35 %
SMALL = 128  # the background is estimated on the picture scaled to this longest side: it changes slowly


def load_inputs(paths, n_inputs: int, invert: str = "auto", chunk: int | None = None, inverted=None):
    """Yield (name, rows (k, n_inputs), first) for each file: one row per picture (``first`` None; rows None for
    a picture with no ink, or almost none: it shows no digit to classify), the images of an IDX file ``chunk``
    at a time (``first``: the index of the chunk's first image; None if it holds one).

    ``invert``: "yes", "no", or "auto" (pictures with a light background are inverted, and their names
    appended to the list ``inverted``, for the caller's one note).
    """
    for path in map(Path, paths):
        if path.suffix.lower() in PICTURES:
            ink, light = _picture(path, n_inputs)
            flip = invert == "yes" or (invert == "auto" and light)
            ink = off_paper(1.0 - ink if flip else ink)
            covered = (ink > INK).mean()
            if covered > COVERED:
                raise DataError(
                    path,
                    f"ink covers {covered:.0%} of the picture, so no digit stands out from the paper (a photo of "
                    "text, a texture, a digit cropped to its strokes?); crop it to one digit with paper around it",
                )
            digit = centred(ink, math.isqrt(n_inputs))
            if invert == "auto" and light and digit is not None and inverted is not None:  # not a blank sheet
                inverted.append(str(path))
            yield str(path), digit, None
            continue
        for x, first in _idx(path, n_inputs, chunk or IDX_CHUNK):
            yield str(path), 1.0 - x if invert == "yes" else x, first


def read_picture(path, n_inputs: int = 784, invert: bool | None = None) -> np.ndarray:
    """The picture at ``path`` (PNG, JPEG, ...) as ``gpunet predict`` reads it: one row (1, n_inputs) in [0, 1],
    the digit centred as MNIST's were (``invert``: True, False, None for what the background says); DataError
    for a file that is no picture or shows no digit."""
    path = Path(path)
    if path.suffix.lower() not in PICTURES:
        raise DataError(f"{path}: not a picture: name a {', '.join(sorted(PICTURES))} file")
    ((_, row, _),) = load_inputs([path], n_inputs, {None: "auto", True: "yes", False: "no"}[invert])
    if row is None:
        raise DataError(f"{path}: no digit: the picture has no ink (or almost none), nothing to classify")
    return row


def inverted_note(inverted: list) -> str:
    """The one note for the pictures ``load_inputs`` inverted in a run."""
    if len(inverted) == 1:
        return f"{inverted[0]}: light background, inverted to MNIST's light digit on black (--no-invert keeps it)"
    return (
        f"{len(inverted)} pictures had a light background, inverted to MNIST's light digit on black "
        "(--no-invert keeps them)"
    )


ZOOM, LABEL, GAP, COLUMNS = 4, 26, 6, 8  # the sheet: inputs 4x, 26 px of words under each, 8 to a row
SHEET_MOST = 200  # inputs drawn on one sheet at most


def write_sheet(path, cells, side: int) -> None:
    """Write, atomically, a PNG of what the network saw: each (name, row of side**2 values in [0, 1], answer)
    of ``cells`` as its side x side input, ``ZOOM`` times larger, white ink on black as MNIST's, the name and
    the answer under it, ``COLUMNS`` to a row; cell k's picture has its top left corner at
    (``GAP + (k % COLUMNS) * (side * ZOOM + GAP)``, ``GAP + (k // COLUMNS) * (side * ZOOM + LABEL + GAP)``)."""
    from PIL import Image, ImageDraw

    width, height = side * ZOOM + GAP, side * ZOOM + LABEL + GAP
    columns = max(1, min(len(cells), COLUMNS))
    sheet = Image.new("L", (GAP + columns * width, GAP + max(1, math.ceil(len(cells) / columns)) * height), 64)
    draw = ImageDraw.Draw(sheet)
    for k, (name, row, answer) in enumerate(cells):
        left, top = GAP + (k % columns) * width, GAP + (k // columns) * height
        if row is not None:
            digit = Image.fromarray(np.uint8(np.round(np.clip(row, 0, 1).reshape(side, side) * 255)))
            sheet.paste(digit.resize((side * ZOOM, side * ZOOM), Image.Resampling.NEAREST), (left, top))
        chars = (side * ZOOM) // 6  # Pillow's default font: about 6 px a character
        short = name if len(name) <= chars else "..." + name[-(chars - 3) :]
        draw.text((left, top + side * ZOOM + 1), short, fill=255)
        draw.text((left, top + side * ZOOM + 13), answer, fill=255)
    with atomic_write(path) as f:
        sheet.save(f, format="PNG")


def centred(ink: np.ndarray, side: int) -> np.ndarray | None:
    """The ink of a picture as MNIST's preprocessing made its digits (LeCun et al.): the digit's bounding box
    scaled, keeping its shape, into a 20x20 box (anti-aliased), then put in the 28x28 field with its centre of
    mass at the field's centre (``side`` for 28). ``ink`` is in [0, 1], none on the paper (:func:`off_paper`);
    the strongest stroke counts as full ink. One row of ``side**2`` values in [0, 1]; None when there is no ink
    (or almost none)."""
    from PIL import Image

    if (ink > INK).sum() < max(3, BLANK * ink.size):
        return None
    if ink.max() < FULL:  # pencil on grey paper: its strongest stroke made full ink, as every MNIST digit's is
        ink = ink / ink.max()
    rows, cols = np.nonzero(ink > INK)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    extent = max(bottom - top, right - left)
    margin = math.ceil(extent * 4 / 20)  # the faint edge around the box comes along
    crop = ink[max(top - margin, 0) : bottom + margin, max(left - margin, 0) : right + margin].astype(np.float32)
    scale = side * 20 / 28 / extent
    if scale != 1:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.LANCZOS))
    digit = np.clip(crop.astype(np.float64), 0.0, 1.0)
    y, x = np.indices(digit.shape)
    mass = digit.sum()
    dy, dx = round(side / 2 - (y * digit).sum() / mass), round(side / 2 - (x * digit).sum() / mass)
    field = np.zeros((side + 2 * digit.shape[0], side + 2 * digit.shape[1]))  # room for any shift, then cut
    field[digit.shape[0] + dy :, digit.shape[1] + dx :][: digit.shape[0], : digit.shape[1]] = digit
    return field[digit.shape[0] : digit.shape[0] + side, digit.shape[1] : digit.shape[1] + side].reshape(1, -1)


def off_paper(ink: np.ndarray) -> np.ndarray:
    """The ink in [0, 1] above the paper's level under it (:func:`background`: a lamp's gradient, a broad
    shadow, grey paper), as an array of ``ink``'s shape. The border's median is paper too, the least level
    counted as paper: a light sheet kept light (``--no-invert``) shows no ink. MNIST's digits come back
    unchanged."""
    border = np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])
    return np.clip(ink - np.maximum(background(ink), np.median(border)), 0.0, 1.0)


def background(ink: np.ndarray) -> np.ndarray:
    """The paper's level under every pixel of ``ink`` (an array of its shape): its grey-scale opening (a minimum,
    then a maximum, over squares half its longer side), which keeps a lighting gradient and any shadow holding
    such a square, and drops every stroke narrower than one; on the picture scaled to at most ``SMALL`` pixels,
    then scaled back. A square half the side leaves all 10,000 of MNIST's test digits at 0 (a quarter would
    not: 573 hold 7x7 of ink); a shadow or a fold narrower than that stays, as ink."""
    from PIL import Image

    height, width = ink.shape
    picture = Image.fromarray(ink.astype(np.float32))
    scale = min(1.0, SMALL / max(height, width))
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        picture = picture.resize(size, Image.Resampling.BOX)
    small = np.asarray(picture)
    k = math.ceil(max(small.shape) / 2)
    least = small.min()  # nothing lies below the picture's own range: a black field stays 0
    paper = np.clip(_sliding(np.maximum(_sliding(small, k, np.min), least), k, np.max), least, small.max())
    if scale < 1:
        paper = Image.fromarray(paper.astype(np.float32)).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(paper, dtype=np.float64)


def _sliding(a: np.ndarray, k: int, reduce) -> np.ndarray:
    """``reduce`` (np.min or np.max) over the k x k square around every pixel, the picture extended past its
    edges by odd reflection: a ramp goes on as a ramp, so the opening keeps a gradient's far corners."""
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (k // 2, k - 1 - k // 2)
        wide = np.pad(a, pad, mode="reflect", reflect_type="odd")
        a = reduce(np.lib.stride_tricks.sliding_window_view(wide, k, axis=axis), axis=-1)
    return a


def _picture(path: Path, n_inputs: int) -> tuple[np.ndarray, bool]:
    """The picture at full size as ink in [0, 1], MNIST's light-on-black polarity where the picture says it:
    the alpha of a picture with transparency (a drawing app's export: strokes on nothing, whatever their
    colour), else its grayscale; and whether that grayscale's background (the picture's border) is light."""
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
                transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
                alpha = _at_most(image.convert("RGBA").getchannel("A"), Image) if transparent else None
                gray = _at_most(image.convert("L"), Image)
    except Image.DecompressionBombError as e:  # Pillow's own limit, checked as the header is read
        raise DataError(path, f"too large a picture ({' '.join(str(e).split())})") from None
    except UnidentifiedImageError:  # its text names Pillow's file object, not the file
        raise DataError(path, "not a picture Pillow can read (PNG, JPEG, BMP, GIF, TIFF, WebP)") from None
    except (OSError, ValueError) as e:
        raise DataError(path, f"not a readable image ({one_line(e)})") from None
    if alpha is not None and alpha.min() < 128:  # something is see-through: what is drawn is the digit
        return unit(alpha), False
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return unit(gray), bool(np.median(border) > 127)


def _at_most(channel, Image, side: int = LARGEST) -> np.ndarray:
    """One channel as an array, a huge picture first scaled down (anti-aliased: thin strokes stay, as grey)."""
    scale = side / max(channel.size)
    if scale < 1:
        channel = channel.resize(
            (max(1, round(channel.width * scale)), max(1, round(channel.height * scale))), Image.Resampling.BOX
        )
    return np.asarray(channel)


def _idx(path: Path, n_inputs: int, chunk: int):
    """(rows, index of the first or None) of an IDX file's images, ``chunk`` at a time: memory bounded by the
    chunk, whatever count the header claims. A 2-d file is one image."""
    header = read_header(path)
    if len(header.shape) == 1:
        raise DataError(
            path,
            f"holds {header.shape[0]} labels (a 1-dimensional IDX file), not images; "
            "give an images file (such as t10k-images-idx3-ubyte.gz)",
        )
    single = len(header.shape) == 2
    shape = header.shape if single else header.shape[1:]
    if len(shape) != 2 or math.prod(shape) != n_inputs:
        raise DataError(path, f"images of shape {shape} do not fit the network's {n_inputs} inputs")
    if single:  # as large as one input, checked just above
        yield _rows(read_idx(path)[None], n_inputs), None
        return
    if header.shape[0] == 0:
        raise DataError(path, "holds no images")
    for _, first, images in iter_idx(path, chunk):
        yield _rows(images, n_inputs), None if header.shape[0] == 1 else first


def _rows(images: np.ndarray, n_inputs: int) -> np.ndarray:
    return unit(images.reshape(len(images), n_inputs))
