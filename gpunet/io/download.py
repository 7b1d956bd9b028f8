"""Fetch and verify the MNIST files: mirrors in order, bounded in size and time, checksums, atomic writes."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urljoin, urlsplit

from ..errors import DataError, log, one_line, say
from .find import DATA_FLAGS, find_file, locate, shown
from .fs import open_regular, remove_empty, remove_stale_parts, temporary
from .identity import content_sha256, digest
from .signals import STOP_SIGNALS

# The mirror torchvision tries first, then the others; GPUNET_MNIST_MIRRORS (or --mirror) replaces the list.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
MIRRORS_ENV = "GPUNET_MNIST_MIRRORS"
TOPIC = "download"  # the notes' topic: `--quiet` silences it

# Bounds on one file from one mirror (module constants, so tests can shrink them).
CONNECT_SECONDS = 15.0  # to connect, and for each read of the socket
GRACE_SECONDS = 15.0  # then the transfer must average MIN_RATE bytes/s, or it is abandoned as stalled
MIN_RATE = 50_000  # bytes/s: 400 kbit/s, so the largest file takes at most ~200 s
MAX_REDIRECTS = 5
STALE_SECONDS = 60.0  # a .part not written for this long has no live download behind it
_CHUNK = 1 << 16


class Published(NamedTuple):
    """A file as the mirrors publish it: its size, the md5 of the .gz, the sha256 of its decompressed content,
    and that content's length (a gzip bomb is cut off there, not decompressed to the end)."""

    size: int
    md5: str
    sha256: str
    length: int = 0


MNIST = {
    "train-images-idx3-ubyte.gz": Published(
        9_912_422,
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        47_040_016,
    ),
    "train-labels-idx1-ubyte.gz": Published(
        28_881,
        "d53e105ee54ea40749a09fcbcd1e9432",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        60_008,
    ),
    "t10k-images-idx3-ubyte.gz": Published(
        1_648_877,
        "9fb629c4189551a2d022fa330f9573f3",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        7_840_016,
    ),
    "t10k-labels-idx1-ubyte.gz": Published(
        4_542,
        "ec29112dd5afa0611ce80d1b7f02629c",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        10_008,
    ),
}


class _Failed(Exception):
    """One mirror failed for one file; the message is short."""


def mirrors(override=None) -> list[str]:
    """The mirror base URLs to try, in order: ``override``, else $GPUNET_MNIST_MIRRORS, else MIRRORS."""
    if override:
        return list(override)
    env = os.environ.get(MIRRORS_ENV, "").replace(",", " ").split()
    try:
        _ = [urlsplit(url).port for url in env]  # their hosts and ports are parsed only when asked for
    except ValueError:
        raise DataError(f"${MIRRORS_ENV}: expected URLs like https://host/mnist/, got {' '.join(env)!r}") from None
    return env or list(MIRRORS)


def is_genuine(path: Path, name: str) -> bool:
    """The file is MNIST's ``name``: its published md5, or (recompressed) its canonical content."""
    with open_regular(path, "data file") as f:
        md5 = digest(f, "md5")
    if md5 == MNIST[name].md5:
        return True
    try:
        return content_sha256(path, gzipped=True, limit=MNIST[name].length) == MNIST[name].sha256
    except DataError:
        return False


def missing(folder: Path) -> list[str]:
    """MNIST files absent from ``folder`` (either the .gz or the raw file counts as present)."""
    return [name for name in MNIST if locate(folder, name.removesuffix(".gz")) is None]


