"""Ragged spectrograms and the on-disk SpectrogramStore, through the
transformer, the classifier and scikit-learn's tools."""

import json
import pickle
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
from _params import TINY, make_spectrograms
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.utils import _safe_indexing

from sklearn_tser import (
    EmotionEmbeddingClassifier,
    LogMelTransformer,
    SpectrogramStore,
    n_valid_frames,
)
from sklearn_tser import _log_mel as log_mel_module


def _clips(n=7, seed=0):
    """Noise clips of very different lengths (0.05 s to 1.5 s at 16 kHz)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(800, 24000, n)
    return [(0.1 * rng.standard_normal(k)).astype(np.float32) for k in lengths]


def _ragged(X):
    """A NaN-padded batch as a list of 2-D arrays of each clip's frames."""
    return [x[:, :n] for x, n in zip(X, n_valid_frames(X), strict=True)]


def _flac_files(folder, n=5):
    """``n`` clips of :func:`_clips` written as FLAC files in ``folder``."""
    paths = []
    for i, clip in enumerate(_clips(n=n)):
        paths.append(folder / f"{i}.flac")
        sf.write(paths[-1], clip, 16000)
    return paths


def _count_log_mel_calls(monkeypatch):
    """The number of clips of each call of log_mel by the transformer."""
    seen = []
    log_mel = log_mel_module.log_mel

    def spy(clips, settings, device):
        seen.append(len(clips))
        return log_mel(clips, settings, device)

    monkeypatch.setattr(log_mel_module, "log_mel", spy)
    return seen


def _store(X, folder):
    """The ragged clips of ``X`` written as a store (as the transformer does)."""
    from sklearn_tser._store import StoreWriter

    writer = StoreWriter(folder, n_mels=X.shape[1], log_mel_params={})
    writer.append(_ragged(X))
    return writer.close()


# ------------------------------------------------------------- transformer


@pytest.mark.parametrize("max_frames", [None, 40])
def test_ragged_output_is_the_padded_output_without_padding(max_frames):
    clips = _clips()
    params = dict(n_mels=20, max_frames=max_frames)
    padded = LogMelTransformer(**params).fit_transform(clips)
    ragged = LogMelTransformer(**params, output="ragged").fit_transform(clips)
    assert isinstance(ragged, list) and len(ragged) == len(clips)
    lengths = n_valid_frames(padded)
    for S, P, n in zip(ragged, padded, lengths, strict=True):
        assert S.dtype == np.float32 and S.shape == (20, n)
        np.testing.assert_array_equal(S, P[:, :n])
    np.testing.assert_array_equal(n_valid_frames(ragged), lengths)


def test_ragged_output_follows_the_audio_not_the_longest_clip():
    """One long clip among short ones: padded output grows with it, ragged
    output holds the real frames only; the padding warning points to ragged."""
    clips = [np.full(1600, 0.1, np.float32)] * 200 + [np.full(16000 * 60, 0.1)]
    ragged = LogMelTransformer(output="ragged").fit_transform(clips)
    frames = sum(S.shape[1] for S in ragged)
    assert sum(S.nbytes for S in ragged) == 4 * 64 * frames
    with pytest.warns(UserWarning, match="output='ragged'"):
        padded = LogMelTransformer().fit_transform(clips)
    assert padded.nbytes > 20 * sum(S.nbytes for S in ragged)


def test_store_holds_the_ragged_spectrograms(tmp_path):
    clips = _clips()
    tr = LogMelTransformer(n_mels=20)
    store = tr.transform_to_store(clips, tmp_path / "s", verbose=0)
    ragged = tr.set_params(output="ragged").transform(clips)
    assert len(store) == len(clips) and store.n_mels == 20
    np.testing.assert_array_equal(store.lengths, [S.shape[1] for S in ragged])
    np.testing.assert_array_equal(n_valid_frames(store), store.lengths)
    assert store.shape == (len(clips), 20, max(S.shape[1] for S in ragged))
    for i, S in enumerate(ragged):
        np.testing.assert_array_equal(store[i], S)
        assert store[i].flags.c_contiguous and store[i].dtype == np.float32
    np.testing.assert_array_equal(store[-1], ragged[-1])
    assert store.log_mel_params["n_mels"] == 20
    reopened = SpectrogramStore(tmp_path / "s")
    np.testing.assert_array_equal(reopened[3], ragged[3])


