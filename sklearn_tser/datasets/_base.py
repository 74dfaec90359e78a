"""Shared helpers of the dataset loaders: data home, checksums, safe download.

The download path never leaves half-written data behind: the archive is streamed
to a temporary file next to its destination, its size and checksum are verified,
it is extracted into a temporary directory, and only then is the result moved
into place with :func:`os.replace`, together with a marker file that records a
complete fetch.
"""

import hashlib
import numbers
import os
import shutil
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
COMPLETE_MARKER = ".sklearn_tser_fetch_complete"
_CHUNK_SIZE = 1 << 16


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
        Hash algorithm of ``checksum`` (any name :func:`hashlib.new` knows).
    size : int or None, default=None
        Size of the archive in bytes, checked when given.
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


def file_checksum(path, *, algorithm="sha256"):
    """Return the hexadecimal digest of the file at ``path``."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sr(sr):
    """Validate a target sample rate, returning it as an int."""
    if isinstance(sr, bool) or not isinstance(sr, numbers.Integral) or sr <= 0:
        raise ValueError(f"sr must be a positive integer (Hz), got {sr!r}.")
    return int(sr)


def decode_files(paths, *, sr):
    """Decode every file with :func:`sklearn_tser._audio.load_audio`."""
    from .._audio import load_audio

    return [load_audio(p, sr=sr) for p in paths]


def as_str_array(values):
    """A 1-D array of ``str``, even when ``values`` is empty."""
    return np.asarray(list(values), dtype=str)


def is_hidden(path):
    """Dot files, such as macOS ``._name`` resource forks, are never data."""
    return Path(path).name.startswith(".")


class _Progress:
    """A one-line download progress report on stderr."""

    def __init__(self, total, *, verbose):
        self.total, self.verbose, self.done, self._shown = total, verbose, 0, -1

    def update(self, n_bytes):
        self.done += n_bytes
        step = self.done * 20 // self.total if self.total else self.done >> 23
        if self.verbose and step != self._shown:
            self._shown = step
            total = f"/{self.total / 1e6:.1f}" if self.total else ""
            print(f"\r  {self.done / 1e6:.1f}{total} MB", end="", file=sys.stderr)

    def close(self):
        if self.verbose:
            print(file=sys.stderr)


def _stream_to(response, out, digest, progress):
    """Copy the response body to ``out``; return the number of bytes."""
    n_bytes = 0
    for block in iter(lambda: response.read(_CHUNK_SIZE), b""):
        out.write(block)
        digest.update(block)
        n_bytes += len(block)
        progress.update(len(block))
    return n_bytes


class DownloadError(OSError):
    """A download failed or gave corrupt data; nothing was kept."""


_RETRY = "Nothing was kept; run the fetcher again to retry the download."


def _check_download(remote, n_bytes, content_length, digest):
    """Raise DownloadError when the downloaded bytes are incomplete or corrupt."""
    for expected in (content_length, remote.size):
        if expected is not None and n_bytes != expected:
            raise DownloadError(
                f"The download of {remote.url} is incomplete: got {n_bytes} bytes, "
                f"expected {expected} (the connection was interrupted or the "
                f"remote file changed). {_RETRY}"
            )
    if digest.hexdigest() != remote.checksum.lower():
        raise DownloadError(
            f"The download of {remote.url} is corrupt: its "
            f"{remote.checksum_algorithm} checksum is {digest.hexdigest()}, "
            f"expected {remote.checksum}. {_RETRY}"
        )


def _user_agent():
    from .. import __version__

    return {"User-Agent": f"sklearn-tser/{__version__} (Python urllib)"}


def _download_into(remote, fd, *, verbose, timeout):
    """Stream ``remote`` into the open file descriptor ``fd`` and verify it."""
    request = urllib.request.Request(remote.url, headers=_user_agent())
    digest = hashlib.new(remote.checksum_algorithm)
    with (
        os.fdopen(fd, "wb") as out,
        urllib.request.urlopen(request, timeout=timeout) as response,
    ):
        length = response.headers.get("Content-Length")
        content_length = int(length) if length else None
        progress = _Progress(content_length or remote.size, verbose=verbose)
        n_bytes = _stream_to(response, out, digest, progress)
        progress.close()
    _check_download(remote, n_bytes, content_length, digest)


def download(remote, dirname, *, verbose=1, timeout=60):
    """Download ``remote`` into a verified temporary file in ``dirname``.

    Returns the path of that file; the caller removes it. On any failure the
    partial file is deleted and a :class:`DownloadError` (an :class:`OSError`)
    says what happened.
    """
    if verbose:
        print(f"Downloading {remote.url} to {dirname}", file=sys.stderr)
    fd, tmp_name = tempfile.mkstemp(
        dir=dirname, prefix=f".{remote.filename}.", suffix=".part"
    )
    try:
        _download_into(remote, fd, verbose=verbose, timeout=timeout)
    except BaseException as exc:
        Path(tmp_name).unlink(missing_ok=True)
        if isinstance(exc, DownloadError) or not isinstance(exc, Exception):
            raise
        raise DownloadError(
            f"The download of {remote.url} failed: {exc}. {_RETRY}"
        ) from exc
    return Path(tmp_name)


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
