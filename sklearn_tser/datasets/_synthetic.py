"""A synthetic, speech-like emotional corpus for demos and tests.

The clips are NOT speech: they are vowel-like syllables produced by a
source-filter model (a band-limited glottal pulse train through formant
resonators), with emotion-dependent prosody. They exercise the whole pipeline
quickly and without downloads; no result obtained on them says anything about
real emotional speech.
"""

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter
from sklearn.utils import Bunch, check_random_state

from .._validation import check_integer


@dataclass(frozen=True)
class _Prosody:
    """Mean acoustic settings of one emotion class."""

    pitch: float  # f0 relative to the speaker's base f0
    pitch_range: float  # spread of syllable pitch targets, semitones
    rate: float  # syllables per second
    level: float  # peak amplitude
    tilt: float  # pole of the glottal low-pass: higher is darker, softer
    jitter: float  # relative f0 perturbation
    shimmer: float  # relative amplitude perturbation
    final: float  # pitch movement at the end of the phrase, semitones
    breath: float  # aspiration noise relative to the voice
    tremor: float  # 5.5 Hz pitch tremor depth, semitones
    pauses: float  # probability of a pause after a syllable


_PROSODY = {
    "neutral": _Prosody(1.00, 2.0, 4.2, 0.45, 0.90, 0.006, 0.05, -2, 0.05, 0, 0.20),
    "happy": _Prosody(1.25, 5.0, 5.0, 0.65, 0.82, 0.008, 0.07, 1, 0.05, 0, 0.15),
    "sad": _Prosody(0.88, 1.2, 3.0, 0.25, 0.96, 0.010, 0.08, -3, 0.15, 0, 0.35),
    "angry": _Prosody(1.30, 4.0, 5.5, 0.90, 0.60, 0.012, 0.12, -1, 0.03, 0, 0.10),
    "fearful": _Prosody(1.45, 3.0, 6.0, 0.50, 0.85, 0.030, 0.12, 2, 0.12, 0.8, 0.15),
    "disgust": _Prosody(0.92, 3.5, 3.3, 0.50, 0.88, 0.015, 0.10, -4, 0.08, 0, 0.25),
    "surprised": _Prosody(1.38, 7.0, 4.6, 0.70, 0.78, 0.008, 0.08, 5, 0.05, 0, 0.15),
    "calm": _Prosody(0.95, 1.5, 3.4, 0.35, 0.93, 0.004, 0.04, -2, 0.08, 0, 0.25),
}
EMOTIONS = tuple(_PROSODY)
# F1, F2, F3 (Hz) of /a/, /i/, /u/, /e/, /o/ for an adult male voice.
_VOWELS = np.array(
    [
        [730.0, 1090.0, 2440.0],
        [270.0, 2290.0, 3010.0],
        [300.0, 870.0, 2240.0],
        [530.0, 1840.0, 2480.0],
        [570.0, 840.0, 2410.0],
    ]
)
_BANDWIDTHS = np.array([80.0, 100.0, 140.0])
_CONTROL_RATE = 200.0  # Hz, rate of the jitter and shimmer perturbations

DESCR = """\
.. _synthetic_emotional_speech:

Synthetic emotional "speech" (NOT real speech)
----------------------------------------------

**These clips are synthetic.** They come from a source-filter model: a
band-limited glottal pulse train, shaped by a spectral tilt and by three
formant resonators that change from one vowel-like syllable to the next, with a
syllable-rate amplitude envelope, pauses, consonant-like noise bursts,
aspiration and background noise. Nothing is said: there are no words, and the
emotion classes differ only by hand-chosen prosodic settings (pitch level and
range, speaking rate, loudness, spectral tilt, jitter, shimmer, breathiness,
final pitch movement, tremor) drawn around a class mean with per-clip variation.

Each clip also belongs to a synthetic speaker (base pitch, formant scaling,
speaking rate, loudness), returned as ``speaker`` for grouped cross-validation.

Use it for quick demos, tests and benchmarks of the pipeline. A score on this
data says nothing about real emotional speech; use RAVDESS or IEMOCAP for that.
"""