def test_store_is_written_a_chunk_at_a_time(tmp_path, monkeypatch):
    """Files are decoded and transformed chunk_size at a time; the result does
    not depend on chunk_size."""
    paths = _flac_files(tmp_path)
    seen = _count_log_mel_calls(monkeypatch)
    tr = LogMelTransformer(n_mels=16)
    small = tr.transform_to_store(paths, tmp_path / "a", chunk_size=2, verbose=0)
    assert seen == [2, 2, 1]
    whole = tr.transform_to_store(paths, tmp_path / "b", verbose=0)
    for i in range(5):
        np.testing.assert_array_equal(small[i], whole[i])


@pytest.mark.parametrize("output", ["ragged", "padded"])
def test_transform_decodes_files_a_chunk_at_a_time(tmp_path, monkeypatch, output):
    from sklearn_tser._audio import load_audio

    paths = _flac_files(tmp_path)
    expected = LogMelTransformer(output=output).fit_transform(
        [load_audio(p) for p in paths]  # decoded beforehand
    )
    seen = _count_log_mel_calls(monkeypatch)
    monkeypatch.setattr(log_mel_module, "_CHUNK_CLIPS", 2)
    S = LogMelTransformer(output=output).fit_transform(paths)
    assert seen == [2, 2, 1]
    assert type(S) is type(expected) and len(S) == len(expected)
    for a, b in zip(S, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_store_messages_name_the_clip_of_the_whole_input(tmp_path):
    """Errors and warnings name clips by their place in X, whatever the chunk;
    a store whose writing failed is refused when opened."""
    clips = _clips(n=5)
    clips[3] = np.array([0.0, np.nan, 0.0], dtype=np.float32)
    with pytest.raises(ValueError, match="Clip 3 holds 1 NaN"):
        LogMelTransformer().transform_to_store(
            clips, tmp_path / "s", chunk_size=2, verbose=0
        )
    paths = _flac_files(tmp_path)
    paths[3].write_bytes(b"not audio")
    with pytest.raises(ValueError, match="Clip 3: Could not decode"):
        LogMelTransformer().transform_to_store(
            paths, tmp_path / "s", chunk_size=2, verbose=0
        )
    with pytest.raises(FileNotFoundError, match="no spectrogram store"):
        SpectrogramStore(tmp_path / "s")
    assert not list((tmp_path / "s").iterdir())  # no temporary file left
    paths = []
    for i, clip in enumerate(_clips(n=3)):
        paths.append(tmp_path / f"{i}.wav")
        sf.write(paths[-1], clip * (i != 2), 16000)  # the last one silent
    with pytest.warns(UserWarning, match=r"1 of 3 clips are silent .*2\.wav"):
        LogMelTransformer().transform_to_store(
            paths, tmp_path / "t", chunk_size=1, verbose=0
        )


def test_store_refuses_to_overwrite_what_it_should_not(tmp_path):
    X, _ = make_spectrograms(n=4)
    _store(X, tmp_path / "s")
    tr = LogMelTransformer(n_mels=12)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        tr.transform_to_store(_clips(n=2), tmp_path / "s", verbose=0)
    store = tr.transform_to_store(_clips(n=2), tmp_path / "s", overwrite=True)
    assert len(store) == 2
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        tr.transform_to_store(_clips(n=2), tmp_path / "other", overwrite=True)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="is a file"):
        tr.transform_to_store(_clips(n=2), tmp_path / "other" / "notes.txt")


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda p: (p / "spectrograms.f32").write_bytes(b"\0" * 8), "damaged"),
        (lambda p: (p / "index.json").write_text("{"), "not valid JSON"),
        (lambda p: _edit_index(p, format="other"), "not the index"),
        (lambda p: _edit_index(p, version=99), "format version 99"),
        (lambda p: _edit_index(p, n_mels=0), "n_mels=0"),
        (lambda p: _edit_index(p, lengths=[3, -1]), "malformed clip lengths"),
        (lambda p: (p / "index.json").unlink(), "unfinished store"),
        (lambda p: _edit_index(p, id=None), "has no id"),
        (lambda p: (p / "spectrograms.f32").unlink(), "has no spectrograms"),
    ],
)
def test_a_damaged_store_is_refused(tmp_path, damage, match):
    X, _ = make_spectrograms(n=4)
    _store(X, tmp_path / "s")
    damage(tmp_path / "s")
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        SpectrogramStore(tmp_path / "s")


