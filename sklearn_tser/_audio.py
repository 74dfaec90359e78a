"""Audio input: decoding, resampling, mono downmix and per-clip validation.

Every estimator and loader of sklearn-tser reads audio through :func:`check_audio`
(many clips) or :func:`load_audio` (one file), so the rules for what counts as a
valid clip, and the error messages for what does not, live in one place.

A collection of clips ``X`` may be

- a sequence (list, tuple, 1-D object array, pandas Series) whose items are each
  either a 1-D array of samples at the target rate or a path (``str`` or
  :class:`os.PathLike`) to an audio file;
- a 2-D array ``(n_clips, n_samples)`` of equal-length clips.

Files (WAV, FLAC, OGG and anything else libsndfile reads) are decoded to float,
downmixed to mono by averaging the channels and resampled to the target rate with
the soxr high-quality resampler (through :func:`librosa.resample`).

Integer arrays are taken as PCM and scaled to ``[-1, 1)`` by their full range
(``int16`` is divided by 32768), as soundfile and librosa do when decoding.
"""

import numbers
import os
import warnings
from pathlib import Path

import numpy as np

from ._validation import as_real_numbers
from ._warnings import user_stacklevel
from .exceptions import AudioFileNotFoundError

__all__ = [
    "check_audio",
    "clip_names",
    "clip_statistics",
    "decode_clips",
    "load_audio",
    "warn_on_odd_clips",
    "warn_on_odd_statistics",
]

# warn_on_odd_clips: peaks above this are far outside [-1, 1]; peaks below
# this are silence.
LOUD_PEAK = 4.0
SILENT_PEAK = 1e-5
# A 2-D X of at most this many columns, and more rows, looks like one
# recording of (samples, channels).
MAX_CHANNELS = 8

_PATH_TYPES = (str, os.PathLike)


def load_audio(path, *, sr=16000):
    """Decode one audio file to a mono float32 waveform at ``sr`` Hz.

    Parameters
    ----------
    path : str or os.PathLike
        Audio file in any format libsndfile reads (WAV, FLAC, OGG, ...), any sample
        rate, mono or multichannel.
    sr : int > 0, default=16000
        Target sample rate in Hz; the file is resampled when its rate differs.

    Returns
    -------
    y : ndarray of shape (n_samples,), dtype float32
        The waveform, channels averaged.

    Raises
    ------
    FileNotFoundError
        If the file does not exist (the exception is also a ``ValueError``).
    ValueError
        If the file is empty or cannot be decoded, or decodes to no samples.
    """
    import soundfile as sf

    path = _check_file(path)
    try:
        data, file_sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises its own error types
        raise ValueError(
            f"Could not decode audio file {str(path)!r}: {str(exc).rstrip('.')}. "
            "Supported formats are those of libsndfile (WAV, FLAC, OGG, ...); "
            "convert the file to WAV or FLAC first."
        ) from exc
    if data.shape[0] == 0:
        raise ValueError(f"Audio file {str(path)!r} holds no samples.")
    y = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if file_sr != sr:
        import librosa

        y = librosa.resample(y, orig_sr=file_sr, target_sr=sr, res_type="soxr_hq")
    return np.ascontiguousarray(y, dtype=np.float32)


def _as_float_samples(clip, where):
    """Convert one in-memory clip to a 1-D float32 array or raise."""
    if not isinstance(clip, np.ndarray):
        try:
            clip = np.asarray(clip)
        except Exception as exc:
            raise TypeError(
                f"{where} could not be read as an array of samples: {exc}"
            ) from exc
    clip = as_real_numbers(
        clip,
        where,
        expected="audio samples must be real floating-point numbers (or integer "
        "PCM): a clip is a 1-D array of samples or a path to an audio file",
        kinds="iuf",
    )
    if clip.dtype.kind in "iu":
        info = np.iinfo(clip.dtype)
        clip = (clip.astype(np.float64) - (info.max + info.min + 1) / 2) / (
            (info.max - info.min + 1) / 2
        )
    if clip.ndim != 1:
        hint = (
            " A 2-D clip looks like multichannel audio: downmix it first, e.g. "
            "clip.mean(axis=0) for (channels, samples), or clip.mean(axis=1) "
            "for (samples, channels), as soundfile.read returns it."
            if clip.ndim == 2
            else ""
        )
        raise ValueError(
            f"{where} has shape {clip.shape}; each clip must be a 1-D array of "
            f"samples.{hint}"
        )
    return clip.astype(np.float32, copy=False)


