"""SpectrogramStore: log-mel spectrograms on disk, read a clip at a time.

A store is a folder of two files:

- ``spectrograms.f32``: every clip's frames, clip after clip, as little-endian
  float32 rows of ``n_mels`` values (a clip of ``n`` frames is ``n`` rows);
- ``index.json``: the format name and version, ``n_mels``, the number of
  frames of every clip, and the parameters of the transformer that wrote it.

Clips are read with positioned reads of the file (``os.pread``), not a memory
map: the operating system caches the file, and the pages it caches do not
count in the process's memory, so reading a store of any size keeps the
process's memory flat. A store pickles as its folder and the clips it serves,
never its data, so that sending one to a process (joblib, Dask) is cheap when
the folder is on storage that process sees.

:meth:`LogMelTransformer.transform_to_store` writes stores
(:func:`write_store` is its machinery); the classifier reads them like any
other spectrograms.
"""

import json
import numbers
import os
import threading
import uuid
from pathlib import Path

import numpy as np

from ._validation import MAX_MEL_BANDS

__all__ = ["SpectrogramStore", "StoreWriter"]

FORMAT = "sklearn-tser spectrogram store"
VERSION = 1
DATA_FILE = "spectrograms.f32"
INDEX_FILE = "index.json"
# index.json is read whole: a bound on its size (about 10 million clips).
MAX_INDEX_BYTES = 128 * 2**20
_DTYPE = np.dtype("<f4")


class SpectrogramStore:
    """Log-mel spectrograms in a folder on disk, read a clip at a time.

    Pass a store wherever spectrograms are accepted (``fit``, ``predict``,
    ``cross_val_score``, ``GridSearchCV``): the classifier reads its batches
    from the disk as it goes, so memory does not grow with the corpus. Write
    one with :meth:`LogMelTransformer.transform_to_store`.

    Indexing with an integer reads that clip; indexing with a slice, a list
    or array of integers, or a boolean mask gives a store of those clips
    (reading nothing), which is how scikit-learn's cross-validation splits
    it.

    Parameters
    ----------
    path : str or os.PathLike
        The store's folder.

    Attributes
    ----------
    path : pathlib.Path
        The store's folder.
    n_mels : int
        Mel bands of every clip.
    lengths : ndarray of shape (n_clips,), dtype int64
        Frames of each clip served.
    shape : tuple of (int, int, int)
        ``(n_clips, n_mels, longest clip's frames)``: the shape the clips
        would have as a NaN-padded array.
    log_mel_params : dict
        Parameters of the :class:`LogMelTransformer` that wrote the store.

    Raises
    ------
    FileNotFoundError
        If ``path`` holds no store, or an unfinished one.
    ValueError
        If its index is malformed, or the data file's size does not match it.

    See Also
    --------
    LogMelTransformer.transform_to_store : Writes a store.

    Notes
    -----
    Clips are read with positioned reads, not a memory map, so that the file's
    pages do not count in the process's memory; a store is safe to read from
    several threads and processes at once. Pickling a store (joblib, Dask)
    sends its folder and clip indices, not its data: the folder must be on
    storage the receiving process can read.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from sklearn_tser import LogMelTransformer, SpectrogramStore
    >>> rng = np.random.default_rng(0)
    >>> clips = [0.1 * rng.standard_normal(16000), 0.1 * rng.standard_normal(8000)]
    >>> folder = tempfile.TemporaryDirectory()
    >>> store = LogMelTransformer(n_mels=40).transform_to_store(
    ...     clips, folder.name, verbose=0)
    >>> len(store), store.lengths
    (2, array([101,  51]))
    >>> store[1].shape
    (40, 51)
    >>> SpectrogramStore(folder.name)[[1]].lengths
    array([51])
    >>> folder.cleanup()
    """

    def __init__(self, path):
        path = Path(os.path.abspath(path))  # the same folder from any directory
        index = _read_index(path)
        self.path = path
        self.n_mels = index["n_mels"]
        self.log_mel_params = index["log_mel"]
        all_lengths = np.asarray(index["lengths"], dtype=np.int64)
        self._id = index["id"]
        self._offsets = np.concatenate([[0], np.cumsum(all_lengths)])
        self._indices = np.arange(len(all_lengths))
        self.lengths = all_lengths
        self._file = _DataFile(path, self._id, int(self._offsets[-1]) * self.n_mels)

    # ------------------------------------------------------------ clips

    @property
    def shape(self):
        longest = int(self.lengths.max()) if len(self) else 0
        return (len(self), self.n_mels, longest)

    def __len__(self):
        return len(self._indices)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, key):
        if isinstance(key, tuple):  # scikit-learn's X[indices, ...]
            if len(key) != 2 or key[1] is not Ellipsis:
                raise IndexError(
                    f"A SpectrogramStore is indexed by clips only, got {key!r}; "
                    "read a clip (store[i]) and slice the array it returns."
                )
            key = key[0]
        if isinstance(key, numbers.Integral) and not isinstance(key, bool):
            i = int(key)
            if not -len(self) <= i < len(self):
                raise IndexError(
                    f"Clip {i} is out of range for a store of {len(self)} clips."
                )
            return self._read(int(self._indices[i]))
        if isinstance(key, slice):
            indices = self._indices[key]
        else:
            key = np.asarray(key)
            if key.dtype == bool and key.shape != (len(self),):
                raise IndexError(
                    f"A boolean mask of shape {key.shape} cannot select from "
                    f"a store of {len(self)} clips."
                )
            if key.dtype != bool and key.dtype.kind not in "iu" and key.size:
                raise IndexError(
                    f"A store is indexed by integers, slices or boolean masks, "
                    f"got an array of dtype {key.dtype}."
                )
            indices = self._indices[key if key.size else key.astype(np.int64)]
        subset = object.__new__(type(self))
        subset.__dict__.update(self.__dict__)
        subset._indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        subset.lengths = np.diff(self._offsets)[subset._indices]
        return subset

    def _read(self, i):
        """Stored clip ``i``: a new array of shape (n_mels, n_frames)."""
        first, stop = self._offsets[i], self._offsets[i + 1]
        rows = self._file.read(
            int(first) * self.n_mels * _DTYPE.itemsize,
            int(stop - first) * self.n_mels * _DTYPE.itemsize,
        )
        frames = np.frombuffer(rows, dtype=_DTYPE).reshape(-1, self.n_mels)
        return np.ascontiguousarray(frames.T, dtype=np.float32)  # (n_mels, n)

    def close(self):
        """Close the data file (shared with the stores indexed from this one);
        a later read opens it again."""
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # ------------------------------------------------------------ pickling

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._file = _DataFile(
            self.path, self._id, int(self._offsets[-1]) * self.n_mels
        )

    def __repr__(self):
        return (
            f"{type(self).__name__}({str(self.path)!r}) with {len(self)} clips "
            f"of {self.n_mels} mel bands"
        )


