"""Batched log-mel computation in torch: the machinery of LogMelTransformer.

:func:`log_mel` computes, for many clips at once, what
``librosa.power_to_db(librosa.feature.melspectrogram(y=clip, ...), ref=1.0)``
computes for one. The clips of a *chunk* are laid end to end in one signal,
each starting on a whole hop, so that one framing, one real FFT, one mel
projection and one logarithm serve them all; a chunk costs its audio, not its
number of clips times its longest clip. The mel projection multiplies each
group of about 16 filters by the few bins it covers only, skipping the zeros of
the filter bank. A single clip longer than a chunk is transformed in pieces, so
memory stays bounded for any length.
"""

import warnings
from dataclasses import dataclass

import numpy as np

from ._warnings import user_stacklevel

__all__ = ["MelSettings", "log_mel", "pad"]

# log_mel warns when its padded output is this many times the clips' frames,
# and larger than this many bytes.
PADDING_WARN_RATIO = 4
PADDING_WARN_BYTES = 100 * 2**20


@dataclass(frozen=True)
class MelSettings:
    """The parameters of a log-mel spectrogram; see :class:`LogMelTransformer`."""

    sr: int = 16000
    n_fft: int = 512
    win_length: int | None = 400
    hop_length: int = 160
    window: str = "hann"
    center: bool = True
    pad_mode: str = "constant"
    n_mels: int = 64
    fmin: float = 20.0
    fmax: float | None = None
    power: float = 2.0
    htk: bool = False
    norm: str | None = "slaney"
    amin: float = 1e-10
    top_db: float | None = 80.0
    max_frames: int | None = None
    batch_size: int | str = "auto"
    output: str = "padded"

    def n_frames(self, n_samples):
        """Frames of clips of ``n_samples`` samples (before ``max_frames``)."""
        n_samples = np.asarray(n_samples)
        # librosa's count: n_fft // 2 samples each side when centred (one
        # fewer than n_fft in all for an odd n_fft), else padded to a window.
        padded = n_samples + 2 * (self.n_fft // 2) if self.center else n_samples
        out = 1 + (np.maximum(padded, self.n_fft) - self.n_fft) // self.hop_length
        return out if out.ndim else int(out)

    def filters(self):
        """The mel filter bank, (n_mels, 1 + n_fft // 2), and the window
        zero-padded to ``n_fft``, as float32 arrays: what
        ``librosa.filters.mel`` and ``librosa.filters.get_window(...,
        fftbins=True)`` give, computed here so that a first transform does not
        pay librosa's and scipy.signal's imports (about 2 s)."""
        fbank = mel_filters(
            sr=self.sr,
            n_fft=self.n_fft,
            n_mels=self.n_mels,
            fmin=self.fmin,
            fmax=self.sr / 2 if self.fmax is None else self.fmax,
            htk=self.htk,
            norm=self.norm,
        )
        win_length = self.n_fft if self.win_length is None else self.win_length
        window = np.zeros(self.n_fft)
        start = (self.n_fft - win_length) // 2  # centred, as librosa pads it
        window[start : start + win_length] = periodic_window(self.window, win_length)
        return fbank.astype(np.float32), window.astype(np.float32)


def hz_to_mel(hz, htk=False):
    """Mel values of frequencies in Hz: HTK's formula, or Slaney's (linear
    below 1 kHz, logarithmic above), as librosa defines them."""
    hz = np.asarray(hz, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    mel = hz / _SLANEY_HZ_PER_MEL
    log_part = hz >= _SLANEY_BREAK_HZ
    return np.where(
        log_part,
        _SLANEY_BREAK_HZ / _SLANEY_HZ_PER_MEL
        + np.log(np.maximum(hz, _SLANEY_BREAK_HZ) / _SLANEY_BREAK_HZ)
        / _SLANEY_LOG_STEP,
        mel,
    )


def mel_to_hz(mel, htk=False):
    """The inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    break_mel = _SLANEY_BREAK_HZ / _SLANEY_HZ_PER_MEL
    return np.where(
        mel >= break_mel,
        _SLANEY_BREAK_HZ * np.exp(_SLANEY_LOG_STEP * (mel - break_mel)),
        _SLANEY_HZ_PER_MEL * mel,
    )


# Slaney's mel scale (the Auditory Toolbox): 200/3 Hz per mel up to 1 kHz,
# then 27 mels per factor 6.4 of frequency.
_SLANEY_HZ_PER_MEL = 200.0 / 3.0
_SLANEY_BREAK_HZ = 1000.0
_SLANEY_LOG_STEP = np.log(6.4) / 27.0


def mel_filters(*, sr, n_fft, n_mels, fmin, fmax, htk=False, norm="slaney"):
    """Triangular mel filters on the bins of a real FFT.

    Filter ``i`` rises from the ``i``-th to the ``i + 1``-th of ``n_mels + 2``
    frequencies equally spaced in mel between ``fmin`` and ``fmax``, and falls
    to the ``i + 2``-th; with ``norm="slaney"`` it is divided by half its
    width in Hz, so that every filter has about the same area.

    Returns
    -------
    fbank : ndarray of shape (n_mels, 1 + n_fft // 2), dtype float64
    """
    bins = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges = mel_to_hz(
        np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels + 2), htk
    )
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    fbank = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        fbank *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return fbank


def periodic_window(name, length):
    """A periodic window of ``length`` samples (for spectral analysis), as
    ``scipy.signal.get_window(name, length, fftbins=True)`` gives; the common
    ones are computed here, the others by scipy."""
    n = np.arange(length) * (2.0 * np.pi / length)
    cosine_sums = {
        "hann": (0.5, 0.5, 0.0),
        "hamming": (0.54, 0.46, 0.0),
        "blackman": (0.42, 0.5, 0.08),
    }
    if name in cosine_sums:
        a0, a1, a2 = cosine_sums[name]
        return a0 - a1 * np.cos(n) + a2 * np.cos(2.0 * n)
    import scipy.signal

    return scipy.signal.get_window(name, length, fftbins=True)


def log_mel(clips, settings, device):
    """Log-mel spectrograms of validated clips, NaN-padded or ragged.

    Parameters
    ----------
    clips : list of ndarray of shape (n_samples_i,), dtype float32
        Finite mono waveforms at ``settings.sr`` (as :func:`check_audio` returns).
    settings : MelSettings
        Validated parameters; ``settings.output`` chooses the output's form.
    device : torch.device
        Where the FFT and the mel projection run.

    Returns
    -------
    S : ndarray of shape (n_clips, n_mels, n_frames), dtype float32, or list \
of ndarray of shape (n_mels, n_frames_i)
        Log-mel values in dB. Padded (``output="padded"``): ``n_frames`` is
        ``max_frames`` or the longest clip's frame count, and frames after each
        clip's end are NaN. Ragged: each clip has its own frames (at most
        ``max_frames``).
    """
    lengths = np.array([len(c) for c in clips], dtype=np.int64)
    frames = settings.n_frames(lengths)
    if settings.output == "ragged":
        kept = (
            frames
            if settings.max_frames is None
            else np.minimum(frames, settings.max_frames)
        )
        out = [np.empty((settings.n_mels, k), dtype=np.float32) for k in kept]
    else:
        width = (
            int(frames.max()) if settings.max_frames is None else settings.max_frames
        )
        _warn_on_padding(frames, width, settings)
        out = np.empty((len(clips), settings.n_mels, width), dtype=np.float32)
    max_clips, chunk_frames = _chunk_limits(settings, device)
    regions = _regions(settings, lengths)
    kernels = _kernels(settings, device)
    for start, stop, whole in _chunks(
        regions // settings.hop_length, max_clips, chunk_frames
    ):
        _transform_chunk(
            settings,
            clips,
            range(start, stop),
            regions[start:stop],
            frames,
            out,
            kernels,
            device,
            None if whole else chunk_frames,
        )
    return out


def pad(spectrograms, settings):
    """Ragged spectrograms (as :func:`log_mel` gives them with ``output=
    "ragged"``) as the NaN-padded array it gives otherwise; each clip's array
    is released once copied, so memory holds little more than both."""
    frames = np.array([S.shape[1] for S in spectrograms], dtype=np.int64)
    width = int(frames.max()) if settings.max_frames is None else settings.max_frames
    _warn_on_padding(frames, width, settings)
    out = np.full((len(frames), settings.n_mels, width), np.nan, dtype=np.float32)
    for i, n in enumerate(frames):
        out[i, :, :n] = spectrograms[i]
        spectrograms[i] = None
    return out


def _warn_on_padding(frames, width, settings):
    """Warn when NaN padding makes up most of a large output: one long clip
    among short ones pads every clip to its length."""
    padded = len(frames) * width
    real = int(np.minimum(frames, width).sum())
    n_bytes = 4 * settings.n_mels * padded
    if padded > PADDING_WARN_RATIO * real and n_bytes > PADDING_WARN_BYTES:
        longest = int(np.argmax(frames))
        warnings.warn(
            f"The spectrograms are {padded / real:.0f} times the size of the clips' "
            f"frames ({n_bytes / 2**20:.0f} MiB, mostly NaN padding): every clip is "
            f"padded to the longest, clip {longest} ({int(frames[longest])} "
            "frames). Use output='ragged' (each clip keeps its own frames), "
            "split long recordings into utterances, or set max_frames.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def _chunk_limits(settings, device):
    """(clips, frames) transformed together at most."""
    frames_per_5s = 5 * settings.sr // settings.hop_length + 1
    if settings.batch_size != "auto":
        return settings.batch_size, settings.batch_size * frames_per_5s
    if device.type == "cpu":
        # A chunk whose frames and spectra fit in the caches is fastest on the
        # CPU: about 2048 frames (20 s of audio at the default hop).
        return 2**31, 2048
    return 64, 64 * frames_per_5s


def _regions(settings, lengths):
    """Space of each clip in a chunk's signal: its length after centre padding
    (or padding to one window), rounded up to a multiple of ``hop_length``."""
    if settings.center:
        padded = lengths + 2 * (settings.n_fft // 2)
    else:
        padded = np.maximum(lengths, settings.n_fft)
    hop = settings.hop_length
    return -(-padded // hop) * hop


def _chunks(hops, max_clips, chunk_frames):
    """Runs ``(start, stop, whole)`` of consecutive clips of at most
    ``chunk_frames`` hops and ``max_clips`` clips; ``whole`` is False for a
    single clip longer than a chunk, transformed in pieces."""
    start = 0
    while start < len(hops):
        stop, total = start + 1, hops[start]
        whole = total <= chunk_frames
        while stop < len(hops) and stop - start < max_clips:
            total += hops[stop]
            if total > chunk_frames:
                break
            stop += 1
        yield start, stop, whole
        start = stop


def _kernels(settings, device):
    """Window, and the mel filter bank split into bands of contiguous bins, as
    torch tensors on ``device``."""
    import torch

    fbank, window = settings.filters()
    # Each mel filter is non-zero on a few neighbouring bins only. Projecting
    # groups of about 16 filters onto just the bins they cover skips the zero
    # weights: the same sums, with a quarter of the multiplications.
    groups = []
    n_mels = settings.n_mels
    for part in np.array_split(np.arange(n_mels), max(1, n_mels // 16)):
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
    settings, clips, idx, regions, frames, out, kernels, device, piece
):
    """Log-mel of consecutive clips, laid end to end in one signal.

    Each clip starts on a multiple of ``hop_length`` in the chunk's signal, so
    the frames of the whole signal hold every clip's frames in order, with a
    few unused frames between clips. With ``piece`` (frames), the chunk is a
    single clip longer than a chunk, transformed in pieces of that many frames.
    """
    import torch

    s = settings
    hop, half = s.hop_length, (s.n_fft // 2 if s.center else 0)
    offsets = np.concatenate([[0], np.cumsum(regions)])
    signal = np.zeros(max(offsets[-1], s.n_fft), dtype=np.float32)
    for k, i in enumerate(idx):
        clip, o = clips[i], offsets[k]
        signal[o + half : o + half + len(clip)] = clip
        if half and s.pad_mode == "reflect":
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
        windows = torch.from_numpy(signal).to(device).unfold(0, s.n_fft, hop)
        if piece is None:
            db = _db(s, windows, groups, window, device)
            _write_chunk(s, out, idx, offsets[:-1] // hop, frames, db)
            return
        # One long clip: pieces, then the top_db floor over all of them.
        db = torch.cat(
            [
                _db(s, windows[a : a + piece], groups, window, device)
                for a in range(0, frames[idx[0]], piece)
            ]
        )
        _write_chunk(s, out, idx, np.zeros(1, dtype=np.int64), frames, db)


def _db(settings, windows, groups, window, device):
    """dB mel energies (no top_db) of framed signal; (n_frames, n_mels) tensor."""
    import torch

    spec = torch.view_as_real(torch.fft.rfft(windows * window)).square_()
    power = spec[..., 0] + spec[..., 1]  # |X|^2, (n_frames, n_freq)
    if settings.power != 2.0:
        power = power.pow_(settings.power / 2.0)
    mel = torch.empty(power.shape[0], settings.n_mels, device=device)
    for first, last, lo, hi, weights in groups:
        torch.matmul(power[:, lo:hi], weights, out=mel[:, first:last])
    return mel.clamp_(min=settings.amin).log10_().mul_(10.0)


def _write_chunk(settings, out, idx, firsts, frames, db):
    """Floor and write the clips ``idx`` of a chunk whose (n_frames, n_mels) dB
    values ``db`` hold clip ``idx[k]``'s frames from frame ``firsts[k]`` on.

    Each clip's values are floored at ``top_db`` below its own peak and
    centre-cropped to its output width. Into a padded ``out`` (3-D array) this
    takes a few tensor operations: a per-frame floor, one gather of every
    clip's frames (a NaN row after their ends), one transposing copy; into a
    ragged ``out`` (list of 2-D arrays), one transposing copy per clip.
    """
    import torch

    n_total, n_mels = db.shape
    n = frames[idx.start : idx.stop]
    if isinstance(out, list):
        width = np.array([out[i].shape[1] for i in idx])
    else:
        width = np.full(len(n), out.shape[2])
    crop = np.maximum(0, (n - width) // 2)
    kept = np.minimum(n, width)
    if settings.top_db is not None:
        peak = db.amax(dim=1).cpu().numpy()
        floor = np.full((n_total, 1), -np.inf, dtype=np.float32)
        for k in range(len(n)):
            segment = slice(firsts[k], firsts[k] + n[k])
            floor[segment] = peak[segment].max() - settings.top_db
        torch.maximum(db, torch.from_numpy(floor).to(db.device), out=db)
    if isinstance(out, list):
        for k, i in enumerate(idx):
            first = firsts[k] + crop[k]
            torch.from_numpy(out[i]).copy_(db[first : first + kept[k]].T)
        return
    # The chunk frame behind each output frame; n_total is the NaN row.
    source = np.full((len(n), out.shape[2]), n_total, dtype=np.int64)
    for k in range(len(n)):
        first = firsts[k] + crop[k]
        source[k, : kept[k]] = np.arange(first, first + kept[k])
    nan = torch.full((1, n_mels), float("nan"), device=db.device)
    index = torch.from_numpy(source.ravel()).to(db.device)
    rows = torch.cat([db, nan]).index_select(0, index)
    target = torch.from_numpy(out[idx.start : idx.stop])
    target.copy_(rows.view(len(n), out.shape[2], n_mels).transpose(1, 2))