def _check_durations(min_duration, max_duration, noise_level):
    if not 0.2 <= min_duration <= max_duration:
        raise ValueError(
            "Durations must satisfy 0.2 <= min_duration <= max_duration (seconds),"
            f" got min_duration={min_duration!r}, max_duration={max_duration!r}."
        )
    if not 0 <= noise_level < 1:
        raise ValueError(f"noise_level must be in [0, 1), got {noise_level!r}.")


def _make_speakers(rng, n_speakers):
    """Per-speaker voice settings; even speakers are female, odd male."""
    female = np.arange(n_speakers) % 2 == 0
    return {
        "f0": np.where(female, 205.0, 115.0) * np.exp(rng.normal(0, 0.1, n_speakers)),
        "formants": np.where(female, 1.15, 1.0)
        * np.exp(rng.normal(0, 0.04, n_speakers)),
        "rate": np.exp(rng.normal(0, 0.08, n_speakers)),
        "level": np.exp(rng.normal(0, 0.15, n_speakers)),
    }


def _syllables(rng, n, sr, rate, pause_prob):
    """Start and length (samples) of the syllables of a clip of n samples."""
    lead, trail = rng.uniform(0.04, 0.15, 2) * sr
    n_max = int(n / sr * rate * 2) + 2
    lengths = rng.gamma(8.0, 1.0 / (8.0 * rate), n_max) * sr
    pauses = np.where(rng.random(n_max) < pause_prob, rng.uniform(0.06, 0.2, n_max), 0)
    starts = lead + np.concatenate([[0], np.cumsum(lengths + pauses * sr)[:-1]])
    keep = starts < n - trail - 0.06 * sr
    keep[0] = True
    starts, lengths = starts[keep], lengths[keep]
    lengths = np.minimum(lengths, n - trail - starts).clip(0.05 * sr)
    return starts.astype(int), lengths.astype(int)


def _control_noise(rng, n, sr):
    """Smooth unit-variance noise at the control rate, one value per sample."""
    n_ctrl = int(n / sr * _CONTROL_RATE) + 2
    ctrl = rng.standard_normal(n_ctrl, dtype=np.float32)
    return np.interp(np.arange(n) * (_CONTROL_RATE / sr), np.arange(n_ctrl), ctrl)


def _pitch_contour(rng, p, f0_base, starts, lengths, n, sr):
    """f0 in Hz for every sample: syllable targets, final movement, perturbations."""
    t = np.arange(n, dtype=np.float32)
    targets = p.pitch_range * rng.normal(0, 0.5, len(starts))
    semitones = np.interp(t, starts + lengths / 2, targets).astype(np.float32)
    semitones += np.float32(p.final) * (t / n) ** 2
    if p.tremor:
        phase = np.float32(2 * np.pi * 5.5 / sr) * t + np.float32(rng.uniform(0, 6.3))
        semitones += np.float32(p.tremor) * np.sin(phase)
    f0 = np.exp(semitones * np.float32(np.log(2) / 12))
    f0 *= np.float32(f0_base * p.pitch)
    f0 *= 1 + np.float32(p.jitter) * _control_noise(rng, n, sr).astype(np.float32)
    return f0.clip(55.0, 600.0)


def _glottal_source(f0, sr, tilt):
    """Band-limited pulse train (closed-form sum of harmonics), then tilted."""
    phase = np.cumsum(f0, dtype=np.float64) / sr
    half_theta = (np.pi * (phase - np.floor(phase))).astype(np.float32)
    n_harm = np.floor(np.float32(0.45 * sr) / f0)
    den = np.sin(half_theta)
    small = den < 1e-4
    den[small] = 1.0
    ratio = np.sin((2 * n_harm + 1) * half_theta) / den
    ratio[small] = 2 * n_harm[small] + 1
    pulses = (ratio - 1) / (2 * n_harm)
    return lfilter([1 - tilt], [1, -tilt], pulses).astype(np.float32)


def _envelope(rng, starts, lengths, n):
    """Syllable amplitude envelope (zero in pauses) and per-sample syllable index."""
    t = np.arange(n)
    idx = np.searchsorted(starts, t, side="right") - 1
    idx[idx < 0] = 0
    offset = t - starts[idx]
    pos = offset.astype(np.float32) / lengths[idx]
    voiced = (offset >= 0) & (pos < 1)
    gain = np.exp(rng.normal(0, 0.25, len(starts))).astype(np.float32)
    env = np.sqrt(np.sin(np.float32(np.pi) * pos).clip(0)) * gain[idx]
    env[~voiced] = 0.0
    return env, idx, offset


