"""Validation of NaN-padded spectrogram batches, the classifier's input."""

import numpy as np

__all__ = ["check_spectrograms"]


def _as_3d(X):
    """Stack X into a float array (n_clips, n_mels, n_frames), NaN-padding ragged
    lists of 2-D spectrograms."""
    if isinstance(X, np.ndarray) and X.dtype != object:
        arr = X
    else:
        items = list(X)
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
        else:
            arr = np.asarray(items) if items else np.empty((0, 0))
    return _numeric(arr, "X")


def _numeric(arr, where):
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float32)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{where} holds non-numeric values; expected log-mel spectrograms "
                "such as the output of LogMelTransformer."
            ) from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{where} has dtype {arr.dtype}; expected numeric spectrograms such as "
            "the output of LogMelTransformer."
        )
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
        For non-numeric input.
    ValueError
        For empty input, a wrong number of dimensions or of mel bands, infinite
        values, NaN anywhere but in trailing padding frames, or a clip with no
        valid frame. The message names the first offending clip.
    """
    arr = _as_3d(X)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(
            f"{estimator} expects spectrograms of shape (n_clips, n_mels, n_frames) "
            f"(or (n_clips, n_features)), got an array of shape {arr.shape}. "
            "Put LogMelTransformer before it in a Pipeline to go from audio."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{estimator} got 0 clips; at least one is required.")
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        raise ValueError(f"{estimator} got empty spectrograms of shape {arr.shape}.")
    if n_mels is not None and arr.shape[1] != n_mels:
        raise ValueError(
            f"X has {arr.shape[1]} mel bands (features) per frame, but "
            f"{estimator} was fitted with {n_mels}. Use the same LogMelTransformer "
            "settings (n_mels) at fit and predict time."
        )
    arr = np.asarray(arr, dtype=np.float32)
    nan = np.isnan(arr)
    if np.isinf(arr).any():
        i = int(np.flatnonzero(np.isinf(arr).any(axis=(1, 2)))[0])
        raise ValueError(
            f"Clip {i} of X holds infinite values; spectrograms must be finite "
            "(NaN is allowed only as padding after a clip's last frame)."
        )
    lengths = np.zeros(arr.shape[0], dtype=np.int64)
    if nan.any():
        frame_pad = nan.all(axis=1)  # (n, T)
        partial = nan.any(axis=1) & ~frame_pad
        trailing = np.flip(np.cumprod(np.flip(frame_pad, axis=1), axis=1), axis=1)
        lengths[:] = arr.shape[2] - trailing.sum(axis=1)
        inner = frame_pad & ~trailing.astype(bool)
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
