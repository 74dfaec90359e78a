"""Shared helpers of the dataset loaders: data home, checksums, safe download.

The download path never leaves half-written data behind: pooch streams the
archive to a temporary file next to its destination and verifies its checksum,
it is extracted into a temporary directory, and only then is the result moved
into place with :func:`os.replace`, together with a marker file that records a
complete fetch.
"""

import numbers
import os
import shutil
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._validation import check_integer

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
COMPLETE_MARKER = ".sklearn_tser_fetch_complete"


@dataclass(frozen=True)
class RemoteFileMetadata:
    """Where a remote archive lives and how to check it.

    Parameters
    ----------
    filename : str
        Name of the archive file.
    url : str
        Address to download it from.
    checksum : str
        Hexadecimal digest of the archive, as published.
    checksum_algorithm : {"sha256", "md5"}, default="sha256"
        Hash algorithm of ``checksum`` (one pooch knows).
    size : int or None, default=None
        Size of the archive in bytes, as published (for messages).
    """

    filename: str
    url: str
    checksum: str
    checksum_algorithm: str = "sha256"
    size: int | None = None


def get_data_home(data_home=None):
    """Return the folder of cached datasets as a :class:`~pathlib.Path`.

    Wraps :func:`sklearn.datasets.get_data_home` (``~/scikit_learn_data`` unless
    ``data_home`` or the ``SCIKIT_LEARN_DATA`` environment variable says
    otherwise) and creates the folder when missing.
    """
    from sklearn.datasets import get_data_home as _sklearn_get_data_home

    return Path(_sklearn_get_data_home(data_home=data_home))


def as_selection(values, name):
    """``values`` (a loader's selection: ``emotions``, ``actors``,
    ``sessions``) as a list; a bare string or number, which ``list`` would
    split or refuse, is a ``TypeError`` that shows the list to pass."""
    if isinstance(values, (str, numbers.Number)):
        raise TypeError(
            f"{name} must be an iterable, got {type(values).__name__} "
            f"{values!r}; wrap it in a list: {name}=[{values!r}]."
        )
    return list(values)


def check_sr(sr):
    """Validate a target sample rate, returning it as an int."""
    return check_integer(sr, "sr", low=1, reason="a sample rate in Hz")


def decode_files(paths, *, sr):
    """Decode every file to a mono float32 waveform at ``sr`` Hz."""
    from .._audio import load_audio

    return [load_audio(p, sr=sr) for p in paths]


def as_str_array(values):
    """A 1-D array of ``str``, even when ``values`` is empty."""
    return np.asarray(list(values), dtype=str)


def is_hidden(path):
    """Dot files, such as macOS ``._name`` resource forks, are never data."""
    return Path(path).name.startswith(".")


