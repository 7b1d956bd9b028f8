"""``gpunet data download | verify | info``: the dataset fetched, checked, described."""

from __future__ import annotations

from ..data import as_folder, data_dir, data_dirs, load_host, named_folder
from ..errors import ConfigError, say
from ..io.download import download, verify
from ..io.signals import exit_status
from . import options
from .common import load_data

NAME = "data"
HELP = "download, verify or describe the dataset"


def add_arguments(parser) -> None:
    data_commands = parser.add_subparsers(
        dest="data_command", metavar="COMMAND", parser_class=options.Parser, required=True
    )
    fetch = "fetch the MNIST files missing from the data folder, checking their checksums"
    download = data_commands.add_parser("download", help=fetch)
    options.add_data_arguments(download, split=False)
    options.add_quiet(download)
    download.set_defaults(run=download_data)
    verify = data_commands.add_parser("verify", help="check the four MNIST files: checksums, counts, shapes")
    options.add_data_arguments(verify, split=False, download=False)
    verify.set_defaults(run=verify_data)
    describe = data_commands.add_parser("info", help="print where the data is: counts, image size, classes, bytes")
    options.add_data_arguments(describe, download=False)
    describe.set_defaults(run=describe_data)


def download_data(args) -> int:
    folder = as_folder(data_dir(args.data_dir))
    try:
        fetched = download(folder, args.mirror, looked_in=data_dirs(args.data_dir))
    except KeyboardInterrupt as stop:  # Ctrl-C, SIGTERM, SIGHUP, ...: the files already fetched are kept
        say(f"interrupted; the files fetched so far are kept in {folder}: fetch the rest with")
        say("  gpunet data download" + (f" --data-dir {args.data_dir}" if args.data_dir else ""))
        return exit_status(stop)
    print(f"downloaded {len(fetched)} file(s) into {folder}" if fetched else f"all four MNIST files are in {folder}")
    return 0


def verify_data(args) -> int:
    named_folder(args.data_dir)
    folder = as_folder(data_dir(args.data_dir))
    for line in verify(folder):
        print(line)
    host = load_host(folder, 10_000)
    counts = (len(host.train[1]) + len(host.validation[1]), len(host.test[1]), host.image_shape)
    if counts != (60_000, 10_000, (28, 28)):
        raise ConfigError(f"{folder}: not MNIST's 60000 + 10000 28x28 images")
    print(f"ok  {host.describe()}")
    return 0


def describe_data(args) -> int:
    print(load_data(args).describe())
    return 0