def _check_clip(y, where, check_finite=True):
    if y.size == 0:
        raise ValueError(f"{where} is empty (0 samples).")
    if not check_finite:
        return y
    finite = np.isfinite(y)
    if not finite.all():
        n_bad = int(y.size - finite.sum())
        first = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"{where} holds {n_bad} NaN or infinite samples (first at sample "
            f"{first}); audio must be finite everywhere."
        )
    return y


def _is_sparse(X):
    from scipy import sparse

    return sparse.issparse(X)


def _check_file(path, where=None):
    """Check that an audio file exists and is not empty, without decoding it.

    ``where`` (e.g. ``"Clip 3"``) prefixes the messages.
    """
    path = Path(path)
    prefix = f"{where}: " if where else ""
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise AudioFileNotFoundError(
            f"{prefix}Audio file {str(path)!r} {what}. Check the path, or pass "
            "the waveform itself as a 1-D float array."
        )
    if path.stat().st_size == 0:
        raise ValueError(f"{prefix}Audio file {str(path)!r} is empty (0 bytes).")
    return path


def check_audio(X, *, sr=16000, decode=True, check_finite=True):
    """Validate a collection of clips and return a list of mono float32 waveforms.

    Parameters
    ----------
    X : sequence of (array-like of shape (n_samples,) or path), or ndarray of \
shape (n_clips, n_samples)
        The clips; see the module docstring for every accepted form.
    sr : int > 0, default=16000
        Sample rate of in-memory waveforms, and the rate files are resampled to.
    decode : bool, default=True
        If False, files are only checked to exist and to be non-empty (a cheap
        check for ``fit``), and returned as :class:`~pathlib.Path`.
    check_finite : bool, default=True
        If False, NaN and infinite samples are not looked for here: for a
        caller that checks them itself while it reads the samples, and then
        calls ``check_audio`` again for the error message.

    Returns
    -------
    clips : list of ndarray of shape (n_samples_i,), dtype float32
        One waveform per clip, in the order of ``X`` (or a ``Path`` for a file
        when ``decode=False``).

    Raises
    ------
    TypeError
        If ``X`` is a single path or string, is not a sequence, or a clip is not
        numeric.
    ValueError
        If ``X`` is empty or has 3 or more dimensions, or a clip is empty, not 1-D,
        complex, not finite, or a file is missing or cannot be decoded. The
        message names the clip index and, for files, the path.

    Examples
    --------
    >>> import numpy as np
    >>> clips = check_audio([np.zeros(800), np.ones(1600, dtype=np.int16)])
    >>> [c.shape for c in clips]
    [(800,), (1600,)]
    """
    if isinstance(X, _PATH_TYPES) or isinstance(X, bytes):
        raise TypeError(
            f"X must be a sequence of clips, got a single {type(X).__name__} "
            f"{X!r}. Wrap it in a list: [path]."
        )
    if isinstance(X, numbers.Number) or X is None:
        raise TypeError(
            f"X must be a sequence of clips (waveforms or paths), got {X!r}."
        )
    if _is_sparse(X):
        raise TypeError(
            "Sparse input is not supported: X must hold dense audio waveforms "
            "(a list of 1-D arrays or a 2-D array (n_clips, n_samples))."
        )
    if hasattr(X, "to_numpy") and not isinstance(X, np.ndarray):  # pandas
        X = X.to_numpy()
    if not isinstance(X, (np.ndarray, list, tuple)) and hasattr(X, "__array__"):
        X = np.asarray(X)  # array-likes that are not sequences
    if isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype.kind in "US":
        X = [str(path) for path in X]  # e.g. bunch.filenames: paths
    if isinstance(X, np.ndarray) and X.dtype != object:
        if X.ndim == 1:
            raise ValueError(
                f"X is a 1-D array of {X.shape[0]} numbers; pass a list of clips "
                "(e.g. [y]) or a 2-D array (n_clips, n_samples). Reshape your "
                "data with y.reshape(1, -1) if it is a single clip."
            )
        if X.ndim == 2 and X.shape[0] and X.shape[1] == 0:
            raise ValueError(
                f"X has 0 feature(s) (shape={X.shape}) while a minimum of 1 is "
                "required: every clip is empty (0 samples)."
            )
        if X.ndim != 2:
            raise ValueError(
                f"X has {X.ndim} dimensions (shape {X.shape}); expected a 2-D array "
                "(n_clips, n_samples) or a list of 1-D clips. Multichannel audio "
                "must be downmixed to mono first."
            )
        items = list(X)
    else:
        try:
            items = list(X)
        except TypeError as exc:
            raise TypeError(
                f"X must be a sequence of clips, got {type(X).__name__}."
            ) from exc
    if len(items) == 0:
        raise ValueError("X holds no clips; at least one clip is required.")
    return [
        _read_clip(item, i, sr=sr, decode=decode, check_finite=check_finite)
        for i, item in enumerate(items)
    ]