def _vowel_filter(rng, formant_scale, sr):
    """Denominator and gain of three cascaded formant resonators for one vowel.

    The gain brings the response at the strongest formant to 1, so vowels have
    comparable loudness.
    """
    freqs = _VOWELS[rng.integers(len(_VOWELS))] * formant_scale
    freqs = np.minimum(freqs * np.exp(rng.normal(0, 0.03, 3)), 0.45 * sr)
    radii = np.exp(-np.pi * _BANDWIDTHS / sr)
    a = np.array([1.0])
    for r, f in zip(radii, freqs, strict=True):
        a = np.convolve(a, [1, -2 * r * np.cos(2 * np.pi * f / sr), r * r])
    response = np.polyval(a[::-1], np.exp(-2j * np.pi * freqs / sr))
    return a, np.abs(response).min()


def _formant_filter(x, rng, starts, formant_scale, sr):
    """Filter each syllable through its own vowel's formant resonators.

    Every syllable (with the pause after it) is filtered from rest and its
    ringing overlap-added onto the next one: the excitation is silent at
    syllable boundaries, so this is exact there and switching filters makes
    no click.
    """
    tail = int(0.03 * sr)
    y = np.zeros(len(x) + tail, dtype=x.dtype)
    bounds = np.append(starts, len(x))
    bounds[0] = 0
    for k in range(len(starts)):
        a, gain = _vowel_filter(rng, formant_scale, sr)
        segment = np.concatenate([x[bounds[k] : bounds[k + 1]], np.zeros(tail)])
        y[bounds[k] : bounds[k + 1] + tail] += lfilter([gain], a, segment)
    return y[: len(x)]


def _bursts(rng, noise, idx, offset, env, sr):
    """Consonant-like noise bursts at the onset of some syllables."""
    has_burst = (rng.random(idx[-1] + 1) < 0.6).astype(np.float32)
    decay = np.exp(offset.clip(0) * np.float32(-1 / (0.012 * sr)), dtype=np.float32)
    return np.float32(0.05) * noise * decay * has_burst[idx] * (env > 0)