def download(folder, bases=None, progress: bool | None = None, looked_in=()) -> list[Path]:
    """Returns the MNIST files fetched into ``folder``, those missing there; each lands whole and verified, or
    not at all.

    Each file fetched is named with its mirror once it has landed, in a note of topic ``download`` (quiet: no
    notes and no bar); a failure is the error alone, which names every mirror tried and why it failed. Each
    file is capped at its published size and abandoned when it stalls; no temporary file outlives the call,
    whatever ends it (an error, Ctrl-C, SIGTERM, SIGHUP).
    """
    folder = Path(folder)
    bases = mirrors(bases)
    shown_notes = log.getChild("download").isEnabledFor(logging.INFO)
    progress = (shown_notes and sys.stderr.isatty()) if progress is None else progress
    elsewhere = len(looked_in) > 1 and missing(folder)
    fetched = []
    created = [p for p in (folder, *folder.parents) if not p.exists()]  # removed again if nothing lands
    try:
        with _terminate_as_exit():
            for name in missing(folder):
                folder.mkdir(parents=True, exist_ok=True)
                for stale in MNIST:  # no lock: only what no live download can still be writing
                    remove_stale_parts(folder / stale, older_than=STALE_SECONDS)
                fetched.append(_from_mirrors(folder, name, bases, progress))
    except OSError as e:  # the folder, not a mirror: read-only, disk full, ...
        raise DataError(folder, f"cannot write the download there ({e.strerror or e}); give {DATA_FLAGS}") from None
    finally:
        remove_empty(*created)  # leave the disk as it was
    if elsewhere:
        say(f"no MNIST data in {', '.join(map(shown, looked_in[:-1]))}: downloaded it into {shown(folder)}", TOPIC)
    return fetched


def _from_mirrors(folder: Path, name: str, bases, progress: bool) -> Path:
    """One file from the first mirror that gives it whole, said once it has landed (with the mirrors that failed
    before it); else DataError naming each mirror and why it failed, the one line a failure prints."""
    failures = {}
    for k, base in enumerate(bases, 1):
        host = _label(base, bases)
        try:
            path = _fetch(base.rstrip("/") + "/" + name, folder, name, progress)
        except _Failed as e:
            failures[host] = str(e)
            continue
        before = "".join(f"; {host}: {reason}" for host, reason in failures.items())
        say(f"downloaded {name} from {host} (mirror {k} of {len(bases)}{before})", TOPIC)
        return path
    reasons = set(failures.values())
    why = f"{len(failures)} mirrors: {reasons.pop()}" if len(failures) > 1 and len(reasons) == 1 else None
    why = why or "; ".join(f"{host}: {reason}" for host, reason in failures.items())
    raise DataError(
        f"could not download {name} ({why}); offline, copy {', '.join(MNIST)} into {shown(folder)} (a source "
        f"checkout of gpunet has them in data/), or give {DATA_FLAGS} a folder holding them, or --mirror URL"
    )


def _fetch(url: str, folder: Path, name: str, progress: bool) -> Path:
    """One file from one mirror, into a temporary file renamed once it checks out."""
    fd, tmp = temporary(folder / name)
    try:
        with os.fdopen(fd, "wb") as out:
            _stream(url, out, MNIST[name].size, progress)
        if not is_genuine(Path(tmp), name):
            raise _Failed("checksum mismatch: not the published file")
        os.replace(tmp, folder / name)
        return folder / name
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _stream(url: str, out, cap: int, progress: bool) -> None:
    """Copy ``url`` into ``out``: at most ``cap`` bytes, and no slower than MIN_RATE after GRACE_SECONDS.

    A reader thread does the blocking network calls (a read loop with a deadline cannot cut short one read
    blocked on the socket); this thread keeps the clock, so a server that dribbles a byte now and then (each
    read succeeds) is still cut off in bounded time.
    """
    chunks: queue.Queue = queue.Queue(maxsize=16)
    stop = threading.Event()
    response = []

    def reader():
        try:
            with _session(url).get(url, stream=True, timeout=CONNECT_SECONDS) as r:
                response.append(r)
                r.raise_for_status()
                declared = r.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > cap:
                    raise _Failed(f"{int(declared):,} bytes offered, MNIST's file has {cap:,}")
                for chunk in r.iter_content(_CHUNK):
                    while not stop.is_set():
                        with contextlib.suppress(queue.Full):
                            chunks.put(chunk, timeout=0.5)
                            break
                    if stop.is_set():
                        return
                chunks.put(None)
        except BaseException as e:  # noqa: BLE001 - handed to the thread that reports it
            if not stop.is_set():
                chunks.put(e)

    thread = threading.Thread(target=reader, name="gpunet-download", daemon=True)
    start, got = time.monotonic(), 0
    bar = _bar(cap) if progress else None
    thread.start()
    try:
        while True:
            try:
                chunk = chunks.get(timeout=0.5)
            except queue.Empty:
                chunk = b""
            if chunk is None:
                return
            if isinstance(chunk, BaseException):
                raise _Failed(_reason(chunk)) from None
            got += len(chunk)
            if got > cap:
                raise _Failed(f"more than the {cap:,} bytes MNIST's file has")
            out.write(chunk)
            if bar is not None:
                bar.update(len(chunk))
            elapsed = time.monotonic() - start
            if elapsed > GRACE_SECONDS and got < MIN_RATE * elapsed:
                raise _Failed(f"stalled: {got:,} bytes in {elapsed:.0f} s (needs {MIN_RATE // 1000} kB/s)")
    finally:
        stop.set()
        for r in response:  # wake the reader if it is blocked on the socket
            with contextlib.suppress(Exception):
                r.raw.shutdown()
            with contextlib.suppress(Exception):
                r.close()
        if bar is not None:
            bar.close()