def _edit_index(path, **changes):
    index = json.loads((path / "index.json").read_text())
    index.update(changes)
    (path / "index.json").write_text(json.dumps(index))


def test_a_store_written_again_is_not_read_as_the_old_one(tmp_path):
    """Stores opened (or pickled) before their folder was written again refuse
    to read the new data; a failed rewrite leaves the old store as it was."""
    X, _ = make_spectrograms(n=6)
    old = _store(X, tmp_path / "s")
    live, pickled = old[2:], pickle.dumps(old[[1]])
    tr = LogMelTransformer(n_mels=12)
    bad = [*_clips(n=3), np.zeros(0)]
    with pytest.raises(ValueError, match="Clip 3 is empty"):
        tr.transform_to_store(bad, tmp_path / "s", overwrite=True, verbose=0)
    np.testing.assert_array_equal(live[0], X[2, :, : n_valid_frames(X)[2]])
    new = tr.transform_to_store(_clips(n=3), tmp_path / "s", overwrite=True)
    assert len(new) == 3
    with pytest.raises(ValueError, match="written again"):
        pickle.loads(pickled)[0]
    # A store already reading keeps the file it opened (POSIX).
    np.testing.assert_array_equal(live[0], X[2, :, : n_valid_frames(X)[2]])


def test_numpy_parameters_and_relative_paths(tmp_path, monkeypatch):
    """Parameters from NumPy grids are recorded as numbers; a store opened
    with a relative path reads from any working directory once pickled."""
    monkeypatch.chdir(tmp_path)
    tr = LogMelTransformer(n_mels=np.int64(12), fmin=np.float32(30.0))
    store = tr.transform_to_store(_clips(n=2), "s", verbose=0)
    assert store.log_mel_params["n_mels"] == 12
    data = pickle.dumps(store)
    monkeypatch.chdir("/")
    np.testing.assert_array_equal(pickle.loads(data)[1], store[1])
    with SpectrogramStore(tmp_path / "s") as opened:
        opened[0]
    assert opened._file._fd is None  # closed; a later read opens it again
    np.testing.assert_array_equal(opened[1], store[1])


def test_a_store_truncated_in_use_says_so(tmp_path):
    X, _ = make_spectrograms(n=4)
    store = _store(X, tmp_path / "s")
    store[0]  # opened
    with open(tmp_path / "s" / "spectrograms.f32", "r+b") as f:
        f.truncate(10)
    with pytest.raises(ValueError, match="ended early"):
        store[2]
    with pytest.raises(ValueError, match="damaged"):
        pickle.loads(pickle.dumps(store))[2]
    with pytest.raises(FileNotFoundError, match="no spectrogram store"):
        SpectrogramStore(tmp_path / "nothing")


def test_store_indexing_gives_stores_and_reads_nothing(tmp_path):
    X, _ = make_spectrograms(n=8)
    store = _store(X, tmp_path / "s")
    lengths = n_valid_frames(X)
    for key in ([5, 1], np.array([5, 1]), slice(5, 0, -4), np.arange(8) % 4 == 1):
        subset = store[key]
        assert isinstance(subset, SpectrogramStore)
        expected = np.arange(8)[key]
        np.testing.assert_array_equal(subset.lengths, lengths[expected])
        np.testing.assert_array_equal(
            subset[1], X[expected[1], :, : lengths[expected[1]]]
        )
    picked = _safe_indexing(store, np.array([7, 2]))  # scikit-learn's splits
    assert isinstance(picked, SpectrogramStore)
    np.testing.assert_array_equal(picked[0], X[7, :, : lengths[7]])
    assert len(store[[]]) == 0
    for key, match in [
        (8, "out of range"),
        ((1, 2), "by clips only"),
        (np.ones(3, bool), "boolean mask"),
        (["a"], "dtype"),
    ]:
        with pytest.raises(IndexError, match=match):
            store[key]


