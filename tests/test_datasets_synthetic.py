"""Tests of make_emotional_speech, the synthetic speech-like generator."""

from collections import Counter

import numpy as np
import pytest
from scipy.fft import dct
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_tser.datasets import make_emotional_speech


def test_bunch_contents():
    bunch = make_emotional_speech(
        40,
        n_classes=4,
        n_speakers=5,
        min_duration=0.5,
        max_duration=1.5,
        random_state=0,
    )
    assert len(bunch.data) == len(bunch.target) == len(bunch.speaker) == 40
    assert list(bunch.target_names) == ["neutral", "happy", "sad", "angry"]
    assert Counter(bunch.target) == {name: 10 for name in bunch.target_names}
    assert Counter(bunch.speaker) == {s: 8 for s in range(5)}
    lengths = np.array([len(x) for x in bunch.data])
    assert lengths.min() >= 0.5 * 16000 and lengths.max() <= 1.5 * 16000
    assert len(np.unique(lengths)) > 30
    for x in bunch.data:
        assert x.dtype == np.float32 and x.ndim == 1
        assert np.isfinite(x).all() and np.abs(x).max() <= 1.0
        assert np.abs(x).max() > 0.05  # not silent
    assert "synthetic" in bunch.DESCR.lower() and "NOT real speech" in bunch.DESCR


def test_same_seed_same_clips():
    X1, y1 = make_emotional_speech(12, random_state=3, return_X_y=True)
    X2, y2 = make_emotional_speech(12, random_state=3, return_X_y=True)
    X3, _ = make_emotional_speech(12, random_state=4, return_X_y=True)
    assert list(y1) == list(y2)
    assert all(np.array_equal(a, b) for a, b in zip(X1, X2, strict=True))
    pairs = zip(X1, X3, strict=True)
    assert not all(len(a) == len(b) and np.array_equal(a, b) for a, b in pairs)
    rs = np.random.RandomState(3)
    X4, _ = make_emotional_speech(12, random_state=rs, return_X_y=True)
    assert all(np.array_equal(a, b) for a, b in zip(X1, X4, strict=True))


@pytest.mark.parametrize("n_classes", [2, 8])
def test_n_classes(n_classes):
    bunch = make_emotional_speech(n_classes, n_classes=n_classes, random_state=0)
    expected = ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
    expected += ["surprised", "calm"]
    assert list(bunch.target_names) == expected[:n_classes]
    assert sorted(bunch.target) == sorted(expected[:n_classes])


def test_other_sample_rate_and_no_noise():
    X, _ = make_emotional_speech(
        3,
        sr=8000,
        noise_level=0.0,
        min_duration=1,
        max_duration=1,
        random_state=0,
        return_X_y=True,
    )
    assert [len(x) for x in X] == [8000] * 3
    assert all(np.abs(x[:50]).max() < 1e-3 for x in X)  # leading silence


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 0}, "n_samples must be an integer >= 1"),
        ({"n_classes": 1}, "n_classes must be an integer from 2 to 8"),
        ({"n_classes": 9}, "n_classes must be an integer from 2 to 8"),
        ({"n_classes": 2.0}, "n_classes must be an integer"),
        ({"n_speakers": 0}, "n_speakers"),
        ({"sr": 4000}, "sr must be an integer >= 8000"),
        ({"min_duration": 3.0}, "min_duration <= max_duration"),
        ({"min_duration": 0.0}, "0.2 <= min_duration"),
        ({"noise_level": -0.1}, "noise_level"),
    ],
)
def test_invalid_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_emotional_speech(**{"n_samples": 4, **kwargs})


def _mfcc_stats(y, sr=16000, n_fft=512, hop=256, n_bands=40):
    """Mean and std of 13 cepstral coefficients of log band energies."""
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2
    edges = np.geomspace(60, sr / 2, n_bands + 1) * n_fft / sr
    bands = np.add.reduceat(power, edges[:-1].astype(int), axis=1)[:, :n_bands]
    cepstrum = dct(np.log(bands + 1e-10), axis=1, norm="ortho")[:, :13]
    return np.r_[cepstrum.mean(0), cepstrum.std(0)]


def test_classes_are_learnable_across_speakers():
    bunch = make_emotional_speech(96, n_speakers=8, random_state=0)
    features = np.array([_mfcc_stats(x) for x in bunch.data])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    scores = cross_val_score(
        model, features, bunch.target, groups=bunch.speaker, cv=GroupKFold(4)
    )
    assert scores.mean() > 0.45  # chance is 0.25


def test_prosody_differs_between_classes():
    """Sad clips are quieter and lower-pitched than angry ones."""
    bunch = make_emotional_speech(40, n_classes=4, noise_level=0.0, random_state=1)
    rms = np.array([np.sqrt(np.mean(x**2)) for x in bunch.data])
    f0 = np.array([_autocorrelation_f0(x) for x in bunch.data])
    sad, angry = bunch.target == "sad", bunch.target == "angry"
    assert rms[sad].mean() < rms[angry].mean()
    assert np.median(f0[sad]) < np.median(f0[angry])


def _autocorrelation_f0(y, sr=16000):
    """Rough f0 of the loudest 40 ms frame, from its autocorrelation peak."""
    frame = 640
    energy = np.convolve(y**2, np.ones(frame), mode="valid")[::frame]
    start = int(np.argmax(energy)) * frame
    seg = y[start : start + frame] - y[start : start + frame].mean()
    ac = np.correlate(seg, seg, mode="full")[frame - 1 :]
    lo, hi = sr // 600, sr // 55
    return sr / (lo + np.argmax(ac[lo:hi]))
