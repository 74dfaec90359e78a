"""Validation of spectrograms, the classifier's input: NaN-padded, ragged or
stored, read clip by clip."""

import numbers
import os

import numpy as np

__all__ = [
    "Spectrograms",
    "as_real_numbers",
    "check_integer",
    "check_spectrograms",
    "n_valid_frames",
]


def check_integer(value, name, *, low, high=None, reason=None):
    """Return ``value`` as an int after checking it is an integer in range.

    Parameters
    ----------
    value : object
        The value to check; booleans are not integers here.
    name : str
        Its name, for the message.
    low : int
        Smallest value allowed.
    high : int or None, default=None
        Largest value allowed; None means no bound.
    reason : str or None, default=None
        Why the bound is there, added to the message.

    Returns
    -------
    value : int

    Raises
    ------
    ValueError
        ``"{name} must be an integer >= {low} ({reason}); got {value!r}."``, or
        ``"from {low} to {high}"`` with an upper bound.
    """
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not is_int or value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"from {low} to {high}"
        why = f" ({reason})" if reason else ""
        raise ValueError(f"{name} must be an integer {span}{why}; got {value!r}.")
    return int(value)


_PIPELINE_HINT = "Put LogMelTransformer before it in a Pipeline to go from audio."
# More mel bands than any spectrogram has: such rows are audio.
MAX_MEL_BANDS = 4096


def n_valid_frames(S):
    """Number of valid (non-padding) frames of each clip of spectrograms.

    Padding is marked by NaN in every mel bin of a frame, after the clip's last
    frame (the convention of :class:`LogMelTransformer`).

    Parameters
    ----------
    S : ndarray of shape (n_clips, n_mels, n_frames), sequence of arrays of \
shape (n_mels, n_frames_i), or SpectrogramStore
        NaN-padded log-mel spectrograms, ragged ones (each may end in NaN
        padding too), or a store (whose clips have no padding). A 2-D array
        is clips of one frame, as the classifier reads it.

    Returns
    -------
    lengths : ndarray of shape (n_clips,), dtype int64
        For each clip, the index of its first padding frame (its number of
        frames when it has none).

    Examples
    --------
    >>> import numpy as np
    >>> S = np.zeros((2, 3, 4), dtype=np.float32)
    >>> S[1, :, 2:] = np.nan
    >>> n_valid_frames(S)
    array([4, 2])
    >>> n_valid_frames([np.zeros((3, 5)), np.zeros((3, 1))])
    array([5, 1])
    """
    from ._store import SpectrogramStore

    if isinstance(S, SpectrogramStore):
        return S.lengths.copy()
    if isinstance(S, np.ndarray) and S.dtype != object:
        S = _check_dimensions(S, "n_valid_frames")  # as the classifier reads S
        return S.shape[2] - _trailing_padding(np.isnan(S).all(axis=1)).sum(axis=1)
    clips = [np.asarray(s) for s in S]
    for i, s in enumerate(clips):
        if s.ndim != 2:
            raise ValueError(
                f"n_valid_frames expects each clip of shape (n_mels, n_frames); "
                f"clip {i} has shape {s.shape}."
            )
    return np.array(
        [
            s.shape[1] - _trailing_padding(np.isnan(s).all(axis=0)[None]).sum()
            for s in clips
        ],
        dtype=np.int64,
    )


def _trailing_padding(padded):
    """Mask of the frames in the trailing run of padding frames of each clip.

    ``padded`` is a boolean (n_clips, n_frames) mask of all-NaN frames; a frame
    is trailing padding when it and every later frame are padded.
    """
    return np.flip(np.cumprod(np.flip(padded, axis=1), axis=1), axis=1).astype(bool)