def check_not_broken_link(path):
    """Raise when ``path`` is a symbolic link to nothing (or to itself): a
    clip that would otherwise be skipped without a word."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise ValueError(
            f"{str(path)!r} is a broken or circular symbolic link. Point it at "
            "an audio file, or remove it."
        )


class DownloadError(OSError):
    """A download failed or gave corrupt data; nothing was kept."""


_RETRY = "Nothing was kept; run the fetcher again to retry the download."

# A download stops when it goes past the archive's published size by this
# much, or when it has taken longer than DOWNLOAD_DEADLINE seconds in all.
SIZE_MARGIN = 2**20
DOWNLOAD_DEADLINE = 3600.0


def _bounded_downloader(*, timeout, max_bytes, deadline, headers, progressbar):
    """A pooch downloader (``download(url, output_file, pooch)``) that stops
    past ``max_bytes`` or after ``deadline`` (a :func:`time.monotonic` time).

    pooch's own :class:`pooch.HTTPDownloader` reads fixed-size chunks, and a
    server that sends a byte now and then keeps such a read going forever (the
    timeout is per socket read); here each read returns what has arrived, so
    the deadline is checked at least every ``timeout`` seconds.
    """
    import requests
    from tqdm.auto import tqdm

    def download(url, output_file, pooch):
        with requests.get(url, stream=True, timeout=timeout, headers=headers) as r:
            r.raise_for_status()
            total = int(r.headers.get("content-length", 0)) or None
            chunks = _raw_chunks(r.raw.read1)  # urllib3 >= 2.2
            with (
                open(output_file, "w+b") as f,
                tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    disable=not progressbar,
                    file=sys.stderr,
                ) as bar,
            ):
                written = 0
                for chunk in chunks:
                    written += len(chunk)
                    if max_bytes is not None and written > max_bytes:
                        raise DownloadError(
                            f"more than {max_bytes} bytes came, past the "
                            "archive's published size"
                        )
                    if time.monotonic() > deadline:
                        raise DownloadError(
                            f"it took more than {DOWNLOAD_DEADLINE:.0f} s (the "
                            "server is too slow, or never ends the body)"
                        )
                    f.write(chunk)
                    bar.update(len(chunk))

    return download


def _raw_chunks(read1):
    """What has arrived, read by read, with urllib3's errors turned into the
    requests errors that ``Response.iter_content`` raises."""
    import requests
    import urllib3

    while True:
        try:
            chunk = read1(2**16, decode_content=True)
        except urllib3.exceptions.ProtocolError as exc:  # the body was cut
            raise requests.exceptions.ChunkedEncodingError(exc) from exc
        except urllib3.exceptions.HTTPError as exc:  # a read timed out, say
            raise requests.exceptions.ConnectionError(exc) from exc
        if not chunk:
            return
        yield chunk


def download(remote, dirname, *, verbose=1, timeout=60):
    """Download ``remote`` into a verified file in ``dirname``, with pooch.

    :func:`pooch.retrieve` streams the body to a temporary file beside its
    destination, checks its checksum and only then moves it into place, so a
    failed, interrupted or corrupt download leaves nothing behind. The body
    may not exceed ``remote.size`` by more than ``SIZE_MARGIN`` bytes, nor
    take more than ``DOWNLOAD_DEADLINE`` seconds in all (plus one read's
    ``timeout``). Returns the path of the archive (a hidden file); the caller
    removes it. Failures raise a :class:`DownloadError` (an :class:`OSError`)
    that says what happened.
    """
    import logging

    import pooch
    import requests

    from .. import __version__

    if verbose:
        print(f"Downloading {remote.url} to {dirname}", file=sys.stderr)
    downloader = _bounded_downloader(
        timeout=timeout,
        max_bytes=None if remote.size is None else remote.size + SIZE_MARGIN,
        deadline=time.monotonic() + DOWNLOAD_DEADLINE,
        headers={"User-Agent": f"sklearn-tser/{__version__} (pooch)"},
        progressbar=bool(verbose),
    )
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)  # our own message says what is downloaded
    try:
        path = pooch.retrieve(
            remote.url,
            known_hash=f"{remote.checksum_algorithm}:{remote.checksum}",
            fname=f".{remote.filename}.part",
            path=dirname,
            downloader=downloader,
        )
    except ValueError as exc:  # pooch's checksum mismatch
        raise DownloadError(
            f"The download of {remote.url} is corrupt: its "
            f"{remote.checksum_algorithm} checksum does not match the published "
            f"{remote.checksum} ({exc}). {_RETRY}"
        ) from exc
    except DownloadError as exc:
        raise DownloadError(
            f"The download of {remote.url} was stopped: {exc}. {_RETRY}"
        ) from exc
    except requests.exceptions.ChunkedEncodingError as exc:
        raise DownloadError(
            f"The download of {remote.url} is incomplete: the connection was "
            f"interrupted ({exc}). {_RETRY}"
        ) from exc
    except (requests.exceptions.RequestException, OSError) as exc:
        raise DownloadError(
            f"The download of {remote.url} failed: {exc}. {_RETRY}"
        ) from exc
    finally:
        logger.setLevel(level)
    return Path(path)


def _safe_extract_zip(archive, target):
    """Extract ``archive`` into ``target``, refusing members that escape it."""
    target = Path(target).resolve()
    with zipfile.ZipFile(archive) as zf:
        for member in zf.namelist():
            if not (target / member).resolve().is_relative_to(target):
                raise OSError(
                    f"Refusing to extract {archive}: member {member!r} would be "
                    f"written outside {target}."
                )
        zf.extractall(target)


def _publish(tmp_root, destination):
    """Mark ``tmp_root`` complete and move it to ``destination`` atomically."""
    (tmp_root / COMPLETE_MARKER).touch()
    try:
        os.replace(tmp_root, destination)
    except OSError:
        if not (destination / COMPLETE_MARKER).is_file():
            raise
        # Another process finished the same fetch first: keep its copy.


def fetch_archive(remote, destination, *, find_root, verbose=1):
    """Download, verify and unpack ``remote`` into the folder ``destination``.

    Parameters
    ----------
    remote : RemoteFileMetadata
        The archive to fetch (a ZIP file).
    destination : pathlib.Path
        Folder to create; it must not exist yet.
    find_root : callable
        Given the temporary extraction folder, returns the folder inside it whose
        content becomes ``destination`` (archives often wrap their data in one
        top-level folder).
    verbose : int, default=1
        Print progress to stderr when > 0.
    """
    parent = destination.parent
    parent.mkdir(parents=True, exist_ok=True)
    archive = download(remote, parent, verbose=verbose)
    tmp_dir = Path(tempfile.mkdtemp(dir=parent, prefix=f".{destination.name}."))
    try:
        if verbose:
            print(f"Extracting {remote.filename} to {destination}", file=sys.stderr)
        _safe_extract_zip(archive, tmp_dir)
        _publish(find_root(tmp_dir), destination)
    except zipfile.BadZipFile as exc:
        raise DownloadError(
            f"{remote.filename} downloaded from {remote.url} is not a valid ZIP "
            f"archive ({exc}). Nothing was kept; retry the fetch."
        ) from exc
    finally:
        archive.unlink(missing_ok=True)
        shutil.rmtree(tmp_dir, ignore_errors=True)