def _synthesize(rng, p, voice, n, sr, noise_level):
    """One clip of n samples for the prosody ``p`` and the speaker ``voice``."""
    starts, lengths = _syllables(rng, n, sr, p.rate * voice["rate"], p.pauses)
    f0 = _pitch_contour(rng, p, voice["f0"], starts, lengths, n, sr)
    source = _glottal_source(f0, sr, p.tilt)
    source *= (1 + p.shimmer * _control_noise(rng, n, sr)).astype(np.float32) / (
        np.abs(source).max() + 1e-12
    )
    noise = rng.standard_normal(n, dtype=np.float32)
    env, idx, offset = _envelope(rng, starts, lengths, n)
    excitation = (source + np.float32(p.breath) * noise) * env
    speech = _formant_filter(excitation, rng, starts, voice["formants"], sr)
    speech = np.diff(speech, prepend=np.float32(0))  # lip radiation, +6 dB/octave
    speech /= np.abs(speech).max() + 1e-12
    speech += _bursts(rng, np.roll(noise, n // 2), idx, offset, env, sr)
    level = min(p.level * voice["level"] * np.exp(rng.normal(0, 0.15)), 0.95)
    speech *= np.float32(level / (np.abs(speech).max() + 1e-12))
    speech += np.float32(noise_level) * rng.standard_normal(n, dtype=np.float32)
    return np.clip(speech, -1.0, 1.0).astype(np.float32, copy=False)


def make_emotional_speech(
    n_samples=200,
    *,
    n_classes=4,
    n_speakers=8,
    sr=16000,
    min_duration=1.0,
    max_duration=2.5,
    noise_level=0.01,
    random_state=None,
    return_X_y=False,
):
    """Generate SYNTHETIC speech-like clips of emotion classes (not real speech).

    Each clip is a sequence of vowel-like syllables made by a source-filter
    model: a band-limited glottal pulse train whose f0 follows a class-dependent
    contour, a spectral tilt, three time-varying formant resonators (one vowel
    per syllable), a syllable-rate envelope with pauses, consonant-like noise
    bursts, aspiration and additive noise. Classes differ in prosody (pitch
    level and range, speaking rate, loudness, spectral tilt, jitter, shimmer,
    breathiness, final pitch movement, tremor), drawn around a class mean for
    every clip, so they are learnable but overlap. Speakers differ in base
    pitch, formant scaling, speaking rate and loudness.

    **The clips are synthetic, not speech**: use them for demos and tests only.

    Parameters
    ----------
    n_samples : int >= 1, default=200
        Number of clips. Classes and speakers are balanced: clip ``i`` (before
        shuffling) has class ``i % n_classes``.
    n_classes : int, 2 <= n_classes <= 8, default=4
        Number of emotion classes: the first ``n_classes`` of neutral, happy,
        sad, angry, fearful, disgust, surprised and calm.
    n_speakers : int >= 1, default=8
        Number of synthetic speakers (even ids female-like, odd male-like).
    sr : int >= 8000, default=16000
        Sample rate in Hz.
    min_duration, max_duration : float, default=1.0, 2.5
        Range of the clip durations in seconds (uniform),
        ``0.2 <= min_duration <= max_duration``.
    noise_level : float in [0, 1), default=0.01
        Standard deviation of the additive white noise.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output; an int always gives the same clips.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    bunch : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with:

        data : list of ndarray of shape (n_samples_i,), dtype float32
            The clips, in ``[-1, 1]``, of varying length.
        target : ndarray of shape (n_samples,), dtype str
            Emotion names.
        speaker : ndarray of shape (n_samples,), dtype int
            Speaker ids, the groups for speaker-independent cross-validation.
        target_names : ndarray of shape (n_classes,), dtype str
            The class names.
        DESCR : str
            Description of the generator (synthetic data).

    (data, target) : tuple if ``return_X_y`` is True

    Examples
    --------
    >>> from sklearn_tser.datasets import make_emotional_speech
    >>> X, y = make_emotional_speech(n_samples=8, random_state=0, return_X_y=True)
    >>> len(X), sorted(str(label) for label in set(y))
    (8, ['angry', 'happy', 'neutral', 'sad'])
    """
    n_samples = check_integer(n_samples, "n_samples", low=1)
    n_classes = check_integer(n_classes, "n_classes", low=2, high=len(EMOTIONS))
    n_speakers = check_integer(n_speakers, "n_speakers", low=1)
    sr = check_integer(sr, "sr", low=8000)
    _check_durations(min_duration, max_duration, noise_level)
    random_state = check_random_state(random_state)

    classes = np.arange(n_samples) % n_classes
    speaker = (np.arange(n_samples) // n_classes) % n_speakers
    order = random_state.permutation(n_samples)
    classes, speaker = classes[order], speaker[order]
    voices = _make_speakers(random_state, n_speakers)
    seeds = random_state.randint(np.iinfo(np.int32).max, size=n_samples)
    lengths = random_state.uniform(min_duration, max_duration, n_samples) * sr

    data = []
    for c, s, seed, n in zip(classes, speaker, seeds, lengths.astype(int), strict=True):
        rng = np.random.default_rng(seed)
        p = _jitter_prosody(rng, _PROSODY[EMOTIONS[c]])
        voice = {key: values[s] for key, values in voices.items()}
        data.append(_synthesize(rng, p, voice, n, sr, noise_level))
    target = np.asarray(EMOTIONS, dtype=str)[classes]
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        speaker=speaker,
        target_names=np.asarray(EMOTIONS[:n_classes], dtype=str),
        DESCR=DESCR,
    )


def _jitter_prosody(rng, p):
    """Draw the settings of one clip around the class means."""
    scale = np.exp(rng.normal(0, 0.08, 9))
    return _Prosody(
        pitch=p.pitch * scale[0],
        pitch_range=p.pitch_range * scale[1],
        rate=p.rate * scale[2],
        level=p.level * scale[3],
        tilt=min(p.tilt * scale[4] ** 0.2, 0.98),
        jitter=p.jitter * scale[5],
        shimmer=p.shimmer * scale[6],
        final=p.final + rng.normal(0, 1.0),
        breath=p.breath * scale[7],
        tremor=p.tremor * scale[8],
        pauses=p.pauses,
    )