def _session(mirror: str):
    """Returns a requests session that follows at most ``MAX_REDIRECTS`` redirects, each to http(s) and to an
    address no less public than ``mirror``'s (a public mirror never sends gpunet to a private, loopback or
    link-local address, the cloud's metadata service included)."""
    import requests

    reach = _reach(urlsplit(mirror).hostname or "")

    class Policed(requests.Session):
        def get_redirect_target(self, resp):
            target = super().get_redirect_target(resp)
            if target is not None:
                to = urlsplit(urljoin(resp.url, target))
                if to.scheme not in ("http", "https"):
                    raise _Failed(f"redirected to a {to.scheme or 'schemeless'} address, refused")
                if (where := _reach(to.hostname or "")) not in ("public", reach):
                    raise _Failed(f"redirected to a {where} address ({to.hostname}), refused")
            return target

    session = Policed()
    session.max_redirects = MAX_REDIRECTS
    return session


def _reach(host: str) -> str:
    """Returns the narrowest reach among ``host``'s addresses: link-local, loopback, private, or public."""
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return "public"  # not resolved here: the request fails on its own
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    addresses = [getattr(a, "ipv4_mapped", None) or a for a in addresses]
    for reach in ("link_local", "loopback", "private", "unspecified"):
        if any(getattr(a, f"is_{reach}") for a in addresses):
            return reach.replace("_", "-")
    return "public"


def _label(base: str, bases) -> str:
    """A mirror's short name: its host, or host and path where two mirrors share a host."""
    host = lambda b: urlsplit(b).netloc or b  # noqa: E731
    if sum(host(b) == host(base) for b in bases) == 1:
        return host(base)
    parts = urlsplit(base)
    return parts.netloc + parts.path


def _bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, leave=False, file=sys.stderr)


def _reason(e: BaseException) -> str:
    """A failure in a few words: the HTTP status, a refused connection, a timeout, ..."""
    import requests

    if isinstance(e, _Failed):
        return str(e)
    if isinstance(e, requests.HTTPError) and e.response is not None:
        return f"HTTP {e.response.status_code} {e.response.reason or ''}".strip()
    if isinstance(e, requests.Timeout):
        return f"no answer within {CONNECT_SECONDS:g} s"
    if isinstance(e, requests.ConnectionError):
        text = str(e)
        for known in ("Connection refused", "Name or service not known", "Temporary failure in name resolution"):
            if known in text:
                return known.lower()
        return "connection failed"
    return one_line(e)


@contextlib.contextmanager
def _terminate_as_exit():
    """A stop signal (SIGTERM, SIGHUP, ...: STOP_SIGNALS) unwinds like an exception, so the temporaries are
    removed; only where nothing else handles it (the command line turns it into KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum, frame):
        print("gpunet: terminated; removing the partial download", file=sys.stderr)
        raise SystemExit(128 + signum)

    mine = [s for s in STOP_SIGNALS if signal.getsignal(s) == signal.SIG_DFL]
    for s in mine:
        signal.signal(s, terminated)
    try:
        yield
    finally:
        for s in mine:
            signal.signal(s, signal.SIG_DFL)


def verify(folder) -> list[str]:
    """Check the four MNIST files in ``folder`` against their canonical content; one line per file."""
    folder = Path(folder)
    lines = []
    for name, published in MNIST.items():
        path, sha256 = find_file(folder, name.removesuffix(".gz")), published.sha256
        if content_sha256(path, limit=published.length) != sha256:
            raise DataError(path, "content does not match MNIST's published checksum; delete it and download again")
        lines.append(f"ok  {path}  sha256 {sha256[:16]}…")
    return lines