class _DataFile:
    """The data file of a store, read with positioned reads. It is opened at
    the first read (after unpickling, in the process that reads it), after
    checking that the folder still holds the store it was indexed from (same
    id, same size), so that a rewritten or moved store is refused rather than
    read wrong."""

    def __init__(self, folder, store_id, n_values):
        self.folder, self.store_id, self.n_values = folder, store_id, n_values
        self._fd = None
        self._lock = threading.Lock()

    def _open(self):
        try:
            index = _read_index(self.folder)
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"{exc} A store travels as its folder's path: the folder must "
                "be readable at that path from every process that reads it."
            ) from exc
        if index["id"] != self.store_id:
            raise ValueError(
                f"The store in {str(self.folder)!r} was written again after this "
                "one was opened; open it again: SpectrogramStore(path)."
            )
        fd = os.open(self.folder / DATA_FILE, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        size = os.fstat(fd).st_size
        if size != self.n_values * _DTYPE.itemsize:
            os.close(fd)
            raise ValueError(
                f"The store {str(self.folder)!r} is damaged: {DATA_FILE} holds "
                f"{size} bytes, but its index describes "
                f"{self.n_values * _DTYPE.itemsize}. Write it again."
            )
        return fd

    def read(self, offset, size):
        with self._lock:
            if self._fd is None:
                self._fd = self._open()
            fd = self._fd
        if hasattr(os, "pread"):
            data = os.pread(fd, size, offset)
        else:  # Windows: no pread; seek and read under the lock
            with self._lock:
                os.lseek(fd, offset, os.SEEK_SET)
                data = os.read(fd, size)
        if len(data) != size:
            raise ValueError(
                f"{str(self.folder / DATA_FILE)!r} ended early: the store was "
                "changed or truncated while in use. Write it again."
            )
        return data

    def close(self):
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __del__(self):
        if self._fd is not None:
            os.close(self._fd)


def _read_index(path):
    """The validated index of the store in ``path``."""
    index_file, data_file = path / INDEX_FILE, path / DATA_FILE
    if not index_file.is_file():
        what = (
            "an unfinished store (its writing was interrupted): write it again"
            if data_file.is_file() or (path / (DATA_FILE + ".tmp")).is_file()
            else "no spectrogram store: write one with "
            "LogMelTransformer().transform_to_store(X, path)"
        )
        raise FileNotFoundError(f"{str(path)!r} holds {what}.")
    if not data_file.is_file():
        raise FileNotFoundError(
            f"The store {str(path)!r} has no {DATA_FILE}; write it again."
        )
    if index_file.stat().st_size > MAX_INDEX_BYTES:
        raise ValueError(
            f"{str(index_file)!r} is larger than {MAX_INDEX_BYTES} bytes; it is "
            "not the index of a spectrogram store."
        )
    with open(index_file, "rb") as f:
        raw = f.read(MAX_INDEX_BYTES + 1)
    try:
        index = json.loads(raw)
    except ValueError as exc:
        raise ValueError(
            f"{str(index_file)!r} is not valid JSON ({exc}); write the store again."
        ) from exc
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise ValueError(
            f"{str(index_file)!r} is not the index of a spectrogram store."
        )
    if index.get("version") != VERSION:
        raise ValueError(
            f"The store {str(path)!r} has format version {index.get('version')!r}; "
            f"this sklearn-tser reads version {VERSION}. Write it again."
        )
    n_mels, lengths = index.get("n_mels"), index.get("lengths")
    if not (_is_int(n_mels) and 1 <= n_mels <= MAX_MEL_BANDS):
        raise ValueError(
            f"The store {str(path)!r} has n_mels={n_mels!r}; expected an integer "
            f"from 1 to {MAX_MEL_BANDS}."
        )
    if not (isinstance(lengths, list) and all(_is_int(n) and n >= 1 for n in lengths)):
        raise ValueError(
            f"The store {str(path)!r} has malformed clip lengths; expected a list "
            "of positive integers."
        )
    if not isinstance(index.get("id"), str):
        raise ValueError(f"The store {str(path)!r} has no id; write it again.")
    expected = sum(lengths) * n_mels * _DTYPE.itemsize
    size = data_file.stat().st_size
    if size != expected:
        raise ValueError(
            f"The store {str(path)!r} is damaged: {DATA_FILE} holds {size} "
            f"bytes, but its index describes {expected}. Write it again."
        )
    if not isinstance(index.get("log_mel"), dict):
        index["log_mel"] = {}
    return index


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class StoreWriter:
    """Write a store clip after clip; :meth:`close` makes it readable.

    The data go to a temporary file, moved into place by :meth:`close`, and
    the index is written last, with a new id: a store whose writing was
    interrupted is refused when opened rather than read short, and stores
    opened before a rewrite refuse to read the new data as theirs.

    Parameters
    ----------
    path : str or os.PathLike
        Folder to write; created if missing.
    n_mels : int
        Mel bands of the clips.
    log_mel_params : dict
        Parameters recorded in the index (NumPy scalars are written as
        numbers).
    overwrite : bool, default=False
        Replace a store already in ``path``. A folder that holds anything but
        a store is never written into.
    """

    def __init__(self, path, *, n_mels, log_mel_params, overwrite=False):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(
                f"{str(self.path)!r} is a file; give a folder for the store."
            )
        if self.path.is_dir():
            content = {p.name for p in self.path.iterdir()}
            if content and not overwrite:
                raise FileExistsError(
                    f"{str(self.path)!r} is not empty; choose a new folder, or pass "
                    "overwrite=True to replace the store in it."
                )
            foreign = sorted(content - set(_OWN_FILES))
            if foreign:
                raise FileExistsError(
                    f"{str(self.path)!r} holds files that are not a store's "
                    f"({foreign[:3]}); choose a new or empty folder."
                )
        self._index = {
            "format": FORMAT,
            "version": VERSION,
            "id": uuid.uuid4().hex,
            "n_mels": int(n_mels),
            "log_mel": json.loads(json.dumps(log_mel_params, default=_plain)),
            "lengths": [],
        }
        self.path.mkdir(parents=True, exist_ok=True)
        self._data = open(self.path / (DATA_FILE + ".tmp"), "wb")  # noqa: SIM115

    def append(self, spectrograms):
        """Write clips, each an array of shape (n_mels, n_frames_i)."""
        for S in spectrograms:
            self._data.write(np.ascontiguousarray(S.T, dtype=_DTYPE).tobytes())
            self._index["lengths"].append(int(S.shape[1]))

    def close(self):
        """Move the data into place, then write the index; returns the store."""
        self._data.close()
        (self.path / INDEX_FILE).unlink(missing_ok=True)
        os.replace(self.path / (DATA_FILE + ".tmp"), self.path / DATA_FILE)
        tmp = self.path / (INDEX_FILE + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self._index, f)
        os.replace(tmp, self.path / INDEX_FILE)
        return SpectrogramStore(self.path)

    def abort(self):
        """Stop writing; the temporary files are removed, and a store that was
        in the folder stays as it was."""
        self._data.close()
        for name in (DATA_FILE + ".tmp", INDEX_FILE + ".tmp"):
            (self.path / name).unlink(missing_ok=True)


# What a store's folder may hold.
_OWN_FILES = (DATA_FILE, INDEX_FILE, DATA_FILE + ".tmp", INDEX_FILE + ".tmp")


def _plain(value):
    """JSON form of a NumPy scalar or array in the recorded parameters."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} {value!r} cannot be written to JSON.")