def _as_source(X, estimator):
    """``X`` as what its clips are read from, without copying spectrograms: a
    real-valued ndarray (any number of dimensions, checked by the caller), a
    list of arrays of shape (n_mels, n_frames_i), or a spectrogram store."""
    from scipy import sparse

    from ._store import SpectrogramStore

    if isinstance(X, SpectrogramStore):
        return X
    if sparse.issparse(X):
        raise TypeError(
            f"Sparse input is not supported: {estimator} reads dense spectrograms "
            "of shape (n_clips, n_mels, n_frames); convert with X.toarray()."
        )
    if X is None or isinstance(X, (str, bytes, os.PathLike, numbers.Number)):
        raise TypeError(
            f"{estimator} expects spectrograms of shape (n_clips, n_mels, "
            f"n_frames), got {type(X).__name__} {X!r}."
        )
    if hasattr(X, "to_numpy") and not isinstance(X, np.ndarray):  # pandas
        X = X.to_numpy()
    if not isinstance(X, (np.ndarray, list, tuple)) and hasattr(X, "__array__"):
        X = np.asarray(X)  # array-likes that are not sequences
    if isinstance(X, np.ndarray) and X.dtype != object:
        return _numeric(X, "X")
    try:
        items = list(X)
    except TypeError as exc:
        raise TypeError(
            f"{estimator} expects spectrograms of shape (n_clips, n_mels, "
            f"n_frames), got {type(X).__name__}."
        ) from exc
    for i, s in enumerate(items):
        if isinstance(s, (str, bytes, os.PathLike)):
            raise TypeError(
                f"Clip {i} of X is a path ({str(s)!r}), but {estimator} reads "
                f"spectrograms, not audio files. {_PIPELINE_HINT}"
            )
    if items and all(np.ndim(s) == 2 for s in items):
        shapes = {np.shape(s)[0] for s in items}
        if len(shapes) != 1:
            raise ValueError(
                f"The spectrograms have different numbers of mel bands "
                f"{sorted(shapes)}; all clips must share n_mels."
            )
        return [_numeric(np.asarray(s), f"Clip {i}") for i, s in enumerate(items)]
    if items and len({np.shape(s) for s in items}) > 1:
        shapes = [np.shape(s) for s in items]
        first = next(i for i, s in enumerate(shapes) if s != shapes[0])
        audio = (
            " They look like raw audio clips."
            if all(len(s) == 1 for s in shapes)
            else ""
        )
        raise ValueError(
            f"The clips of X have different shapes (clip 0: {shapes[0]}, "
            f"clip {first}: {shapes[first]}); {estimator} expects 2-D "
            f"spectrograms (n_mels, n_frames_i) sharing n_mels.{audio} "
            f"{_PIPELINE_HINT}"
        )
    return _numeric(np.asarray(items) if items else np.empty((0, 0)), "X")


_SPECTROGRAMS = "expected log-mel spectrograms such as the output of LogMelTransformer"


def _numeric(arr, where):
    return as_real_numbers(arr, where, expected=_SPECTROGRAMS, kinds="biuf")


def as_real_numbers(arr, where, *, expected, kinds="biuf"):
    """``arr`` as an array of real numbers, or a clear error.

    The one coercion rule of the package's inputs (audio clips and
    spectrograms): object arrays are converted to float when their items are
    numbers; complex values and other dtypes are refused.

    Parameters
    ----------
    arr : ndarray
    where : str
        What ``arr`` is (``"X"``, ``"Clip 3"``), for the messages.
    expected : str
        What was expected, ending the messages.
    kinds : str, default="biuf"
        NumPy dtype kinds accepted.

    Returns
    -------
    arr : ndarray
        ``arr`` itself, or as float64 when it held objects.
    """
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{where} holds non-numeric values ({exc}); {expected}."
            ) from exc
    if arr.dtype.kind == "c":
        raise ValueError(
            f"Complex data not supported: {where} has dtype {arr.dtype}; {expected}."
        )
    if arr.dtype.kind not in kinds:
        raise TypeError(f"{where} has dtype {arr.dtype}; {expected}.")
    return arr


