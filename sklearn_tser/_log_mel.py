"""LogMelTransformer: audio clips to log-mel spectrograms, batched in torch."""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions

from ._audio import check_audio
from ._device import resolve_device

__all__ = ["LogMelTransformer", "n_valid_frames"]


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
    padded = np.isnan(S).all(axis=1)  # (n_clips, n_frames)
    # A frame counts as valid up to the first all-NaN frame that is followed only
    # by all-NaN frames: length = n_frames - length of the trailing all-NaN run.
    trailing = np.flip(np.cumprod(np.flip(padded, axis=1), axis=1), axis=1)
    return (S.shape[2] - trailing.sum(axis=1)).astype(np.int64)


class LogMelTransformer(TransformerMixin, BaseEstimator):
    """Log-mel spectrograms of audio clips of any length.

    A stateless transformer, like :class:`~sklearn.preprocessing.FunctionTransformer`:
    ``fit`` only validates the parameters. ``transform`` computes, for every clip,
    ``librosa.power_to_db(librosa.feature.melspectrogram(y=clip, ...), ref=1.0,
    amin=amin, top_db=top_db)`` with the same settings, but batched in torch: the
    clips of a chunk are laid end to end in one signal, and its frames go
    through one Fourier transform, a mel projection that skips the filter bank's
    zeros, and one logarithm (on CUDA when ``device`` says so). On a 2-core CPU
    this is about 5x as fast as the per-clip librosa loop on RAVDESS
    (``benchmarks/bench_features.py``); the Fourier transforms alone take about
    a third of the time that remains.

    Clips keep their own length. The output is as wide as the longest clip (or
    ``max_frames``) and every shorter clip is right-padded with NaN, the tslearn
    convention for variable-length series: a clip's true length survives slicing,
    cross-validation splits and pickling, and :func:`n_valid_frames` recovers it.

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
        Window name understood by :func:`scipy.signal.get_window`.
    center : bool, default=True
        Pad each clip by ``n_fft // 2`` on both sides so frame ``t`` is centred on
        sample ``t * hop_length``; a clip of ``n`` samples then has
        ``1 + n // hop_length`` frames.
    pad_mode : {"constant", "reflect"}, default="constant"
        Padding used with ``center=True`` (librosa's default is ``"constant"``).
    n_mels : int > 0, default=64
        Number of mel bands.
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
        ``"auto"`` (CUDA when available). The output is always a NumPy array.

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
    it has ``1 + n_samples // hop_length`` frames (at least one), with
    ``center=False`` it is padded to ``n_fft`` samples and has exactly one frame.
    An all-silent clip gives the finite value ``10 * log10(amin)`` everywhere.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_tser import LogMelTransformer
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
        "n_mels": [Interval(numbers.Integral, 1, None, closed="left")],
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

    def _check_params(self):
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
        return resolve_device(self.device)

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
        n_samples = np.asarray(n_samples)
        if self.center:
            out = 1 + n_samples // self.hop_length
        else:
            out = (
                1 + (np.maximum(n_samples, self.n_fft) - self.n_fft) // self.hop_length
            )
        return out if out.ndim else int(out)

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
        S : ndarray of shape (n_clips, n_mels, n_frames), dtype float32
            Log-mel spectrograms in dB. ``n_frames`` is ``max_frames`` or the
            longest clip's frame count; frames after each clip's end are NaN.
        """
        device = self._check_params()
        clips = check_audio(X, sr=self.sr)
        lengths = np.array([len(c) for c in clips], dtype=np.int64)
        frames = self.n_frames(lengths)
        width = int(frames.max()) if self.max_frames is None else self.max_frames
        # Every value is written exactly once: spectrogram values by the chunks,
        # NaN here, only in each clip's padding.
        out = np.empty((len(clips), self.n_mels, width), dtype=np.float32)
        for i, n in enumerate(frames):
            out[i, :, n:] = np.nan

        max_clips, chunk_frames = self._chunk_limits(device)
        kernels = self._kernels(device)
        regions = self._regions(lengths)
        start = 0
        while start < len(clips):
            stop = start + 1
            total = regions[start] // self.hop_length
            while stop < len(clips) and stop - start < max_clips:
                total += regions[stop] // self.hop_length
                if total > chunk_frames:
                    break
                stop += 1
            self._transform_chunk(
                clips,
                range(start, stop),
                regions[start:stop],
                frames,
                out,
                kernels,
                device,
                chunk_frames,
            )
            start = stop
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Waveforms: a 2-D array (n_clips, n_samples) or a list of 1-D clips.
        tags.input_tags.two_d_array = True
        tags.requires_fit = False  # stateless, like FunctionTransformer
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def _chunk_limits(self, device):
        """(clips, frames) transformed together at most."""
        frames_per_5s = 5 * self.sr // self.hop_length + 1
        if self.batch_size != "auto":
            return self.batch_size, self.batch_size * frames_per_5s
        if device.type == "cpu":
            # A chunk whose frames and spectra fit in the caches is fastest on the
            # CPU: about 2048 frames (20 s of audio at the default hop).
            return 2**31, 2048
        return 64, 64 * frames_per_5s

    def _regions(self, lengths):
        """Space of each clip in a chunk's signal: its length after centre padding
        (or padding to one window), rounded up to a multiple of ``hop_length``."""
        if self.center:
            padded = lengths + 2 * (self.n_fft // 2)
        else:
            padded = np.maximum(lengths, self.n_fft)
        hop = self.hop_length
        return -(-padded // hop) * hop

    def _kernels(self, device):
        """Window, and the mel filter bank split into bands of contiguous bins."""
        import librosa
        import torch

        fbank = librosa.filters.mel(
            sr=self.sr,
            n_fft=self.n_fft,
            n_mels=self.n_mels,
            fmin=self.fmin,
            fmax=self.fmax,
            htk=self.htk,
            norm=self.norm,
            dtype=np.float32,
        )
        win_length = self.n_fft if self.win_length is None else self.win_length
        window = librosa.filters.get_window(self.window, win_length, fftbins=True)
        window = librosa.util.pad_center(window, size=self.n_fft)
        # Each mel filter is non-zero on a few neighbouring bins only. Projecting
        # groups of about 16 filters onto just the bins they cover skips the zero
        # weights: the same sums, with a quarter of the multiplications.
        groups = []
        for part in np.array_split(np.arange(self.n_mels), max(1, self.n_mels // 16)):
            bins = np.flatnonzero(fbank[part].any(axis=0))
            lo, hi = (int(bins[0]), int(bins[-1]) + 1) if len(bins) else (0, 0)
            weights = np.ascontiguousarray(fbank[part, lo:hi].T)
            groups.append(
                (
                    int(part[0]),
                    int(part[-1]) + 1,
                    lo,
                    hi,
                    torch.as_tensor(weights, device=device),
                )
            )
        return groups, torch.as_tensor(window, dtype=torch.float32, device=device)

    def _transform_chunk(
        self, clips, idx, regions, frames, out, kernels, device, chunk_frames
    ):
        """Log-mel of consecutive clips, laid end to end in one signal.

        Each clip starts on a multiple of ``hop_length`` in the chunk's signal, so
        the frames of the whole signal hold every clip's frames in order, with a
        few unused frames between clips. A single clip longer than the chunk limit
        is transformed in pieces of ``chunk_frames`` frames.
        """
        import torch

        hop, half = self.hop_length, (self.n_fft // 2 if self.center else 0)
        offsets = np.concatenate([[0], np.cumsum(regions)])
        signal = np.zeros(max(offsets[-1], self.n_fft), dtype=np.float32)
        for k, i in enumerate(idx):
            clip, o = clips[i], offsets[k]
            signal[o + half : o + half + len(clip)] = clip
            if half and self.pad_mode == "reflect":
                if len(clip) > half:
                    signal[o : o + half] = clip[half:0:-1]
                    signal[o + half + len(clip) : o + 2 * half + len(clip)] = clip[
                        -2 : -half - 2 : -1
                    ]
                else:
                    signal[o : o + 2 * half + len(clip)] = np.pad(
                        clip, half, mode="reflect"
                    )
        groups, window = kernels
        with torch.inference_mode():
            y = torch.from_numpy(signal).to(device)
            windows = y.unfold(0, self.n_fft, hop)
            n_windows = windows.shape[0]
            if len(idx) > 1 or n_windows <= chunk_frames:
                db = self._log_mel(windows, groups, window, device)
                for k, i in enumerate(idx):
                    first = offsets[k] // hop
                    self._write(out, i, db[:, first : first + frames[i]])
                return
            # One long clip: pieces, then the top_db floor over all of them.
            i = idx[0]
            pieces = [
                self._log_mel(windows[a : a + chunk_frames], groups, window, device)
                for a in range(0, frames[i], chunk_frames)
            ]
            self._write(out, i, np.concatenate(pieces, axis=1)[:, : frames[i]])

    def _log_mel(self, windows, groups, window, device):
        """dB mel energies (no top_db) of framed signal; (n_mels, n_frames) array."""
        import torch

        spec = torch.view_as_real(torch.fft.rfft(windows * window)).square_()
        power = spec[..., 0] + spec[..., 1]  # |X|^2, (n_frames, n_freq)
        if self.power != 2.0:
            power = power.pow_(self.power / 2.0)
        mel = torch.empty(power.shape[0], self.n_mels, device=device)
        for first, last, lo, hi, weights in groups:
            torch.matmul(power[:, lo:hi], weights, out=mel[:, first:last])
        # Written as (n_mels, n_frames), so that each clip's values are rows.
        db = torch.empty(self.n_mels, power.shape[0], device=device)
        torch.log10(mel.clamp_(min=self.amin).T, out=db)
        return db.mul_(10.0).cpu().numpy()

    def _write(self, out, i, db):
        """Floor clip ``i``'s (n_mels, n_frames) dB values at top_db below its peak
        and write them, centre-cropped to the output width."""
        n, width = db.shape[1], out.shape[2]
        offset = max(0, (n - width) // 2)
        n = min(n, width)
        floor = -np.inf if self.top_db is None else db.max() - self.top_db
        np.maximum(db[:, offset : offset + n], floor, out=out[i, :, :n])