def test_a_pickled_store_is_its_folder_not_its_data(tmp_path):
    X, _ = make_spectrograms(n=40)
    store = _store(X, tmp_path / "s")[5:30]
    store[0]  # opened
    data = pickle.dumps(store)
    assert len(data) < 4000 < (tmp_path / "s" / "spectrograms.f32").stat().st_size
    back = pickle.loads(data)
    np.testing.assert_array_equal(back.lengths, store.lengths)
    np.testing.assert_array_equal(back[3], store[3])
    assert "25 clips of 12 mel bands" in repr(back)


# -------------------------------------------------------------- classifier


def _fits(X, y, **params):
    clf = EmotionEmbeddingClassifier(**{**TINY, **params}).fit(X, y)
    return clf, clf.transform(X)


@pytest.mark.parametrize("params", [{}, {"trim_db": 20.0, "standardize": "clip"}])
def test_ragged_and_stored_input_fit_as_padded_input(tmp_path, params):
    """Same seed, same clips: the same model, whatever form the clips take."""
    X, y = make_spectrograms(n=40)
    padded, emb = _fits(X, y, **params)
    for other in (_ragged(X), _store(X, tmp_path / "s")):
        clf, emb_other = _fits(other, y, **params)
        np.testing.assert_array_equal(clf.centroids_, padded.centroids_)
        np.testing.assert_array_equal(emb_other, emb)
        np.testing.assert_array_equal(clf.predict(X), padded.predict(other))


def test_ragged_clips_may_end_in_padding_and_are_validated():
    X, y = make_spectrograms(n=12)
    clf, emb = _fits(X, y)
    ragged = [x for x in X]  # each clip keeps its NaN padding
    np.testing.assert_array_equal(clf.transform(ragged), emb)
    bad = _ragged(X)
    bad[7] = bad[7].copy()
    bad[7][2, 1] = np.nan
    with pytest.raises(ValueError, match="Clip 7 of X holds NaN values inside"):
        clf.predict(bad)
    bad[7][2, 1] = np.inf
    with pytest.raises(ValueError, match="Clip 7 of X holds infinite"):
        clf.predict(bad)
    empty = _ragged(X)
    empty[3] = empty[3][:, :0]
    with pytest.raises(ValueError, match="Clip 3 of X has no valid frame"):
        clf.predict(empty)
    with pytest.raises(ValueError, match="different numbers of mel bands"):
        clf.predict([X[0], X[1][:5]])
    with pytest.raises(ValueError, match="fitted with 12"):
        clf.predict([x[:5] for x in X])


@pytest.mark.parametrize("frame", [0, -1])
def test_a_store_with_nan_is_refused(tmp_path, frame):
    """A stored clip has no padding: NaN anywhere in it, even in its last
    frame, is refused."""
    from sklearn_tser._store import StoreWriter

    X, y = make_spectrograms(n=12)
    bad = _ragged(X)
    bad[4] = bad[4].copy()
    bad[4][:, frame] = np.nan
    writer = StoreWriter(tmp_path / "s", n_mels=12, log_mel_params={})
    writer.append(bad)
    with pytest.raises(ValueError, match="Clip 4 of X .*holds NaN"):
        EmotionEmbeddingClassifier(**TINY).fit(writer.close(), y)


