"""The baselines chapter 1 measures the network against: random guessing, average darkness, an SVM.

Each trains on the training images and answers the test images, to compare with ``Epoch k: correct / total``.
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import GpunetError
from ..io.idx import unit


@dataclass(frozen=True)
class Row:
    """One line of the comparison: what was measured, and what the book printed for it."""

    method: str
    correct: float  # answers right out of ``total`` (an expectation may be fractional)
    total: int
    book: str  # the book's figure, as the book gives it ("" when it gives none)
    source: str = "measured"  # "measured" by this command, else where the figure comes from
    seconds: float | None = None

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.total, 1)

    def as_json(self) -> dict:
        return {**asdict(self), "accuracy": self.accuracy}


# The book's figures (chapter 1, "Implementing our network to classify digits" and "Toward deep learning").
BOOK_RANDOM = "about 10 %"
BOOK_DARKNESS = "2,225 / 10,000 (22.25 %)"
BOOK_SVM = "9,435 / 10,000 (94.35 %)"
BOOK_NETWORK: dict[tuple[int, ...], str] = {
    (784, 30, 10): "95.42 % (best epoch, best of 3 runs)",
    (784, 100, 10): "96.59 % (best of 3 runs)",
}


def random_guess(labels: np.ndarray, n_classes: int, seed: int) -> tuple[float, np.ndarray]:
    """Guessing a class uniformly at random: the expected number right (n / classes), and one seeded draw."""
    guesses = np.random.default_rng(seed).integers(0, n_classes, size=len(labels))
    return len(labels) / n_classes, guesses


def darkness(images: np.ndarray) -> np.ndarray:
    """The darkness of each image (rows): the sum of its pixels, exact for integer pixels."""
    return images.sum(axis=1, dtype=np.int64 if images.dtype.kind in "iu" else np.float64)


def average_darknesses(images: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """The mean darkness of the training images of each class, as the book's ``avg_darknesses``; NaN for a class
    with no training image (the book's dictionary has no key for it, so it is never guessed)."""
    totals = np.bincount(labels, weights=darkness(images), minlength=n_classes)  # float64: exact below 2**53
    counts = np.bincount(labels, minlength=n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return totals / counts


def guess_by_darkness(averages: np.ndarray, images: np.ndarray) -> np.ndarray:
    """The book's ``guess_digit``: the class whose mean darkness is closest; on a tie, the lowest class."""
    distance = np.abs(averages[None, :] - darkness(images)[:, None].astype(np.float64))
    return np.argmin(np.where(np.isnan(distance), np.inf, distance), axis=1)


class MissingExtra(GpunetError):
    """An optional dependency is not installed."""


def svm_classifier(book: bool, n_features: int):
    """scikit-learn's ``SVC()`` as it defaults today, or (``book``) with the book's 2015 gamma = 1 / n_features."""
    try:
        from sklearn.svm import SVC
    except ImportError:
        hint = "pip install 'gpunet[svm]' (or pass --skip-svm)"
        raise MissingExtra(f"the SVM baseline needs scikit-learn: {hint}") from None
    return SVC(gamma=1.0 / n_features) if book else SVC()


def svm_description(book: bool) -> str:
    return "SVC(gamma=1/n_features), the 2015 default" if book else "SVC(), today's defaults (gamma='scale')"


def svm_predict(train: tuple[np.ndarray, np.ndarray], test_images: np.ndarray, book: bool) -> np.ndarray:
    """Fit an RBF SVM on the training images (pixels scaled to [0, 1], as the network sees them), answer the test."""
    x, labels = train
    clf = svm_classifier(book, x.shape[1])
    clf.fit(unit(x), labels)
    return clf.predict(unit(test_images))


# CPU seconds of SVC() fitting 50,000 MNIST images and predicting 10,000, and the book's gamma's factor (docs/book.md).
SVM_FIT_50K, SVM_PREDICT_50K, SVM_BOOK_FACTOR = 212.0, 41.0, 1.56


def svm_estimate(n_train: int, n_test: int, book: bool = False) -> float:
    """CPU seconds the SVM is expected to take, scaled from the measurements above."""
    scale = n_train / 50_000
    seconds = SVM_FIT_50K * scale**1.8 + SVM_PREDICT_50K * scale**0.6 * n_test / 10_000
    return seconds * (SVM_BOOK_FACTOR if book else 1.0)


@contextmanager
def ticker(label: str, stream=None, every: float = 1.0):
    """Show ``label`` and the time elapsed on ``stream`` (stderr) while the block runs, once a minute off a tty."""
    stream = stream or sys.stderr
    live = stream.isatty()
    step = every if live else 60.0
    stop = threading.Event()
    start = time.perf_counter()

    def show():
        while not stop.wait(step):
            elapsed = _clock(time.perf_counter() - start)
            stream.write(f"\r{label}: {elapsed} elapsed" if live else f"{label}: {elapsed} elapsed\n")
            stream.flush()

    thread = threading.Thread(target=show, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        if live:
            stream.write("\n")


def duration(seconds: float) -> str:
    """Seconds as a person says them: 40 s, 12 min."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


# The README's figures of the network (100 seeds each), shown as such when no --model or --sweep measures them.
README_SOURCE = "README: gpunet sweep --seeds 1-100, 30 epochs, eta 3, batch 10 (not measured by this command)"
README_NETWORKS = [
    ((784, 30, 10), "median of 100 seeds' best epochs", 0.9512),
    ((784, 30, 10), "best of 100 seeds", 0.9582),
    ((784, 100, 10), "median of 100 seeds' best epochs", 0.8729),
    ((784, 100, 10), "best of 100 seeds", 0.9680),
]


def readme_rows(total: int) -> list[Row]:
    return [
        Row(f"network {list(sizes)}, {what}", round(accuracy * total), total, BOOK_NETWORK[sizes], README_SOURCE)
        for sizes, what, accuracy in README_NETWORKS
    ]
