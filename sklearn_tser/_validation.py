"""Validation of NaN-padded spectrogram batches, the classifier's input."""

import numbers
import os

import numpy as np

__all__ = ["as_real_numbers", "check_integer", "check_spectrograms", "n_valid_frames"]


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
    """Number of valid (non-padding) frames of each clip of a spectrogram batch.

    Padding is marked by NaN in every mel bin of a frame, after the clip's last
    frame (the convention of :class:`LogMelTransformer`).

    Parameters
    ----------
    S : ndarray of shape (n_clips, n_mels, n_frames)
        NaN-padded log-mel spectrograms.

    Returns
    -------
    lengths : ndarray of shape (n_clips,), dtype int64
        For each clip, the index of its first padding frame (``n_frames`` when the
        clip has none).

    Examples
    --------
    >>> import numpy as np
    >>> S = np.zeros((2, 3, 4), dtype=np.float32)
    >>> S[1, :, 2:] = np.nan
    >>> n_valid_frames(S)
    array([4, 2])
    """
    S = np.asarray(S)
    return S.shape[2] - _trailing_padding(np.isnan(S).all(axis=1)).sum(axis=1)


def _trailing_padding(padded):
    """Mask of the frames in the trailing run of padding frames of each clip.

    ``padded`` is a boolean (n_clips, n_frames) mask of all-NaN frames; a frame
    is trailing padding when it and every later frame are padded.
    """
    return np.flip(np.cumprod(np.flip(padded, axis=1), axis=1), axis=1).astype(bool)


def _as_3d(X, estimator):
    """Stack X into a float array (n_clips, n_mels, n_frames), NaN-padding ragged
    lists of 2-D spectrograms."""
    from scipy import sparse

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
        arr = X
    else:
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
            width = max(np.shape(s)[1] for s in items)
            arr = np.full((len(items), shapes.pop(), width), np.nan, np.float32)
            for i, s in enumerate(items):
                s = _numeric(np.asarray(s), f"Clip {i}")
                arr[i, :, : s.shape[1]] = s
        elif items and len({np.shape(s) for s in items}) > 1:
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
        else:
            arr = np.asarray(items) if items else np.empty((0, 0))
    return _numeric(arr, "X")


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


def check_spectrograms(X, *, n_mels=None, estimator="EmotionEmbeddingClassifier"):
    """Validate NaN-padded spectrograms; return zero-padded values and lengths.

    Parameters
    ----------
    X : array-like of shape (n_clips, n_mels, n_frames) or (n_clips, n_features), \
or list of arrays of shape (n_mels, n_frames_i)
        Spectrograms, each right-padded with NaN frames after its last frame (the
        output of :class:`~sklearn_tser.LogMelTransformer`). A 2-D array is read as
        clips of a single frame of ``n_features`` values.
    n_mels : int or None, default=None
        Number of mel bands seen at fit time, checked when given.
    estimator : str, default="EmotionEmbeddingClassifier"
        Name used in error messages.

    Returns
    -------
    X : ndarray of shape (n_clips, n_mels, n_frames), dtype float32
        The spectrograms with padding frames set to 0.
    lengths : ndarray of shape (n_clips,), dtype int64
        Number of valid frames of each clip, at least 1.

    Raises
    ------
    TypeError
        For sparse, non-numeric input, or file paths.
    ValueError
        For empty input, complex values, a wrong number of dimensions or of mel
        bands, infinite values, NaN anywhere but in trailing padding frames, or a
        clip with no valid frame. The message names the first offending clip.
    """
    arr = _as_3d(X, estimator)
    if arr.ndim == 1:
        raise ValueError(
            f"{estimator} expects spectrograms of shape (n_clips, n_mels, n_frames) "
            f"(or (n_clips, n_features)), got a 1-D array of shape {arr.shape}. "
            "Reshape your data: X.reshape(1, -1) for a single clip of one frame. "
            f"If X is a waveform, {_PIPELINE_HINT[0].lower()}{_PIPELINE_HINT[1:]}"
        )
    if arr.ndim == 3 and arr.shape[1] > MAX_MEL_BANDS:
        raise ValueError(
            f"{estimator} got spectrograms of {arr.shape[1]} mel bands, more than "
            f"the {MAX_MEL_BANDS} it supports; use fewer (LogMelTransformer's "
            "n_mels)."
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
    if arr.shape[0] == 0:
        raise ValueError(f"{estimator} got 0 clips; at least one is required.")
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        raise ValueError(
            f"X has 0 feature(s) (shape={arr.shape[:2]}) while a minimum of 1 is "
            f"required: {estimator} got empty spectrograms of shape {arr.shape} "
            "(it needs at least one mel band and one frame)."
        )
    if n_mels is not None and arr.shape[1] != n_mels:
        raise ValueError(
            f"X has {arr.shape[1]} features, but {estimator} is expecting {n_mels} "
            f"features as input: the spectrograms have {arr.shape[1]} mel bands "
            f"per frame, and {estimator} was fitted with {n_mels}. Use the same "
            "LogMelTransformer settings (n_mels) at fit and predict time."
        )
    with np.errstate(over="ignore"):
        arr32 = np.asarray(arr, dtype=np.float32)
    inf = np.isinf(arr32)
    if inf.any():
        i = int(np.flatnonzero(inf.any(axis=(1, 2)))[0])
        what = "infinite values"
        if not np.isinf(arr[i]).any():
            what = f"values beyond the float32 range (up to {np.nanmax(abs(arr[i]))})"
        raise ValueError(
            f"Clip {i} of X holds {what}; spectrograms must be finite (NaN is "
            "allowed only as padding after a clip's last frame)."
        )
    arr = arr32
    nan = np.isnan(arr)
    lengths = np.zeros(arr.shape[0], dtype=np.int64)
    if nan.any():
        frame_pad = nan.all(axis=1)  # (n, T)
        partial = nan.any(axis=1) & ~frame_pad
        trailing = _trailing_padding(frame_pad)
        lengths[:] = arr.shape[2] - trailing.sum(axis=1)
        inner = frame_pad & ~trailing
        bad = partial.any(axis=1) | inner.any(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"Clip {i} of X holds NaN values inside its valid frames; NaN is "
                "allowed only as whole padding frames after a clip's last frame."
            )
        arr = np.where(nan, np.float32(0), arr)
    else:
        lengths[:] = arr.shape[2]
    if (lengths == 0).any():
        i = int(np.flatnonzero(lengths == 0)[0])
        raise ValueError(f"Clip {i} of X has no valid frame (it is all NaN padding).")
    return np.ascontiguousarray(arr), lengths