def _read_clip(item, i, *, sr, decode=True, check_finite=True):
    """Clip ``i`` (a path or samples) as checked float32 samples, or a checked
    ``Path`` when ``decode`` is False."""
    if isinstance(item, _PATH_TYPES) and not decode:
        return _check_file(item, f"Clip {i}")
    if isinstance(item, _PATH_TYPES):
        try:
            y = load_audio(item, sr=sr)
        except ValueError as exc:
            raise type(exc)(f"Clip {i}: {exc}") from exc
        return _check_clip(y, f"Clip {i} ({str(item)!r})", check_finite)
    y = _as_float_samples(item, f"Clip {i}")
    return _check_clip(y, f"Clip {i}", check_finite)


def decode_clips(items, *, sr, first=0):
    """Decode clips that :func:`check_audio` checked with ``decode=False``.

    For a caller that reads a long collection a chunk at a time: memory then
    holds one chunk's waveforms, not the collection's.

    Parameters
    ----------
    items : sequence of (Path or ndarray of shape (n_samples_i,))
        Part of what ``check_audio(X, decode=False)`` returned: files are
        decoded and checked, arrays (checked already) are returned as they
        are.
    sr : int > 0
        Sample rate files are resampled to.
    first : int, default=0
        Index in ``X`` of ``items[0]``, for the messages.

    Returns
    -------
    clips : list of ndarray of shape (n_samples_i,), dtype float32
    """
    return [  # in-memory clips were converted and checked already
        _read_clip(item, first + k, sr=sr) if isinstance(item, _PATH_TYPES) else item
        for k, item in enumerate(items)
    ]


def warn_on_channels_as_clips(X):
    """Warn when ``X`` is a 2-D array of a few columns and many rows: read as
    clips of a few samples, it looks like one recording of (samples,
    channels), as ``soundfile.read`` returns it."""
    shape = getattr(X, "shape", ())
    if len(shape) == 2 and shape[1] <= MAX_CHANNELS < shape[0]:
        warnings.warn(
            f"X has shape {shape}: it is read as {shape[0]} clips of {shape[1]} "
            "samples each. If it is one recording of (samples, channels), as "
            "soundfile.read returns it, pass [X.mean(axis=1)].",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def warn_on_odd_clips(clips, X, *, min_samples):
    """Warn about clips that are valid but probably a mistake: silent ones,
    ones shorter than ``min_samples``, and ones far outside [-1, 1] (integer
    PCM passed as floats, say). Each warning names the first clips: by path
    when ``X`` (what ``clips`` were read from) is a sequence of paths, else
    by index."""
    peaks, lengths = clip_statistics(clips)
    warn_on_odd_statistics(peaks, lengths, clip_names(X), min_samples=min_samples)


def clip_names(X):
    """The paths of ``X`` as strings when every clip is a path, else None."""
    if isinstance(X, (list, tuple)) and all(isinstance(x, _PATH_TYPES) for x in X):
        return [str(x) for x in X]
    return None


def clip_statistics(clips):
    """Peak absolute sample and length of each clip: what
    :func:`warn_on_odd_statistics` reads (kept chunk by chunk by a caller
    that does not hold every clip at once)."""
    peaks = np.array([float(np.max(np.abs(c))) for c in clips])
    return peaks, np.array([len(c) for c in clips])


def warn_on_odd_statistics(peaks, lengths, names, *, min_samples):
    """The warnings of :func:`warn_on_odd_clips`, from clip statistics;
    ``names`` (or None: clip indices) name the clips."""
    problems = [
        (
            peaks < SILENT_PEAK,
            f"silent (peak below {SILENT_PEAK:g}): their spectrograms are flat "
            "at the floor, and predictions on them mean nothing",
        ),
        (
            lengths < min_samples,
            f"shorter than {min_samples} samples (a few frames): too short to "
            "carry an emotion",
        ),
        (
            peaks > LOUD_PEAK,
            f"far outside [-1, 1] (peak above {LOUD_PEAK:g}): integer PCM given as "
            "floats? Divide by 32768 for 16-bit audio, or pass the int16 array",
        ),
    ]
    for mask, what in problems:
        if mask.any():
            index = np.flatnonzero(mask)
            shown = [f"clip {i}" if names is None else names[i] for i in index[:5]]
            shown = ", ".join(shown) + (", ..." if len(index) > 5 else "")
            warnings.warn(
                f"{len(index)} of {len(peaks)} clips are {what} ({shown}).",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
