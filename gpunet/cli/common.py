"""What the commands share beyond their options: the data and device the flags name, a saved network's
answers, and the progress bar."""

from __future__ import annotations

import sys

from .. import data as datasets
from ..backend import get_backend
from ..errors import ConfigError, DataError, say
from ..network import Network
from ..settings import COUNT, check


def load_data(args, validation_size=None):
    """Returns the dataset the data flags name (:func:`options.add_data_arguments`), ``validation_size`` where
    the command's flag gives none: the book's pickle, or IDX files (downloaded first if asked and missing)."""
    size = validation_size if args.validation_size is None else args.validation_size
    return datasets.load(args.data_dir, args.data, size, args.download, args.mirror)


def counted(n: int, noun: str) -> str:
    """'1 epoch', '2 epochs'."""
    return f"{n} {noun}{'s' * (n != 1)}"


def backend_for(args):
    """The backend ``--device`` names (auto: CUDA if usable, else the CPU, with a note saying why)."""
    backend = get_backend(args.device)
    if backend.note:
        say(backend.note)
    return backend


def predictions(args, model, split_name):
    """A saved network's answers on one split: (network, host data, the split, predicted labels on the host)."""
    backend = backend_for(args)
    net = Network.load(model, device=backend)
    size = _model_validation_size(args, net, model)
    host = load_data(args, size)
    host.check_fits(net.sizes)
    if size is not None and split_name != "test":  # said once the data is there: a data error is then alone
        say(f"validation: the last {size} training images, as {model} was trained (--validation-size N for others)")
    outputs, classes = net.sizes[-1], host.n_classes
    if outputs != classes:  # its extra outputs are scored as classes no image has
        what = f"{model}: its output layer has {outputs} neurons, but the data has {classes} classes"
        settings = net.record.get("settings")
        if not (isinstance(settings, dict) and settings.get("sizes") == list(net.sizes)):
            raise ConfigError(
                f"{what}, and no record says it was trained so; score a network whose sizes end in {classes}"
            )
        say(f"{what}: it was trained so (outputs {classes}-{outputs - 1} towards 0), and is scored over all {outputs}")
    split = {"test": host.test, "validation": host.validation, "train": host.train}[split_name]
    x, _ = datasets.pin_split(backend, split[0], split[1], net.dtype)
    return net, host, split, backend.to_host(net.predict(x))


def _model_validation_size(args, net, model) -> int | None:
    """Returns the validation size the model was trained with, unless --validation-size or --data says another
    (None)."""
    settings = net.record.get("settings")
    stored = settings.get("validation_size") if isinstance(settings, dict) else None
    if args.validation_size is not None or args.data or not isinstance(stored, int):
        return None
    return check(f"{model}: the validation size it records", stored, COUNT, error=DataError)


class ProgressBar:
    """A tqdm bar of ``total`` steps, shown from the first step until closed; train's, sweep's."""

    def __init__(self, total, **style):
        from tqdm import tqdm

        self.tqdm, self.total, self.style, self.bar = tqdm, total, style, None

    def __call__(self, done: int) -> None:
        if self.bar is None:
            self.bar = self.tqdm(total=self.total, leave=False, **self.style)
        self.bar.update(done)

    def write(self, line: str) -> None:
        self.tqdm.write(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    @classmethod
    def if_watched(cls, total, **style):
        return cls(total, **style) if total and sys.stdout.isatty() and sys.stderr.isatty() else None