class Spectrograms:
    """Validated spectrograms, read clip by clip from where they are.

    What :func:`check_spectrograms` returns: the classifier reads its input
    through it, a clip (or a batch) at a time, so that neither a NaN-padded
    array, nor a list of 2-D arrays, nor a :class:`SpectrogramStore` is
    copied whole (only object arrays, and pandas objects that are not
    numeric, are converted first).

    Attributes
    ----------
    lengths : ndarray of shape (n_clips,), dtype int64
        Valid frames of each clip, at least 1.
    n_mels : int
        Mel bands of every clip.
    """

    def __init__(self, source, lengths, n_mels):
        self._source = source
        self.lengths = lengths
        self.n_mels = n_mels

    def __len__(self):
        return len(self.lengths)

    def __getitem__(self, i):
        """The valid frames of clip ``i``: an array of shape (n_mels, lengths[i])
        of the input's dtype, a view of the input where it can be."""
        if isinstance(self._source, (np.ndarray, list)):
            return self._source[i][:, : self.lengths[i]]
        return self._source[int(i)]


def check_spectrograms(X, *, n_mels=None, estimator="EmotionEmbeddingClassifier"):
    """Validate spectrograms, padded or ragged, without copying them.

    Parameters
    ----------
    X : array-like of shape (n_clips, n_mels, n_frames) or (n_clips, n_features), \
sequence of arrays of shape (n_mels, n_frames_i), or SpectrogramStore
        Spectrograms: NaN-padded after each clip's last frame (the output of
        :class:`~sklearn_tser.LogMelTransformer`), ragged (its
        ``output="ragged"``; each clip may also end in NaN padding), or on disk.
        A 2-D array is read as clips of a single frame of ``n_features`` values.
    n_mels : int or None, default=None
        Number of mel bands seen at fit time, checked when given.
    estimator : str, default="EmotionEmbeddingClassifier"
        Name used in error messages.

    Returns
    -------
    X : Spectrograms
        The clips' valid frames, clip by clip, with their lengths.

    Raises
    ------
    TypeError
        For sparse, non-numeric input, or file paths.
    ValueError
        For empty input, complex values, a wrong number of dimensions or of mel
        bands, infinite values, NaN anywhere but in trailing padding frames, or a
        clip with no valid frame. The message names the first offending clip.
    """
    from ._store import SpectrogramStore

    source = _as_source(X, estimator)
    if isinstance(source, SpectrogramStore):
        shape = (len(source), source.n_mels, 1)
    elif isinstance(source, list):
        shape = (len(source), source[0].shape[0], max(s.shape[1] for s in source))
    else:
        source = _check_dimensions(source, estimator)
        shape = source.shape
    if shape[0] == 0:
        raise ValueError(f"{estimator} got 0 clips; at least one is required.")
    if shape[1] > MAX_MEL_BANDS:
        raise ValueError(
            f"{estimator} got spectrograms of {shape[1]} mel bands, more than "
            f"the {MAX_MEL_BANDS} it supports; use fewer (LogMelTransformer's "
            "n_mels)."
        )
    if shape[1] == 0 or shape[2] == 0:
        raise ValueError(
            f"X has 0 feature(s) (shape={shape[:2]}) while a minimum of 1 is "
            f"required: {estimator} got empty spectrograms of shape {shape} "
            "(it needs at least one mel band and one frame)."
        )
    if n_mels is not None and shape[1] != n_mels:
        raise ValueError(
            f"X has {shape[1]} features, but {estimator} is expecting {n_mels} "
            f"features as input: the spectrograms have {shape[1]} mel bands "
            f"per frame, and {estimator} was fitted with {n_mels}. Use the same "
            "LogMelTransformer settings (n_mels) at fit and predict time."
        )
    lengths = np.zeros(shape[0], dtype=np.int64)
    if isinstance(source, np.ndarray):  # blocks of clips: bounded temporaries
        step = max(1, _BLOCK_VALUES // max(1, shape[1] * shape[2]))
        for first in range(0, shape[0], step):
            block = source[first : first + step]
            lengths[first : first + len(block)] = _block_lengths(block, first)
    elif isinstance(source, list):
        for i, s in enumerate(source):
            lengths[i] = _block_lengths(s[None], i)[0]
    else:  # stored: float32 clips without padding, lengths from the index
        lengths[:] = source.lengths
        for i in range(len(source)):
            if not np.isfinite(source[i]).all():
                raise ValueError(
                    f"Clip {i} of X (stored in {str(source.path)!r}) holds NaN "
                    "or infinite values; a stored clip has no padding. Write the "
                    "store again."
                )
    return Spectrograms(source, lengths, int(shape[1]))


# Values of a block of clips validated at once (float32: 4 MiB).
_BLOCK_VALUES = 2**20


def _check_dimensions(arr, estimator):
    """A numeric array as (n_clips, n_mels, n_frames), or a clear error."""
    if arr.ndim == 1:
        raise ValueError(
            f"{estimator} expects spectrograms of shape (n_clips, n_mels, n_frames) "
            f"(or (n_clips, n_features)), got a 1-D array of shape {arr.shape}. "
            "Reshape your data: X.reshape(1, -1) for a single clip of one frame. "
            f"If X is a waveform, {_PIPELINE_HINT[0].lower()}{_PIPELINE_HINT[1:]}"
        )
    if arr.ndim == 2 and arr.shape[1] > MAX_MEL_BANDS:
        raise ValueError(
            f"{estimator} got X of shape {arr.shape}: {arr.shape[1]} values per "
            "clip look like audio waveforms, not spectrograms (no log-mel "
            f"spectrogram has more than {MAX_MEL_BANDS} mel bands). "
            f"{_PIPELINE_HINT}"
        )
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(
            f"{estimator} expects spectrograms of shape (n_clips, n_mels, n_frames) "
            f"(or (n_clips, n_features)), got an array of shape {arr.shape}. "
            f"{_PIPELINE_HINT}"
        )
    return arr


def _block_lengths(block, first):
    """Valid frames of each clip of a block (k, n_mels, n_frames) of clips
    ``first``, ``first + 1``, ...; raises naming the first bad clip."""
    if block.shape[2] == 0:
        raise ValueError(f"Clip {first} of X has no valid frame (it has 0 frames).")
    with np.errstate(over="ignore"):
        block32 = np.asarray(block, dtype=np.float32)
    inf = np.isinf(block32)
    if inf.any():
        j = int(np.flatnonzero(inf.any(axis=(1, 2)))[0])
        what = "infinite values"
        if not np.isinf(block[j]).any():
            what = f"values beyond the float32 range (up to {np.nanmax(abs(block[j]))})"
        raise ValueError(
            f"Clip {first + j} of X holds {what}; spectrograms must be finite (NaN "
            "is allowed only as padding after a clip's last frame)."
        )
    nan = np.isnan(block32)
    if not nan.any():
        return np.full(len(block), block.shape[2], dtype=np.int64)
    frame_pad = nan.all(axis=1)  # (k, T)
    partial = nan.any(axis=1) & ~frame_pad
    trailing = _trailing_padding(frame_pad)
    lengths = block.shape[2] - trailing.sum(axis=1)
    bad = partial.any(axis=1) | (frame_pad & ~trailing).any(axis=1)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"Clip {first + j} of X holds NaN values inside its valid frames; NaN "
            "is allowed only as whole padding frames after a clip's last frame."
        )
    if (lengths == 0).any():
        j = int(np.flatnonzero(lengths == 0)[0])
        raise ValueError(
            f"Clip {first + j} of X has no valid frame (it is all NaN padding)."
        )
    return lengths.astype(np.int64)
