import pickle
import warnings

import librosa
import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from sklearn_tser import LogMelTransformer, n_valid_frames
from sklearn_tser import _spectrogram as spectrogram

# The batched torch computation differs from librosa's float32 numpy one only by
# rounding; on real clips the largest difference seen is 7e-4 dB.
ATOL_DB = 2e-3


def librosa_log_mel(y, tr):
    S = librosa.feature.melspectrogram(
        y=y,
        sr=tr.sr,
        n_fft=tr.n_fft,
        win_length=tr.win_length,
        hop_length=tr.hop_length,
        window=tr.window,
        center=tr.center,
        pad_mode=tr.pad_mode,
        power=tr.power,
        n_mels=tr.n_mels,
        fmin=tr.fmin,
        fmax=tr.fmax,
        htk=tr.htk,
        norm=tr.norm,
    )
    return librosa.power_to_db(S, ref=1.0, amin=tr.amin, top_db=tr.top_db)


@pytest.fixture(scope="module")
def waveforms(ravdess_files):
    return [sf.read(f, dtype="float32")[0] for f in ravdess_files]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"n_mels": 40, "n_fft": 1024, "win_length": None, "hop_length": 256},
        {"center": False, "power": 1.0, "top_db": None},
        {"htk": True, "fmin": 60.0, "fmax": 7600.0, "pad_mode": "reflect"},
        {"window": "hamming", "norm": None, "top_db": 40.0},
    ],
)
def test_matches_librosa_on_real_clips(waveforms, params):
    tr = LogMelTransformer(**params)
    S = tr.fit_transform(waveforms)
    lengths = n_valid_frames(S)
    assert S.dtype == np.float32
    assert S.shape == (len(waveforms), tr.n_mels, lengths.max())
    for i, y in enumerate(waveforms):
        ref = librosa_log_mel(y, tr)
        assert lengths[i] == ref.shape[1] == tr.n_frames(len(y))
        np.testing.assert_allclose(S[i, :, : lengths[i]], ref, atol=ATOL_DB, rtol=0)
        # NaN appears only after the clip's last frame, and everywhere there.
        assert np.isfinite(S[i, :, : lengths[i]]).all()
        assert np.isnan(S[i, :, lengths[i] :]).all()


def test_paths_give_the_same_features_as_waveforms(ravdess_files, waveforms):
    tr = LogMelTransformer()
    np.testing.assert_array_equal(
        tr.transform(ravdess_files[:4]), tr.transform(waveforms[:4])
    )


@pytest.mark.parametrize("batch_size", [1, 5, "auto"])
def test_chunking_does_not_change_the_result(waveforms, batch_size):
    # batch_size=1 transforms every clip alone; 5 and "auto" lay several clips
    # end to end in one signal. Each must match librosa clip by clip.
    tr = LogMelTransformer(batch_size=batch_size)
    S = tr.transform(waveforms)
    for i, y in enumerate(waveforms):
        n = tr.n_frames(len(y))
        np.testing.assert_allclose(
            S[i, :, :n], librosa_log_mel(y, tr), atol=ATOL_DB, rtol=0
        )
        assert np.isnan(S[i, :, n:]).all()


@pytest.mark.parametrize("batch_size", [1, "auto"])
@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_a_clip_longer_than_a_chunk_is_transformed_in_pieces(
    waveforms, batch_size, pad_mode
):
    # 40 s of speech: 4001 frames, more than one chunk (501 frames for
    # batch_size=1, 2048 for "auto"). Its loud start sets the top_db floor of
    # the quiet pieces after it, so the floor must span all pieces.
    loud = np.concatenate(waveforms)[: 16000 * 10]
    quiet = np.tile(waveforms[0], 10)[: 16000 * 30] * 1e-3
    y = np.concatenate([loud / np.abs(loud).max(), quiet]).astype(np.float32)
    short = waveforms[1]
    tr = LogMelTransformer(batch_size=batch_size, pad_mode=pad_mode, top_db=50.0)
    S = tr.transform([short, y, short])
    ref = librosa_log_mel(y, tr)
    assert ref.min() == pytest.approx(ref.max() - 50.0)  # the floor is active
    np.testing.assert_allclose(S[1], ref, atol=ATOL_DB, rtol=0)
    n = tr.n_frames(len(short))
    np.testing.assert_allclose(S[0, :, :n], librosa_log_mel(short, tr), atol=ATOL_DB)
    np.testing.assert_array_equal(S[0], S[2])


