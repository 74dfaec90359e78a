"""LogMelTransformer: audio clips to log-mel spectrograms, batched in torch."""

import dataclasses
import numbers
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions

from ._audio import (
    check_audio,
    clip_names,
    clip_statistics,
    decode_clips,
    warn_on_channels_as_clips,
    warn_on_odd_clips,
    warn_on_odd_statistics,
)
from ._device import resolve_device
from ._spectrogram import MelSettings, log_mel, pad
from ._validation import MAX_MEL_BANDS, check_integer
from ._warnings import user_stacklevel

__all__ = ["LogMelTransformer"]


# Clips of fewer frames than this are warned about.
MIN_FRAMES = 5
# Clips decoded at a time by a ragged transform.
_CHUNK_CLIPS = 256


class LogMelTransformer(TransformerMixin, BaseEstimator):
    """Log-mel spectrograms of audio clips of any length.

    A stateless transformer, like :class:`~sklearn.preprocessing.FunctionTransformer`:
    ``fit`` only validates the parameters. ``transform`` computes, for every clip,
    ``librosa.power_to_db(librosa.feature.melspectrogram(y=clip, ...), ref=1.0,
    amin=amin, top_db=top_db)`` with the same settings, but in batches: the
    frames of a chunk of clips go through one Fourier transform, a mel
    projection that skips the filter bank's zeros, and one logarithm, in torch
    on the CPU or on CUDA (``device``). See :doc:`/benchmarks` for its speed
    against a per-clip librosa loop.

    Clips keep their own length. By default (``output="padded"``) the output is
    one array as wide as the longest clip (or ``max_frames``) and every shorter
    clip is right-padded with NaN, the tslearn convention for variable-length
    series: a clip's true length survives slicing, cross-validation splits and
    pickling, and :func:`n_valid_frames` recovers it. With ``output="ragged"``
    it is a list of 2-D arrays, one per clip, each as long as its clip (the
    sktime convention for unequal-length series): memory then follows the
    audio instead of the longest clip. For a corpus larger than memory,
    :meth:`transform_to_store` writes the spectrograms to disk, chunk by
    chunk. The classifier reads all three forms.

    Parameters
    ----------
    sr : int > 0, default=16000
        Sample rate in Hz of in-memory waveforms; files are resampled to it.
    n_fft : int > 0, default=512
        FFT size in samples (32 ms at 16 kHz).
    win_length : int > 0 or None, default=400
        Window length in samples (25 ms at 16 kHz), at most ``n_fft``; the window is
        zero-padded to ``n_fft`` about its centre. ``None`` means ``n_fft``.
    hop_length : int > 0, default=160
        Hop between frames in samples (10 ms at 16 kHz).
    window : str, default="hann"
        Window name understood by :func:`scipy.signal.get_window` without
        parameters (``"kaiser"``, which needs one, is refused).
    center : bool, default=True
        Pad each clip by ``n_fft // 2`` on both sides so frame ``t`` is centred on
        sample ``t * hop_length``; a clip of ``n`` samples then has
        ``1 + n // hop_length`` frames (``1 + (n - 1) // hop_length`` for an
        odd ``n_fft``, as librosa counts them).
    pad_mode : {"constant", "reflect"}, default="constant"
        Padding used with ``center=True`` (librosa's default is ``"constant"``).
    n_mels : int in [1, 4096], default=64
        Number of mel bands. Bands narrower than an FFT bin cover none and
        hold only the floor: a warning names them, as librosa's does.
    fmin : float >= 0, default=20.0
        Lowest frequency of the mel filter bank, in Hz.
    fmax : float > 0 or None, default=None
        Highest frequency, in Hz; ``None`` means ``sr / 2``.
    power : float > 0, default=2.0
        Exponent of the magnitude spectrogram (2 for power, 1 for magnitude).
    htk : bool, default=False
        Use the HTK mel scale instead of Slaney's.
    norm : {"slaney"} or None, default="slaney"
        Normalisation of the mel filters (``librosa.filters.mel``).
    amin : float > 0, default=1e-10
        Floor of the mel energies before the logarithm.
    top_db : float > 0 or None, default=80.0
        Per clip, values more than ``top_db`` dB below the clip's maximum are raised
        to that threshold. ``None`` disables it.
    max_frames : int > 0 or None, default=None
        ``None`` keeps every clip's length. An integer gives every clip exactly
        ``max_frames`` frames: longer clips are centre-cropped, shorter ones
        NaN-padded on the right.
    batch_size : int > 0 or "auto", default="auto"
        Clips transformed together. The clips of a chunk are laid end to end in
        one signal, so a chunk costs its audio, not ``batch_size`` times its
        longest clip. An integer also bounds a chunk to about ``batch_size * 5``
        seconds of audio. ``"auto"`` packs about 2048 frames (20 s of audio at
        the default hop) on the CPU, where a chunk that fits the caches is
        fastest, and 64 clips on other devices. A clip longer than the chunk
        bound is transformed in pieces, so memory stays bounded for any number
        and length of clips, and the result does not depend on ``batch_size``.
    device : str, default="cpu"
        Torch device of the computation: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, or
        ``"auto"`` (CUDA when available). The output is always in NumPy arrays.
    output : {"padded", "ragged"}, default="padded"
        Form of the output: one NaN-padded array ``(n_clips, n_mels,
        n_frames)``, or a list of arrays ``(n_mels, n_frames_i)``. Padded is the
        default because an array is what NumPy, scikit-learn's tools and other
        libraries (tslearn) handle directly, and on corpora of similar lengths
        (RAVDESS, IEMOCAP turns) padding costs little; use ragged when lengths
        vary widely (a warning says when padding dominates the output).

    Attributes
    ----------
    n_features_in_ : int
        Set by ``fit`` from a 2-D array input only (number of samples per clip).

    See Also
    --------
    n_valid_frames : True length of each clip in the output.
    EmotionEmbeddingClassifier : Consumes these spectrograms.

    Notes
    -----
    A clip shorter than one analysis window is zero-padded: with ``center=True``
    it has the frames :meth:`n_frames` counts (``1 + n_samples // hop_length``
    for an even ``n_fft``; at least one), with
    ``center=False`` it is padded to ``n_fft`` samples and has exactly one frame.
    An all-silent clip gives the finite value ``10 * log10(amin)`` everywhere.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_tser import LogMelTransformer, n_valid_frames
    >>> rng = np.random.default_rng(0)
    >>> clips = [rng.standard_normal(16000), rng.standard_normal(8000)]
    >>> S = LogMelTransformer(n_mels=40).fit_transform(clips)
    >>> S.shape, S.dtype
    ((2, 40, 101), dtype('float32'))
    >>> n_valid_frames(S)
    array([101,  51])
    """

    _parameter_constraints = {
        "sr": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_fft": [Interval(numbers.Integral, 1, None, closed="left")],
        "win_length": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "hop_length": [Interval(numbers.Integral, 1, None, closed="left")],
        "window": [str],
        "center": ["boolean"],
        "pad_mode": [StrOptions({"constant", "reflect"})],
        "n_mels": [Interval(numbers.Integral, 1, MAX_MEL_BANDS, closed="both")],
        "fmin": [Interval(numbers.Real, 0, None, closed="left")],
        "fmax": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "power": [Interval(numbers.Real, 0, None, closed="neither")],
        "htk": ["boolean"],
        "norm": [StrOptions({"slaney"}), None],
        "amin": [Interval(numbers.Real, 0, None, closed="neither")],
        "top_db": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "max_frames": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "batch_size": [
            Interval(numbers.Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "device": [str],
        "output": [StrOptions({"padded", "ragged"})],
    }

    def __init__(
        self,
        *,
        sr=16000,
        n_fft=512,
        win_length=400,
        hop_length=160,
        window="hann",
        center=True,
        pad_mode="constant",
        n_mels=64,
        fmin=20.0,
        fmax=None,
        power=2.0,
        htk=False,
        norm="slaney",
        amin=1e-10,
        top_db=80.0,
        max_frames=None,
        batch_size="auto",
        device="cpu",
        output="padded",
    ):
        self.sr = sr
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.window = window
        self.center = center
        self.pad_mode = pad_mode
        self.n_mels = n_mels
        self.fmin = fmin
        self.fmax = fmax
        self.power = power
        self.htk = htk
        self.norm = norm
        self.amin = amin
        self.top_db = top_db
        self.max_frames = max_frames
        self.batch_size = batch_size
        self.device = device
        self.output = output

    def _check_params(self):
        """Validate the parameters; return the :class:`MelSettings` and device."""
        self._validate_params()
        if self.win_length is not None and self.win_length > self.n_fft:
            raise ValueError(
                f"win_length={self.win_length} is longer than n_fft={self.n_fft}; "
                "use win_length <= n_fft."
            )
        fmax = self.sr / 2 if self.fmax is None else self.fmax
        if fmax > self.sr / 2:
            raise ValueError(
                f"fmax={self.fmax} is above the Nyquist frequency sr/2={self.sr / 2}."
            )
        if self.fmin >= fmax:
            raise ValueError(f"fmin={self.fmin} must be below fmax={fmax}.")
        params = self.get_params()
        del params["device"]
        settings = MelSettings(**params)
        try:  # the filter bank and the window, as transform will make them
            fbank, _ = settings.filters()
        except ValueError as error:  # only the window's name can be wrong here
            raise ValueError(
                f"window={self.window!r} is not a window scipy.signal.get_window "
                f"knows without parameters ({error}); use e.g. 'hann' or 'hamming'."
            ) from None
        empty = np.flatnonzero(~(fbank > 0).any(axis=1))
        if empty.size:
            warnings.warn(
                f"{empty.size} of {self.n_mels} mel bands (the first: band "
                f"{empty[0]}) cover no FFT bin between fmin={self.fmin} and "
                f"fmax={fmax} at n_fft={self.n_fft}, sr={self.sr}: they hold only "
                "the floor. Use fewer n_mels, a larger n_fft or a wider "
                "fmin..fmax.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        return settings, resolve_device(self.device)

    def fit(self, X, y=None):
        """Validate the parameters and the clips; no state is learned.

        Parameters
        ----------
        X : sequence of clips or ndarray of shape (n_clips, n_samples)
            Validated as in :meth:`transform`, except that files are only checked
            to exist and to be non-empty (they are decoded by ``transform``). A
            2-D array sets ``n_features_in_``.
        y : None
            Ignored.

        Returns
        -------
        self : LogMelTransformer
        """
        self._check_params()
        check_audio(X, sr=self.sr, decode=False)
        if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype != object:
            self.n_features_in_ = X.shape[1]
        return self

    def fit_transform(self, X, y=None):
        """``fit(X).transform(X)``, reading ``X`` once: ``X`` may also be a
        one-shot iterable of clips, such as a generator (a pipeline's ``fit``
        calls this). Returns what :meth:`transform` returns."""
        if isinstance(X, Iterator):  # a generator, say: read it once
            X = list(X)
        return self.fit(X).transform(X)

    def n_frames(self, n_samples):
        """Number of frames of a clip of ``n_samples`` samples (before max_frames).

        Parameters
        ----------
        n_samples : int or ndarray of int
            Clip length(s) in samples.

        Returns
        -------
        n_frames : int or ndarray of int
        """
        settings, _ = self._check_params()
        return settings.n_frames(n_samples)

    def transform(self, X):
        """Compute the NaN-padded log-mel spectrogram of every clip.

        Parameters
        ----------
        X : sequence of (array-like of shape (n_samples,) or path), or ndarray of \
shape (n_clips, n_samples)
            Waveforms at ``sr`` (float, or integer PCM), or paths to audio files of
            any sample rate and channel count.

        Returns
        -------
        S : ndarray of shape (n_clips, n_mels, n_frames), dtype float32, or \
list of ndarray of shape (n_mels, n_frames_i)
            Log-mel spectrograms in dB. Padded (``output="padded"``): ``n_frames``
            is ``max_frames`` or the longest clip's frame count, and frames after
            each clip's end are NaN. Ragged: a list of float32 arrays, each
            clip's own frames (at most ``max_frames``, centre-cropped). Files
            are decoded a chunk at a time, so memory holds the spectrograms
            and one chunk of decoded files, never every file's waveform.
        """
        settings, device = self._check_params()
        items = check_audio(X, sr=self.sr, decode=False)  # files: checked only
        warn_on_channels_as_clips(X)
        if self.output == "ragged" or any(isinstance(c, Path) for c in items):
            # Files are decoded a chunk at a time, whatever the output.
            chunks = self._ragged_chunks(X, items, settings, device, _CHUNK_CLIPS)
            ragged = [S for chunk in chunks for S in chunk]
            return ragged if self.output == "ragged" else pad(ragged, settings)
        warn_on_odd_clips(items, X, min_samples=MIN_FRAMES * self.hop_length)
        return log_mel(items, settings, device)

    def _ragged_chunks(self, X, items, settings, device, chunk_size, bar=None):
        """Ragged spectrograms of ``X`` (``items``: as ``check_audio(X,
        decode=False)`` returns it), ``chunk_size`` clips at a time: only a
        chunk of files is decoded at once. Warns about odd clips at the end."""
        settings = dataclasses.replace(settings, output="ragged")
        peaks, lengths = [], []
        for first in range(0, len(items), chunk_size):
            clips = decode_clips(
                items[first : first + chunk_size], sr=self.sr, first=first
            )
            chunk_peaks, chunk_lengths = clip_statistics(clips)
            peaks.append(chunk_peaks)
            lengths.append(chunk_lengths)
            yield log_mel(clips, settings, device)
            if bar is not None:
                bar.update(len(clips))
        warn_on_odd_statistics(
            np.concatenate(peaks),
            np.concatenate(lengths),
            clip_names(X),
            min_samples=MIN_FRAMES * self.hop_length,
        )

    def transform_to_store(
        self, X, path, *, chunk_size=256, overwrite=False, verbose=1
    ):
        """Compute the spectrograms of many clips into a store on disk.

        The clips are read (files decoded), transformed and written
        ``chunk_size`` at a time, so that for files memory holds one chunk,
        whatever the number of clips: the way to a corpus larger than memory.
        (In-memory waveforms are all checked first, and converted to float32
        when they are not.) Each clip is
        stored with its own frames, as ``output="ragged"`` gives them.

        Parameters
        ----------
        X : sequence of (array-like of shape (n_samples,) or path), or ndarray \
of shape (n_clips, n_samples)
            As for :meth:`transform`; with paths, only ``chunk_size`` files are
            decoded at a time.
        path : str or os.PathLike
            Folder of the store; created if missing, and it must be empty.
        chunk_size : int > 0, default=256
            Clips read and transformed at a time.
        overwrite : bool, default=False
            Replace a store already in ``path``.
        verbose : int, default=1
            Show a progress bar over the clips; 0 turns it off.

        Returns
        -------
        store : SpectrogramStore
            The clips' spectrograms, in the order of ``X``; give it to the
            classifier's ``fit``, ``predict`` or to ``cross_val_score``.

        Raises
        ------
        FileExistsError
            If ``path`` is not empty and ``overwrite`` is False, or holds
            anything but a store.
        """
        from tqdm.auto import tqdm

        from ._store import StoreWriter

        settings, device = self._check_params()
        check_integer(chunk_size, "chunk_size", low=1)
        items = check_audio(X, sr=self.sr, decode=False)  # files: checked only
        warn_on_channels_as_clips(X)
        params = {k: v for k, v in self.get_params().items() if k != "device"}
        writer = StoreWriter(
            path, n_mels=self.n_mels, log_mel_params=params, overwrite=overwrite
        )
        try:
            with tqdm(total=len(items), unit="clip", disable=not verbose) as bar:
                for chunk in self._ragged_chunks(
                    X, items, settings, device, chunk_size, bar
                ):
                    writer.append(chunk)
            return writer.close()
        except BaseException:
            writer.abort()
            raise

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Waveforms: a 2-D array (n_clips, n_samples) or a list of 1-D clips.
        tags.input_tags.two_d_array = True
        tags.requires_fit = False  # stateless, like FunctionTransformer
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