def test_cross_validation_and_search_on_ragged_and_stored_input(tmp_path):
    X, y = make_spectrograms(n=48)
    cv = KFold(3, shuffle=True, random_state=0)
    clf = EmotionEmbeddingClassifier(**TINY)
    scores = [
        cross_val_score(clf, data, y, cv=cv)
        for data in (X, _ragged(X), _store(X, tmp_path / "s"))
    ]
    np.testing.assert_array_equal(scores[1], scores[0])
    np.testing.assert_array_equal(scores[2], scores[0])
    search = GridSearchCV(clf, {"embedding_dim": [4, 8]}, cv=cv)
    search.fit(SpectrogramStore(tmp_path / "s"), y)
    fitted = pickle.loads(pickle.dumps(search.best_estimator_))
    np.testing.assert_array_equal(
        fitted.predict(_ragged(X)), search.predict(SpectrogramStore(tmp_path / "s"))
    )
    assert clone(clf).get_params() == clf.get_params()


def test_fit_and_predict_hold_no_copy_of_the_spectrograms():
    """The classifier reads its input a batch at a time: what numpy allocates
    during fit and predict stays a fraction of the spectrograms (the code
    before copied them whole, zero-filled, and standardised: 4 times their
    size)."""
    rng = np.random.default_rng(0)
    n, n_mels, width = 300, 40, 1000
    X = rng.standard_normal((n, n_mels, width)).astype(np.float32)  # 48 MB
    lengths = rng.integers(100, width + 1, n)
    for i, k in enumerate(lengths):
        X[i, :, k:] = np.nan
    y = np.arange(n) % 3
    params = {**TINY, "pretrain_epochs": 1, "triplet_epochs": 0, "batch_size": 32}
    params["crop_frames"] = 50
    small, y_small = make_spectrograms(n=20)  # imports and first calls
    EmotionEmbeddingClassifier(**params).fit(small, y_small).predict(small)
    tracemalloc.start()
    try:
        clf = EmotionEmbeddingClassifier(**params).fit(X, y)
        _, fit_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        clf.predict(X)
        _, predict_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fit_peak < 0.3 * X.nbytes and predict_peak < 0.3 * X.nbytes


def test_inference_batches_are_bounded_and_of_few_shapes():
    from sklearn_tser._training import (
        _INFERENCE_CLIPS,
        _INFERENCE_FRAMES,
        _inference_batches,
        inference_width,
    )

    rng = np.random.default_rng(0)
    lengths = np.concatenate(
        [rng.integers(1, 4000, 5000), [_INFERENCE_FRAMES * 2, 9000]]
    )
    batches = _inference_batches(lengths)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    shapes = set()
    for b in batches:
        width = inference_width(lengths[b].max())
        assert (inference_width(lengths[b]) == width).all()  # one width each
        assert len(b) == 1 or (
            len(b) <= _INFERENCE_CLIPS and len(b) * width <= _INFERENCE_FRAMES
        )
        shapes.add((len(b), int(width)))
    # At most two batch sizes per width (full ones and the rest): the number
    # of shapes does not grow with the number of clips.
    n_widths = len(np.unique(inference_width(lengths)))
    assert len(shapes) <= 2 * n_widths <= 2 * 4 * 18


def test_inference_width_rounds_up_to_four_widths_per_octave():
    from sklearn_tser._training import inference_width

    n = np.arange(1, 70000)
    width = inference_width(n)
    assert (width >= n).all() and (width <= 1.25 * n).all()
    assert list(inference_width([1, 3, 4, 5, 7, 8, 9, 450, 3500])) == [
        1,
        3,
        4,
        5,
        7,
        8,
        10,
        512,
        3584,
    ]
    # Four widths per octave: 1025 to 2048 frames give 4 widths.
    assert len(np.unique(inference_width(np.arange(1025, 2049)))) == 4


def test_a_memmap_is_read_in_place(tmp_path):
    """A padded np.memmap is not copied into memory: the classifier reads its
    clips as views of the file, and fits as from the array."""
    from sklearn_tser._validation import check_spectrograms

    X, y = make_spectrograms(n=30)
    mm = np.lib.format.open_memmap(tmp_path / "X.npy", "w+", np.float32, X.shape)
    mm[:] = X
    mm.flush()
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    S = check_spectrograms(mm)
    assert all(np.shares_memory(S[i], mm) for i in range(len(S)))
    _, emb = _fits(X, y)
    np.testing.assert_array_equal(_fits(mm, y)[1], emb)