@pytest.mark.filterwarnings("ignore:n_fft=512 is too large")
@pytest.mark.parametrize("center", [True, False])
def test_short_and_long_clips_packed_together_match_librosa(center):
    # Reflect padding of clips shorter than, equal to and just above n_fft // 2,
    # packed in one chunk with longer clips (no corpus needed, so CI runs it).
    rng = np.random.default_rng(0)
    lengths = (16000, 1, 2, 255, 256, 257, 23456, 600)
    clips = [rng.standard_normal(n).astype(np.float32) for n in lengths]
    tr = LogMelTransformer(pad_mode="reflect", center=center)
    S = tr.transform(clips)
    for i, y in enumerate(clips):
        if not center and len(y) < tr.n_fft:
            y = np.pad(y, (0, tr.n_fft - len(y)))
        ref = librosa_log_mel(y, tr)
        np.testing.assert_allclose(S[i, :, : ref.shape[1]], ref, atol=ATOL_DB)


@pytest.mark.parametrize("output", ["padded", "ragged"])
@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("n_fft, hop_length", [(321, 160), (511, 160), (401, 100)])
def test_odd_n_fft_gives_librosas_frames(n_fft, hop_length, center, output):
    # An odd window is padded by n_fft // 2 on each side, one sample fewer than
    # n_fft in all: one frame fewer than an even window's whenever the length
    # is a multiple of the hop. Lengths on, just under and just over it.
    rng = np.random.default_rng(1)
    lengths = (1600, 1599, 1601, 16000, 4321)
    clips = [rng.uniform(-0.5, 0.5, n).astype(np.float32) for n in lengths]
    tr = LogMelTransformer(
        n_fft=n_fft, win_length=None, hop_length=hop_length, center=center
    )
    S = tr.set_params(output=output).transform(clips)
    for i, y in enumerate(clips):
        if not center and len(y) < n_fft:
            y = np.pad(y, (0, n_fft - len(y)))
        ref = librosa_log_mel(y, tr)
        n = tr.n_frames(lengths[i])
        assert n == ref.shape[1]
        got = S[i] if output == "ragged" else S[i, :, :n]
        np.testing.assert_allclose(got, ref, atol=ATOL_DB, rtol=0)
        if output == "padded":
            assert np.isnan(S[i, :, n:]).all()


def test_max_frames_centre_crops_and_pads(waveforms):
    full = LogMelTransformer().transform(waveforms[:2])
    n = n_valid_frames(full)
    k = int(n.min()) - 10
    cropped = LogMelTransformer(max_frames=k).transform(waveforms[:2])
    assert cropped.shape[2] == k
    for i in range(2):
        offset = (n[i] - k) // 2
        np.testing.assert_array_equal(cropped[i], full[i, :, offset : offset + k])
    padded = LogMelTransformer(max_frames=int(n.max()) + 7).transform(waveforms[:2])
    assert padded.shape[2] == n.max() + 7
    assert np.isnan(padded[:, :, n.max() :]).all()


