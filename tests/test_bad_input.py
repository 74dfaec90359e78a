"""A catalogue of bad input: every case gets a clear error, never a NaN result.

Each case names the estimator (or loader) call, the exception type and a pattern
of its message: what is wrong and, where it applies, the clip index or the path.
No case may surface a raw torch or numpy error.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from _params import TINY as TINY_BASE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline

from sklearn_tser import EmotionEmbeddingClassifier, LogMelTransformer, n_valid_frames
from sklearn_tser.datasets import load_emotion_folder, load_iemocap, load_ravdess

TINY = {**TINY_BASE, "pretrain_epochs": 1}
CORRUPT_WAV = b"RIFF1234WAVEgarbage" * 10


def spectrograms(n=30, n_mels=12, n_frames=20, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(["angry", "happy", "sad"])[np.arange(n) % 3]
    X = rng.standard_normal((n, n_mels, n_frames)).astype(np.float32)
    X[::3, :, 15:] = np.nan  # padding of shorter clips
    return X, y


@pytest.fixture(scope="module")
def fitted():
    return EmotionEmbeddingClassifier(**TINY).fit(*spectrograms())


@pytest.fixture
def files(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "corrupt.wav").write_bytes(CORRUPT_WAV)
    return tmp_path


def assert_clear_error(call, error, match):
    with pytest.raises(error, match=match) as info:
        call()
    assert not type(info.value).__module__.startswith(("torch", "numpy"))
    return str(info.value)


def with_value(index, value):
    X, _ = spectrograms()
    X = X.astype(np.float64)
    X[index] = value
    return X


# ----------------------------------------------------------- LogMelTransformer

CLIP = np.zeros(800, dtype=np.float32)
AUDIO_CASES = {
    "nan sample": (
        [CLIP, np.r_[CLIP, np.nan]],
        ValueError,
        r"Clip 1 holds 1 NaN or infinite samples \(first at sample 800\)",
    ),
    "inf sample": ([np.r_[np.inf, CLIP]], ValueError, "Clip 0 holds 1 NaN or inf"),
    "empty clip": ([CLIP, CLIP[:0]], ValueError, r"Clip 1 is empty \(0 samples\)"),
    "no clips": ([], ValueError, "X holds no clips"),
    "0 samples per row": (np.zeros((3, 0)), ValueError, r"0 feature\(s\)"),
    "stereo clip": ([np.zeros((2, 800))], ValueError, r"Clip 0 has shape.*downmix"),
    "stereo batch": (np.zeros((4, 2, 800)), ValueError, "3 dimensions.*downmixed"),
    "1-D array": (CLIP, ValueError, "1-D array of 800 numbers.*Reshape your data"),
    "complex": ([CLIP.astype(complex)], ValueError, "Complex data not supported"),
    "sparse": (sp.csr_matrix(np.ones((2, 800))), TypeError, "Sparse input"),
    "non-numeric": ([np.array([0.1, {}], dtype=object)], TypeError, "non-numeric"),
    "strings": ([np.array(["a", "b"])], TypeError, "Clip 0 has dtype <U1"),
    "booleans": ([np.ones(8, dtype=bool)], TypeError, "floating-point"),
    "single path": ("clip.wav", TypeError, r"Wrap it in a list: \[path\]"),
    "None": (None, TypeError, "sequence of clips"),
}


@pytest.mark.parametrize("method", ["fit", "transform", "fit_transform"])
@pytest.mark.parametrize("case", AUDIO_CASES)
def test_log_mel_bad_audio(case, method):
    X, error, match = AUDIO_CASES[case]
    assert_clear_error(lambda: getattr(LogMelTransformer(), method)(X), error, match)


@pytest.mark.parametrize(
    "name, error, match",
    [
        ("nope.wav", FileNotFoundError, r"Clip 1: Audio file .*nope.wav' does not"),
        ("empty.wav", ValueError, r"Clip 1: Audio file .*empty.wav' is empty \(0 b"),
        ("corrupt.wav", ValueError, r"Clip 1: Could not decode .*corrupt.wav'"),
        ("", ValueError, r"Clip 1: Audio file .* is a directory"),
    ],
)
def test_log_mel_bad_files(files, name, error, match):
    X = [CLIP, files / name]
    assert_clear_error(lambda: LogMelTransformer().transform(X), error, match)
    if name != "corrupt.wav":  # fit checks files exist without decoding them
        assert_clear_error(lambda: LogMelTransformer().fit(X), error, match)
    # A missing file is also a ValueError, like every other bad clip.
    assert_clear_error(lambda: LogMelTransformer().transform(X), ValueError, match)


def test_clip_shorter_than_one_window_gives_one_finite_frame(fitted):
    short = np.random.default_rng(0).uniform(-0.5, 0.5, 100).astype(np.float32)
    S = LogMelTransformer(n_mels=12).transform([short, np.r_[short, short, short]])
    assert S.shape == (2, 12, 2)
    np.testing.assert_array_equal(n_valid_frames(S), [1, 2])
    assert np.isfinite(S[0, :, 0]).all() and np.isnan(S[0, :, 1]).all()
    pipe = make_pipeline(LogMelTransformer(n_mels=12), fitted)
    assert pipe.predict([short]).shape == (1,)
    assert np.isfinite(pipe.predict_proba([short])).all()


def test_integer_pcm_is_scaled_like_soundfile():
    rng = np.random.default_rng(0)
    pcm = (rng.uniform(-0.5, 0.5, 4000) * 32768).astype(np.int16)
    tr = LogMelTransformer(n_mels=16)
    np.testing.assert_allclose(
        tr.transform([pcm]), tr.transform([pcm / np.float32(32768)]), atol=1e-3
    )
    pcm32 = pcm.astype(np.int32) << 16  # the same signal as 32-bit PCM
    np.testing.assert_allclose(tr.transform([pcm32]), tr.transform([pcm]), atol=1e-3)


def _clip(n, dtype, bad, seed, amplitude):
    rng = np.random.default_rng(seed)
    y = amplitude * rng.uniform(-1, 1, n)
    if dtype == "int16":
        return (y * 32767).astype(np.int16)
    y = y.astype(dtype)
    if bad is not None and n:
        y[rng.integers(n)] = float(bad)
    return y


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2500),
            st.sampled_from(["float32", "float64", "int16"]),
            st.sampled_from([None, None, None, "nan", "inf", "-inf"]),
            st.integers(min_value=0, max_value=2**31),
            st.floats(min_value=0.0, max_value=1.0),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_property_random_waveform_lists(specs):
    """Random lists of clips: a clear error naming the first bad clip, or valid,
    finite, NaN-padded features equal to those of each clip alone."""
    clips = [_clip(*spec) for spec in specs]
    bad = [
        i
        for i, (c, (n, dtype, value, *_)) in enumerate(zip(clips, specs, strict=True))
        if n == 0 or (value is not None and dtype != "int16")
    ]
    tr = LogMelTransformer(n_mels=16, batch_size=3)
    if bad:
        for method in (tr.fit, tr.transform):
            with pytest.raises(ValueError, match=rf"^Clip {bad[0]} (is empty|holds)"):
                method(clips)
        return
    S = tr.fit(clips).transform(clips)
    assert S.dtype == np.float32 and S.shape[:2] == (len(clips), 16)
    lengths = tr.n_frames(np.array([len(c) for c in clips]))
    np.testing.assert_array_equal(n_valid_frames(S), lengths)
    for i, (clip, n) in enumerate(zip(clips, lengths, strict=True)):
        assert np.isfinite(S[i, :, :n]).all()
        assert np.isnan(S[i, :, n:]).all()
        alone = tr.transform([clip])[0]
        np.testing.assert_allclose(S[i, :, :n], alone, atol=1e-3)


# ------------------------------------------------- EmotionEmbeddingClassifier

X0, Y0 = spectrograms()
PREDICT_CASES = {
    "nan inside a clip": (
        lambda: with_value((4, 2, 3), np.nan),
        ValueError,
        "Clip 4 of X holds NaN values inside its valid frames",
    ),
    "nan frame before valid frames": (
        lambda: with_value((5, slice(None), 0), np.nan),
        ValueError,
        "Clip 5 of X holds NaN values inside its valid frames",
    ),
    "inf": (lambda: with_value((2, 0, 0), np.inf), ValueError, "Clip 2 .* infinite"),
    "all padding": (
        lambda: with_value(7, np.nan),
        ValueError,
        "Clip 7 of X has no valid frame",
    ),
    "beyond float32": (
        lambda: with_value((3, 1, 1), 1e300),
        ValueError,
        "Clip 3 of X holds values beyond the float32 range",
    ),
    "1-D": (lambda: X0[0, 0], ValueError, "got a 1-D array.*Reshape your data"),
    "4-D": (lambda: X0[None], ValueError, r"shape \(1, 30, 12, 20\).*LogMelTrans"),
    "no clips": (lambda: X0[:0], ValueError, "got 0 clips"),
    "no mel bands": (lambda: X0[:, :0], ValueError, r"0 feature\(s\)"),
    "raw audio": (
        lambda: [np.zeros(800), np.zeros(1600)],
        ValueError,
        "different shapes.*raw audio.*LogMelTransformer",
    ),
    "2-D waveforms": (
        lambda: np.zeros((30, 16000), dtype=np.float32),
        ValueError,
        r"16000 values per clip look like audio waveforms.*LogMelTransformer before",
    ),
    "file paths": (lambda: ["a.wav"], TypeError, r"Clip 0 of X is a path \('a.wav'"),
    "sparse": (lambda: sp.csr_matrix(X0[:, :, 0]), TypeError, "Sparse input"),
    "complex": (lambda: X0.astype(complex), ValueError, "Complex data not supported"),
    "strings": (lambda: X0.astype(str), TypeError, "dtype <U"),
    "other n_mels": (
        lambda: X0[:, :10],
        ValueError,
        "X has 10 features, but EmotionEmbeddingClassifier is expecting 12 .*n_mels",
    ),
}


@pytest.mark.parametrize(
    "method", ["predict", "predict_proba", "decision_function", "transform", "fit"]
)
@pytest.mark.parametrize("case", PREDICT_CASES)
def test_classifier_bad_spectrograms(fitted, case, method):
    make_X, error, match = PREDICT_CASES[case]
    X = make_X()
    if method == "fit":
        if case == "other n_mels":
            return  # any n_mels is valid at fit time
        y = Y0[: X.shape[0] if hasattr(X, "shape") else len(X)]
        call = lambda: EmotionEmbeddingClassifier(**TINY).fit(X, y)  # noqa: E731
    else:
        call = lambda: getattr(fitted, method)(X)  # noqa: E731
    assert_clear_error(call, error, match)


def test_out_of_range_input_never_gives_nan_predictions(fitted):
    # Finite float32 values far beyond log-mel dB overflow inside the network.
    X = X0 * np.float32(1e30)
    assert_clear_error(
        lambda: fitted.predict(X), ValueError, "Clip 0 of X gives a non-finite"
    )


TARGET_CASES = {
    "length mismatch": (Y0[:-1], ValueError, "X has 30 clips but y has 29 labels"),
    "single class": (np.zeros(30), ValueError, "single class.*at least two"),
    "y is None": (None, ValueError, "requires y to be passed"),
    "2-D y": (np.zeros((30, 2)), ValueError, "y should be a 1d array"),
    "continuous y": (np.linspace(0, 1, 30), ValueError, "Unknown label type"),
    "nan label": (np.r_[np.nan, np.arange(29) % 2], ValueError, "y contains NaN"),
}


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # sklearn's
@pytest.mark.parametrize("case", TARGET_CASES)
def test_classifier_bad_targets(case):
    y, error, match = TARGET_CASES[case]
    clf = EmotionEmbeddingClassifier(**TINY)
    assert_clear_error(lambda: clf.fit(X0, y), error, match)
    assert not any(k.endswith("_") for k in vars(clf))  # left cleanly unfitted


def test_column_vector_y_warns_and_fits():
    from sklearn.exceptions import DataConversionWarning

    clf = EmotionEmbeddingClassifier(**{**TINY, "pretrain_epochs": 1})
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        clf.set_params(triplet_epochs=0).fit(X0, Y0[:, None])
    assert list(clf.classes_) == ["angry", "happy", "sad"]


def test_groups_of_the_wrong_length():
    clf = EmotionEmbeddingClassifier(**TINY)
    assert_clear_error(
        lambda: clf.fit(X0, Y0, groups=[1, 2]), ValueError, r"groups has shape \(2,\)"
    )


class _NA:
    """A missing value as pandas' NA is: its comparisons are neither true nor
    false (pandas is not needed by the tests)."""

    def __ne__(self, other):
        return self

    def __bool__(self):
        raise TypeError("boolean value of NA is ambiguous")

    def __str__(self):
        return "<NA>"


@pytest.mark.parametrize(
    "groups, error, match",
    [
        ([None, 1] * 15, ValueError, r"groups\[0\] is None \(15 clips have no"),
        (
            np.array(["a", _NA()] * 15, dtype=object),
            ValueError,
            r"groups\[1\] is <NA> \(15 clips have no",
        ),
        ([1.0, np.nan] * 15, ValueError, r"groups\[1\] is nan \(15 clips have no"),
        (np.array(["a", 1] * 15, dtype=object), TypeError, r"mixes .*\['int', 'str'\]"),
    ],
)
def test_groups_with_missing_or_mixed_values(groups, error, match):
    # A speaker column with missing values, as pandas gives it.
    clf = EmotionEmbeddingClassifier(**TINY, validation_fraction=0.2)
    assert_clear_error(lambda: clf.fit(X0, Y0, groups=groups), error, match)
    assert not any(k.endswith("_") for k in vars(clf))


def test_predict_before_fit():
    for method in ["predict", "predict_proba", "decision_function", "transform"]:
        with pytest.raises(NotFittedError, match="not fitted yet"):
            getattr(EmotionEmbeddingClassifier(), method)(X0)


def test_labels_of_another_type_at_score_time(fitted):
    # Fitted on strings: integer labels are a clear error, unseen strings score 0.
    assert_clear_error(
        lambda: fitted.score(X0, np.arange(30) % 3), ValueError, "Mix of label"
    )
    assert fitted.score(X0, np.full(30, "bored")) == 0.0


def test_warm_start_with_other_classes_keeps_the_model(fitted):
    import copy

    clf = copy.deepcopy(fitted).set_params(warm_start=True)
    before = clf.predict(X0)
    y = np.array(["angry", "happy", "calm"])[np.arange(30) % 3]
    assert_clear_error(
        lambda: clf.fit(X0, y), ValueError, r"classes of the first fit \['angry'"
    )
    np.testing.assert_array_equal(clf.predict(X0), before)


def test_a_class_with_one_clip_is_sampled_with_replacement():
    """Triplets need two clips of a class: a single clip is repeated (with other
    crops and masks), as the docstring of n_samples_per_class documents."""
    X, y = spectrograms(n=21)
    y = y.astype(object)
    y[-1] = "calm"  # one clip of "calm"
    clf = EmotionEmbeddingClassifier(**{**TINY, "crop_frames": 12}).fit(X, y)
    assert list(clf.classes_) == ["angry", "calm", "happy", "sad"]
    assert np.isfinite(clf.centroids_).all()
    assert clf.predict(X[-1:]).shape == (1,)
    assert any("train_loss" in row for row in clf.net_.history[-1:])


# -------------------------------------------------------------------- loaders


def test_loaders_refuse_a_directory_that_is_not_a_corpus(files):
    (files / "notes.txt").write_text("not audio")
    assert_clear_error(
        lambda: load_ravdess(files), ValueError, "is not a RAVDESS corpus.*Actor_01"
    )
    assert_clear_error(
        lambda: load_ravdess(files / "nope"), FileNotFoundError, "does not exist"
    )
    assert_clear_error(
        lambda: load_ravdess(files / "notes.txt"), ValueError, "is not a directory"
    )
    assert_clear_error(
        lambda: load_iemocap(files), ValueError, "is not an IEMOCAP release"
    )
    assert_clear_error(
        lambda: load_emotion_folder(files), ValueError, "have no label|no sub-folder"
    )
    (files / "empty.wav").unlink()
    (files / "corrupt.wav").unlink()
    assert_clear_error(
        lambda: load_emotion_folder(files), ValueError, "has no sub-folder"
    )


@pytest.mark.parametrize(
    "content, match",
    [(b"", r"angry/x.wav' is empty \(0 bytes\)"), (CORRUPT_WAV, "Could not decode")],
)
def test_loaders_name_a_zero_byte_or_corrupt_file(tmp_path, content, match):
    (tmp_path / "angry").mkdir()
    (tmp_path / "angry" / "x.wav").write_bytes(content)
    assert len(load_emotion_folder(tmp_path).data) == 1  # paths only: no decoding
    assert_clear_error(
        lambda: load_emotion_folder(tmp_path, load_audio=True), ValueError, match
    )


@pytest.mark.parametrize(
    "change, match",
    [
        ({"width": 16}, r"width: 8 -> 16"),
        ({"n_layers": 9}, r"n_layers: 6 -> 9"),
        ({"n_networks": 2}, r"n_networks: 1 -> 2"),
    ],
)
def test_warm_start_cannot_change_the_network(fitted, change, match):
    import copy

    clf = copy.deepcopy(fitted).set_params(warm_start=True, **change)
    before = clf.predict(X0)
    assert_clear_error(lambda: clf.fit(X0, Y0), ValueError, match)
    np.testing.assert_array_equal(clf.predict(X0), before)
