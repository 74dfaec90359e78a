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
    amin=amin, top_db=top_db)`` with the same settings, but in batches: the
    frames of a chunk of clips go through one Fourier transform (torch's), a mel
    projection that skips the filter bank's zeros, and one logarithm. On the
    CPU, the work around the Fourier transform is done by small fused C kernels
    (framing, mel projection and logarithm, top_db floor and write), built by
    ``pip install`` where GCC is available; elsewhere, and on CUDA (``device``),
    it is done in torch, with the same results to float32 rounding. On a 2-core
    CPU the kernels make it about 11x as fast as the per-clip librosa loop on
    RAVDESS, and the torch path about 5x (``benchmarks/bench_features.py``).

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
        use_fused = self._fused_applies(device)
        # The fused kernels look for NaN and infinite samples while they frame
        # the clips, so check_audio need not read every sample once more. A
        # full check_audio raises the error of the first bad clip then, or if
        # another clip is bad (empty, non-numeric): that needs an X that can
        # be read twice.
        deferred = use_fused and isinstance(X, (list, tuple, np.ndarray))
        try:
            clips = check_audio(X, sr=self.sr, check_finite=not deferred)
        except (TypeError, ValueError):
            if deferred:
                check_audio(X, sr=self.sr)  # an earlier clip may hold NaN
            raise
        lengths = np.array([len(c) for c in clips], dtype=np.int64)
        frames = self.n_frames(lengths)
        width = int(frames.max()) if self.max_frames is None else self.max_frames
        out = np.empty((len(clips), self.n_mels, width), dtype=np.float32)

        max_clips, chunk_frames = self._chunk_limits(device)
        regions = self._regions(lengths)
        # Chunks of consecutive clips (start, stop, whole); whole is False for a
        # single clip longer than a chunk, which torch transforms in pieces.
        chunks = []
        start = 0
        while start < len(clips):
            stop = start + 1
            total = regions[start] // self.hop_length
            whole = total <= chunk_frames
            while stop < len(clips) and stop - start < max_clips:
                total += regions[stop] // self.hop_length
                if total > chunk_frames:
                    break
                stop += 1
            chunks.append((start, stop, whole))
            start = stop

        # With the fused kernels, every whole chunk goes through them.
        fits = [use_fused and whole for _, _, whole in chunks]
        kernels = None if all(fits) else self._kernels(device)
        if use_fused:
            fused = self._fused_kernels()
            plan = self._fused_plan(clips, frames, out, chunks, fits)
        bad = np.zeros(len(clips), dtype=np.int64)  # clips with NaN or infinity
        for (start, stop, whole), fit in zip(chunks, fits, strict=True):
            if fit:
                self._transform_chunk_fused(start, stop, fused, plan, bad)
            else:
                if deferred:
                    for i in range(start, stop):
                        bad[i] = not np.isfinite(clips[i]).all()
                self._transform_chunk(
                    clips,
                    range(start, stop),
                    regions[start:stop],
                    frames,
                    out,
                    kernels,
                    device,
                    chunk_frames if not whole else None,
                )
        if bad.any():
            check_audio(X, sr=self.sr)  # raises the error of the first such clip
            raise ValueError(  # not reached: check_audio names the clip
                f"Clip {np.flatnonzero(bad)[0]} holds NaN or infinite samples; "
                "audio must be finite everywhere."
            )
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

    def _filters(self):
        """The mel filter bank, (n_mels, 1 + n_fft // 2), and the window zero-padded
        to n_fft, as float32 NumPy arrays."""
        import librosa

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
        return fbank, window.astype(np.float32)

    def _kernels(self, device):
        """Window, and the mel filter bank split into bands of contiguous bins,
        as torch tensors on ``device``."""
        import torch

        fbank, window = self._filters()
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
        return groups, torch.as_tensor(window, device=device)

    def _transform_chunk(
        self, clips, idx, regions, frames, out, kernels, device, piece
    ):
        """Log-mel of consecutive clips, laid end to end in one signal.

        Each clip starts on a multiple of ``hop_length`` in the chunk's signal, so
        the frames of the whole signal hold every clip's frames in order, with a
        few unused frames between clips. With ``piece`` (frames), the chunk is a
        single clip longer than a chunk, transformed in pieces of that many frames.
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
            if piece is None:
                db = self._log_mel(windows, groups, window, device)
                for k, i in enumerate(idx):
                    first = offsets[k] // hop
                    self._write(out, i, db[:, first : first + frames[i]])
                return
            # One long clip: pieces, then the top_db floor over all of them.
            i = idx[0]
            pieces = [
                self._log_mel(windows[a : a + piece], groups, window, device)
                for a in range(0, frames[i], piece)
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
        and write them, centre-cropped to the output width, then NaN after them."""
        n, width = db.shape[1], out.shape[2]
        offset = max(0, (n - width) // 2)
        n = min(n, width)
        floor = -np.inf if self.top_db is None else db.max() - self.top_db
        np.maximum(db[:, offset : offset + n], floor, out=out[i, :, :n])
        out[i, :, n:] = np.nan

    def _fused_applies(self, device):
        """Whether the fused C kernels compute this transform.

        They do on the CPU, when the optional C module is built, except with
        ``center=True, pad_mode="reflect"`` (their framing pads with zeros).
        """
        from . import _kernels

        if device.type != "cpu" or (self.center and self.pad_mode == "reflect"):
            return False
        return _kernels.load() is not None

    def _fused_kernels(self):
        """What the fused C kernels need: the library, each mel filter's first
        and last + 1 non-zero bins, the offsets of its weights in the packed
        weights, those weights, the window and the span ``[wlo, whi)`` of its
        non-zero samples."""
        from . import _kernels

        fbank, window = self._filters()
        lo = np.zeros(self.n_mels, dtype=np.int64)
        hi = np.zeros(self.n_mels, dtype=np.int64)
        packed = []
        for m, row in enumerate(fbank):
            bins = np.flatnonzero(row)
            if len(bins):  # an empty filter (too many mels) sums nothing
                lo[m], hi[m] = bins[0], bins[-1] + 1
            packed.append(row[lo[m] : hi[m]])
        offsets = np.concatenate([[0], np.cumsum(hi - lo)[:-1]]).astype(np.int64)
        span = np.flatnonzero(window)
        wlo, whi = (int(span[0]), int(span[-1]) + 1) if len(span) else (0, 0)
        return (
            _kernels.load(),
            lo,
            hi,
            offsets,
            np.concatenate(packed + [np.zeros(1, np.float32)]),
            window,
            wlo,
            whi,
        )

    def _fused_plan(self, clips, frames, out, chunks, fits):
        """Per-clip arrays of the fused kernels, for all chunks at once: each
        chunk then passes addresses into them. Also the buffers all chunks
        share: frames (zero outside the window's span) and dB values."""
        import torch

        from ._kernels import address

        data = [np.ascontiguousarray(c, dtype=np.float32) for c in clips]
        counts = np.ascontiguousarray(frames, dtype=np.int64)
        rows = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        width = out.shape[2]
        arrays = {
            "ptrs": np.array([c.ctypes.data for c in data], dtype=np.int64),
            "lens": np.array([len(c) for c in data], dtype=np.int64),
            "counts": counts,
            "rows": rows,
            "offs": np.maximum(0, (counts - width) // 2),
            "widths": np.minimum(counts, width),
            "outs": out.ctypes.data
            + np.arange(len(clips), dtype=np.int64) * out.strides[0],
        }
        n = max(
            [
                int(rows[b] - rows[a])
                for (a, b, _), f in zip(chunks, fits, strict=True)
                if f
            ]
            + [1]
        )
        buffers = (
            torch.zeros(n, self.n_fft),
            np.empty((self.n_mels, n), dtype=np.float32),
        )
        return {
            "data": data,  # keeps the clips' memory alive
            "arrays": arrays,
            "addresses": {k: address(v) for k, v in arrays.items()},
            "buffers": buffers,
            "buffer_addresses": [address(buf) for buf in buffers],
            "width": width,
        }

    def _transform_chunk_fused(self, start, stop, fused, plan, bad):
        """Log-mel of clips ``start:stop`` with the fused kernels: windowed frames
        straight from the clips, torch's real FFT, then the mel projection over
        each filter's non-zero bins, logarithm, top_db floor and NaN-padded
        write into the output."""
        import torch

        lib, lo, hi, offsets, weights, window, wlo, whi = fused
        frame_buf, _ = plan["buffers"]
        frame_addr, db_addr = plan["buffer_addresses"]
        at = {k: v + 8 * start for k, v in plan["addresses"].items()}
        rows = plan["arrays"]["rows"]
        row0 = int(rows[start])
        n = int(rows[stop]) - row0
        half = self.n_fft // 2 if self.center else 0
        status = lib.tser_frame(
            stop - start,
            at["ptrs"],
            at["lens"],
            at["counts"],
            at["rows"],
            row0,
            self.hop_length,
            half,
            window.ctypes.data,
            self.n_fft,
            wlo,
            whi,
            frame_addr,
            bad.ctypes.data + 8 * start,
        )
        if status == 0:
            # rfft into a new tensor: with out=, torch computes it in a temporary
            # and copies it (about 15% slower on MKL).
            with torch.inference_mode():
                spec = torch.fft.rfft(frame_buf[:n]).contiguous()
            status = lib.tser_mel_db(
                n,
                spec.data_ptr(),
                spec.shape[1],
                self.n_mels,
                lo.ctypes.data,
                hi.ctypes.data,
                offsets.ctypes.data,
                weights.ctypes.data,
                self.amin,
                self.power,
                db_addr,
            )
        if status == 0:
            status = lib.tser_write(
                stop - start,
                db_addr,
                self.n_mels,
                n,
                at["rows"],
                row0,
                at["counts"],
                at["offs"],
                at["widths"],
                at["outs"],
                plan["width"],
                0.0 if self.top_db is None else self.top_db,
                self.top_db is not None,
            )
        if status != 0:
            raise MemoryError(
                f"Out of memory in the log-mel kernels for clips {start}-{stop - 1}; "
                "use a smaller batch_size."
            )