@pytest.mark.parametrize("center", [True, False])
def test_clip_shorter_than_a_window_gives_one_finite_frame(center):
    tr = LogMelTransformer(center=center)
    S = tr.transform([np.full(100, 0.1, np.float32), np.zeros(5000, np.float32)])
    assert n_valid_frames(S)[0] == (1 if not center else 1 + 100 // 160)
    assert np.isfinite(S[0, :, 0]).all()
    if not center:
        ref = librosa_log_mel(np.pad(np.full(100, 0.1, np.float32), (0, 412)), tr)
        np.testing.assert_allclose(S[0, :, :1], ref, atol=ATOL_DB)


def test_silence_is_valid_and_finite():
    S = LogMelTransformer().transform([np.zeros(16000)])
    assert np.isfinite(S).all()
    np.testing.assert_allclose(S, 10 * np.log10(1e-10))


def test_one_sample_clip():
    S = LogMelTransformer().transform([np.array([0.5])])
    assert S.shape == (1, 64, 1) and np.isfinite(S).all()


@pytest.mark.parametrize(
    "params, match",
    [
        ({"win_length": 1024}, "win_length=1024 is longer than n_fft=512"),
        ({"fmax": 9000}, "fmax=9000 is above the Nyquist"),
        ({"fmin": 5000, "fmax": 4000}, "fmin=5000 must be below"),
        ({"n_mels": 0}, "n_mels"),
        ({"pad_mode": "wrap"}, "pad_mode"),
        ({"device": "gpu7"}, "not a torch device"),
        ({"window": "foo"}, "window='foo' is not a window scipy.signal.get_window"),
        ({"window": "kaiser"}, "window='kaiser' is not a window .* without param"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        LogMelTransformer(**params).fit_transform([np.zeros(1000)])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_mels": 256}, "24 of 256 mel bands \\(the first: band 1\\) cover no FFT"),
        ({"fmin": 3000.0, "fmax": 3050.0}, "62 of 64 mel bands"),
    ],
)
def test_empty_mel_bands_are_warned_about_as_librosa_finds_them(params, match):
    # The bands librosa finds empty (and warns about) are those named.
    fmax = params.get("fmax", 8000.0)
    kwargs = {"n_mels": 64, "fmin": 20.0} | params | {"fmax": fmax}
    with pytest.warns(UserWarning, match="Empty filters"):
        fbank = librosa.filters.mel(sr=16000, n_fft=512, **kwargs)
    n_empty = int((fbank.max(axis=1) == 0).sum())
    assert f"{n_empty} of " in match
    with pytest.warns(UserWarning, match=match):
        LogMelTransformer(**params).fit([np.zeros(1000)])


def test_cuda_without_cuda_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="no CUDA device"):
        LogMelTransformer(device="cuda").transform([np.zeros(1000)])
    # "auto" falls back to the CPU.
    assert LogMelTransformer(device="auto").transform([np.zeros(1000)]).shape[0] == 1


def test_clone_and_pickle_keep_the_transform(waveforms):
    tr = LogMelTransformer(n_mels=32).fit(waveforms)
    expected = tr.transform(waveforms[:2])
    for other in (clone(tr), pickle.loads(pickle.dumps(tr))):
        np.testing.assert_array_equal(other.transform(waveforms[:2]), expected)


def test_n_valid_frames_ignores_inner_nan_runs():
    S = np.zeros((1, 2, 5), np.float32)
    S[0, :, 1] = np.nan  # an all-NaN frame followed by valid ones is not padding
    S[0, :, 4] = np.nan
    assert n_valid_frames(S).tolist() == [4]


# The path fixture holds for all examples, so function scope is harmless here.
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=4000),
            st.floats(min_value=0.0, max_value=1.0),
            st.integers(min_value=0, max_value=2**31),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_property_finite_features_nan_only_as_padding(specs):
    clips = [
        amp * np.random.default_rng(seed).uniform(-1, 1, n).astype(np.float32)
        for n, amp, seed in specs
    ]
    tr = LogMelTransformer(n_mels=16, batch_size=2)
    S = tr.transform(clips)
    expected = tr.n_frames(np.array([len(c) for c in clips]))
    np.testing.assert_array_equal(n_valid_frames(S), expected)
    for i, n in enumerate(expected):
        assert np.isfinite(S[i, :, :n]).all()
        assert np.isnan(S[i, :, n:]).all()


def test_fit_transform_reads_a_generator_once(waveforms):
    tr = LogMelTransformer()
    S = tr.fit_transform(clip for clip in waveforms[:3])
    np.testing.assert_array_equal(S, tr.transform(waveforms[:3]))


def test_warns_when_one_long_clip_pads_the_others(monkeypatch):
    # Thresholds lowered so that the test stays small: 1 clip of 2 s among 9
    # of 0.1 s is mostly padding.
    monkeypatch.setattr(spectrogram, "PADDING_WARN_BYTES", 1000)
    rng = np.random.default_rng(0)
    clips = [rng.normal(size=1600).astype(np.float32) * 0.1 for _ in range(9)]
    clips.append(rng.normal(size=32000).astype(np.float32) * 0.1)
    with pytest.warns(UserWarning, match=r"padded to the longest, clip 9 \(201"):
        LogMelTransformer().transform(clips)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogMelTransformer().transform(clips[:9])  # equal lengths: no padding
        LogMelTransformer(max_frames=20).transform(clips)  # cropped: no padding


@pytest.mark.parametrize("htk", [False, True])
@pytest.mark.parametrize("norm", ["slaney", None])
@pytest.mark.parametrize(
    "sr, n_fft, n_mels, fmin, fmax",
    [
        (16000, 512, 64, 20.0, None),
        (22050, 1024, 128, 0.0, 7600.0),
        (8000, 256, 40, 0, None),
    ],
)
def test_mel_filters_and_windows_are_librosas(sr, n_fft, n_mels, fmin, fmax, htk, norm):
    ours = spectrogram.mel_filters(
        sr=sr,
        n_fft=n_fft,
        n_mels=n_mels,
        fmin=fmin,
        fmax=sr / 2 if fmax is None else fmax,
        htk=htk,
        norm=norm,
    )
    ref = librosa.filters.mel(
        sr=sr,
        n_fft=n_fft,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        htk=htk,
        norm=norm,
        dtype=np.float64,
    )
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)
    for name in ["hann", "hamming", "blackman", "bartlett", "cosine"]:
        np.testing.assert_allclose(
            spectrogram.periodic_window(name, n_fft - 1),
            librosa.filters.get_window(name, n_fft - 1, fftbins=True),
            atol=1e-12,
        )


def test_warns_about_silent_short_and_overloud_clips():
    rng = np.random.default_rng(0)
    speech = rng.normal(size=16000).astype(np.float32) * 0.1
    cases = {
        "silent": [speech, np.zeros(16000, np.float32)],
        "shorter than 800 samples": [speech, speech[:400]],
        "far outside": [speech, speech * 32768],
    }
    for what, clips in cases.items():
        with pytest.warns(UserWarning, match=f"1 of 2 clips are {what}.*clip 1"):
            LogMelTransformer().transform(clips)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogMelTransformer().transform([speech, speech[:8000]])


def test_n_valid_frames_of_other_shapes():
    # A 2-D array is clips of one frame (as the classifier reads it); other
    # shapes are a clear error.
    S = np.zeros((3, 4))
    S[1] = np.nan
    np.testing.assert_array_equal(n_valid_frames(S), [1, 0, 1])
    with pytest.raises(ValueError, match=r"got a 1-D array of shape \(3,\)"):
        n_valid_frames(np.zeros(3))
    with pytest.raises(ValueError, match="look like audio waveforms"):
        n_valid_frames(np.zeros((2, 16000)))
    with pytest.raises(ValueError, match=r"clip 1 has shape \(3,\)"):
        n_valid_frames([np.zeros((2, 3)), np.zeros(3)])


@pytest.mark.filterwarnings("ignore:3000 of 3000 clips are shorter")
def test_a_recording_of_samples_by_channels_gets_a_hint():
    # soundfile.read returns (samples, channels): as X, that is many clips
    # of 2 samples, which the warning says, with the downmix to pass.
    stereo = np.random.default_rng(0).uniform(-0.1, 0.1, (3000, 2))
    for output in ("padded", "ragged"):
        with pytest.warns(UserWarning, match=r"X has shape \(3000, 2\).*mean\(axis=1"):
            LogMelTransformer(output=output).transform(stereo)
    with pytest.raises(ValueError, match=r"clip.mean\(axis=1\) for \(samples, chan"):
        LogMelTransformer().transform([stereo])


def test_odd_clip_warnings_name_files(tmp_path):
    rng = np.random.default_rng(0)
    paths = [tmp_path / "speech.wav", tmp_path / "silence.wav"]
    sf.write(paths[0], rng.normal(size=16000) * 0.1, 16000)
    sf.write(paths[1], np.zeros(16000), 16000)
    with pytest.warns(UserWarning, match=r"silent .*\(.*silence\.wav\)"):
        LogMelTransformer().transform([str(p) for p in paths])
