"""EmotionEmbeddingClassifier on tiny configurations (CI: 2 cores, no GPU)."""

import pickle

import joblib
import numpy as np
import pytest
import torch
from _params import make_spectrograms
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score
from sklearn.pipeline import Pipeline

from sklearn_tser import EmotionEmbeddingClassifier, LogMelTransformer, load, save

TINY = dict(
    n_networks=1,  # the ensemble's own tests ask for more
    n_layers=6,
    width=8,
    embedding_dim=16,
    pretrain_epochs=3,
    triplet_epochs=2,
    crop_frames=40,
    batch_size=16,
    random_state=0,
)


@pytest.fixture(scope="module")
def data():
    X, y = make_spectrograms()
    return X, np.array(["angry", "happy", "sad"])[y]


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return EmotionEmbeddingClassifier(**TINY).fit(X, y)


def test_fit_sets_learned_state(fitted, data):
    X, y = data
    clf = fitted
    assert list(clf.classes_) == ["angry", "happy", "sad"]
    assert clf.centroids_.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(clf.centroids_, axis=1), 1, atol=1e-6)
    assert clf.angles_.shape == (3, 3)
    np.testing.assert_allclose(np.diag(clf.angles_), 0)
    np.testing.assert_allclose(clf.angles_, clf.angles_.T)
    assert clf.n_features_in_ == 12
    assert clf.score(X, y) > 0.8
    assert len(clf.net_.history) >= 2


def test_prediction_is_the_smallest_angle_to_a_centroid(fitted, data):
    X, _ = data
    emb = fitted.transform(X)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    expected = []
    for e in emb:  # brute force: the angle to every centroid, in degrees
        angles = [
            np.degrees(np.arccos(np.clip(e @ c, -1, 1))) for c in fitted.centroids_
        ]
        expected.append(fitted.classes_[int(np.argmin(angles))])
    np.testing.assert_array_equal(fitted.predict(X), expected)
    sim = fitted.decision_function(X)
    np.testing.assert_allclose(sim, emb @ fitted.centroids_.T, atol=1e-6)


def test_predict_proba_is_a_calibrated_softmax(fitted, data):
    X, _ = data
    proba = fitted.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_array_equal(
        fitted.classes_[proba.argmax(axis=1)], fitted.predict(X)
    )
    sim = fitted.decision_function(X)
    logits = fitted.proba_scale_ * sim
    ref = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(proba, ref / ref.sum(1, keepdims=True), atol=1e-6)


def test_embedding_does_not_depend_on_padding(fitted, data):
    X, _ = data
    i = int(np.argmin((~np.isnan(X[:, 0])).sum(1)))  # the shortest clip
    n = int((~np.isnan(X[i, 0])).sum())
    alone = fitted.transform(X[i : i + 1, :, :n])
    in_batch = fitted.transform(X)[i]
    np.testing.assert_allclose(alone[0], in_batch, atol=1e-5)
    wider = np.concatenate([X, np.full(X.shape[:2] + (25,), np.nan, np.float32)], 2)
    np.testing.assert_allclose(fitted.transform(wider)[i], in_batch, atol=1e-5)


@pytest.mark.parametrize(
    "labels",
    [
        np.array([3, 7, 9]),
        np.array([True, False, True]),
        np.array(["a", "b", "c"], dtype=object),
    ],
)
def test_label_types(labels):
    X, y = make_spectrograms(n=30, n_classes=len(np.unique(labels)))
    y_any = labels[y]
    clf = EmotionEmbeddingClassifier(**{**TINY, "pretrain_epochs": 1}).fit(X, y_any)
    assert set(clf.predict(X)) <= set(labels)
    assert clf.predict(X).dtype == y_any.dtype


def test_two_classes_decision_function_is_1d():
    X, y = make_spectrograms(n=30, n_classes=2)
    clf = EmotionEmbeddingClassifier(**TINY).fit(X, y)
    d = clf.decision_function(X)
    assert d.shape == (30,)
    np.testing.assert_array_equal((d > 0).astype(int), clf.predict(X))


def test_same_seed_gives_identical_predictions(data):
    X, y = data
    a = EmotionEmbeddingClassifier(**TINY).fit(X, y)
    b = EmotionEmbeddingClassifier(**TINY).fit(X, y)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))


def test_groups_keep_speakers_out_of_the_validation_split(data):
    X, y = data
    groups = np.repeat(np.arange(6), 10)
    clf = EmotionEmbeddingClassifier(**TINY, validation_fraction=0.2)
    clf.classes_, encoded = np.unique(y, return_inverse=True)
    train, valid = clf._split(encoded, groups, seed=0)
    assert set(groups[train]).isdisjoint(groups[valid])
    clf.fit(X, y, groups=groups)
    assert "valid_loss" in clf.net_.history[-1]


def test_no_validation_means_no_early_stopping(data):
    X, y = data
    clf = EmotionEmbeddingClassifier(**TINY, validation_fraction=0).fit(X, y)
    assert len(clf.net_.history) == TINY["pretrain_epochs"] + TINY["triplet_epochs"]


@pytest.mark.parametrize("architecture", ["fc", "cnn", "rnn", "lstm", "gru"])
def test_every_architecture_fits(architecture, data):
    X, y = data
    clf = EmotionEmbeddingClassifier(
        **{**TINY, "pretrain_epochs": 1, "triplet_epochs": 1},
        architecture=architecture,
    )
    assert clf.fit(X, y).predict(X).shape == (len(X),)


@pytest.mark.parametrize("architecture", ["resnet", "cnn"])
def test_conv2d_stem_fits_and_is_batch_invariant(architecture, data):
    X, y = data
    clf = EmotionEmbeddingClassifier(
        **{**TINY, "pretrain_epochs": 1, "triplet_epochs": 1},
        architecture=architecture,
        stem="conv2d",
    ).fit(X, y)
    together = clf.transform(X)
    alone = np.vstack([clf.transform(X[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(together[:3], alone, atol=1e-5)


def test_deltas_fit_from_plain_spectrograms_and_are_batch_invariant(data, tmp_path):
    """deltas=2 takes the same (n_clips, n_mels, n_frames) input: the network
    computes the derivatives; a clip alone embeds as in a batch, and the
    fitted classifier survives joblib and the safe format."""
    X, y = data
    clf = EmotionEmbeddingClassifier(
        **{**TINY, "pretrain_epochs": 1, "triplet_epochs": 1}, deltas=2
    ).fit(X, y)
    network = clf.net_.module_
    first = next(m for m in network.modules() if isinstance(m, torch.nn.Conv1d))
    assert first.in_channels == 3 * X[0].shape[0]
    together = clf.transform(X)
    alone = np.vstack([clf.transform(X[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(together[:3], alone, atol=1e-5)
    joblib.dump(clf, tmp_path / "clf.joblib")
    np.testing.assert_array_equal(
        joblib.load(tmp_path / "clf.joblib").predict(X), clf.predict(X)
    )
    again = load(save(clf, tmp_path / "clf.safetensors"))
    assert again.deltas == 2
    np.testing.assert_array_equal(again.predict(X), clf.predict(X))


@pytest.mark.parametrize("mining", ["semi_hard", "batch_hard", "batch_all"])
def test_every_miner_trains(mining, data):
    X, y = data
    clf = EmotionEmbeddingClassifier(
        **{**TINY, "pretrain_epochs": 1}, mining=mining, standardize="clip"
    )
    clf.fit(X, y)
    assert np.isfinite(clf.net_.history[-1, "train_loss"])


def test_verbose_prints_per_epoch_lines(data, capsys):
    X, y = data
    EmotionEmbeddingClassifier(**TINY, verbose=2).fit(X, y)
    out = capsys.readouterr().out
    assert "train_loss" in out and "collapse" in out
    EmotionEmbeddingClassifier(**TINY, verbose=0).fit(X, y)
    assert capsys.readouterr().out == ""


def test_warm_start_continues_training(data):
    X, y = data
    clf = EmotionEmbeddingClassifier(**TINY, warm_start=True, validation_fraction=0)
    clf.fit(X, y)
    n_epochs = len(clf.net_.history)
    net = clf.net_
    clf.fit(X, y)
    assert clf.net_ is net
    assert len(clf.net_.history) == 2 * n_epochs


@pytest.mark.parametrize(
    "params, match",
    [
        ({"architecture": "transformer"}, "architecture"),
        ({"n_layers": 5}, "n_layers"),
        ({"n_layers": 16}, "n_layers"),
        ({"margin": 0}, "margin"),
        ({"mining": "hardest"}, "mining"),
        ({"n_samples_per_class": 1}, "n_samples_per_class"),
        ({"dilation": 0}, "'dilation' parameter"),
        ({"dilation": 2.0}, "'dilation' parameter"),
        ({"deltas": 3}, "'deltas' parameter"),
        ({"deltas": 1.0}, "'deltas' parameter"),
        ({"squeeze_excitation": 1}, "'squeeze_excitation' parameter"),
        ({"zero_init_residual": 1}, "'zero_init_residual' parameter"),
        ({"freq_mixstyle": 1.5}, "'freq_mixstyle' parameter"),
        ({"freq_mixstyle_alpha": 0}, "'freq_mixstyle_alpha' parameter"),
        ({"copy_paste": -0.1}, "'copy_paste' parameter"),
        ({"filter_augment": -0.5}, "'filter_augment' parameter"),
        ({"reverberation": -1.0}, "'reverberation' parameter"),
        ({"reverberation_fraction": 0.0}, "'reverberation_fraction' parameter"),
        ({"reverberation_fraction": 1.5}, "'reverberation_fraction' parameter"),
        ({"noise_snr": float("inf")}, "'noise_snr' parameter"),
        ({"noise_snr": "10"}, "'noise_snr' parameter"),
        ({"noise_spectrum": "pink"}, "'noise_spectrum' parameter"),
        ({"noise_fraction": 0.0}, "'noise_fraction' parameter"),
        ({"noise_fraction": 1.5}, "'noise_fraction' parameter"),
        ({"softmax_optimizer": "adam"}, "'softmax_optimizer' parameter"),
        ({"triplet_weight_decay": -1e-4}, "'triplet_weight_decay' parameter"),
    ],
)
def test_bad_parameters(params, match, data):
    X, y = data
    with pytest.raises(ValueError, match=match):
        EmotionEmbeddingClassifier(**{**TINY, **params}).fit(X, y)


def test_bad_input(fitted, data):
    X, y = data
    with pytest.raises(ValueError, match="single class"):
        EmotionEmbeddingClassifier(**TINY).fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="60 clips but y has 59"):
        EmotionEmbeddingClassifier(**TINY).fit(X, y[:-1])
    with pytest.raises(ValueError, match="fitted with 12"):
        fitted.predict(X[:, :10])
    bad = X.copy()
    bad[4, 2, 0] = np.nan
    with pytest.raises(ValueError, match="Clip 4 of X holds NaN"):
        fitted.predict(bad)
    with pytest.raises(ValueError, match=r"shape \(2, 3, 4, 5\)"):
        fitted.predict(np.zeros((2, 3, 4, 5)))


def test_pipeline_from_audio_with_pickle_and_joblib(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    y = np.repeat(["low", "high"], 12)
    X = [
        np.sin(
            2 * np.pi * (200 if lab == "low" else 2000) * t[: rng.integers(4000, 8000)]
        )
        + 0.05 * rng.standard_normal(1)
        for lab in y
    ]
    pipe = Pipeline(
        [
            ("mel", LogMelTransformer(n_mels=16)),
            ("clf", EmotionEmbeddingClassifier(**TINY)),
        ]
    ).fit(X, y, clf__groups=np.arange(len(y)) % 4)
    pred = pipe.predict(X)
    assert (pred == y).mean() > 0.9
    joblib.dump(pipe, tmp_path / "model.joblib")
    again = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(again.predict(X), pred)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(pipe)).predict(X), pred)


def test_clone_get_set_params():
    clf = EmotionEmbeddingClassifier(**TINY)
    params = clf.get_params()
    assert params["architecture"] == "resnet" and params["n_layers"] == 6
    other = clone(clf).set_params(n_layers=8, architecture="gru")
    assert other.get_params()["n_layers"] == 8
    assert clf.get_params()["n_layers"] == 6


def test_grid_search_and_cross_validation(data):
    X, y = data
    tiny = {**TINY, "pretrain_epochs": 1, "triplet_epochs": 1}
    grid = GridSearchCV(
        EmotionEmbeddingClassifier(**tiny),
        {"architecture": ["resnet", "fc"], "n_layers": [6, 7]},
        cv=2,
    ).fit(X, y)
    assert grid.best_params_["architecture"] in ("resnet", "fc")
    groups = np.repeat(np.arange(6), 10)
    scores = cross_val_score(
        EmotionEmbeddingClassifier(**tiny),
        X,
        y,
        groups=groups,
        cv=GroupKFold(3),
        params={"groups": groups},
    )
    assert scores.shape == (3,)


def test_ten_fold_cross_val_score_in_a_pipeline():
    rng = np.random.default_rng(1)
    y = np.repeat(["a", "b"], 20)
    X = [rng.standard_normal(1600) * (0.1 if lab == "a" else 1.0) for lab in y]
    pipe = Pipeline(
        [
            ("mel", LogMelTransformer(n_mels=8, top_db=None)),
            (
                "clf",
                EmotionEmbeddingClassifier(
                    **{**TINY, "pretrain_epochs": 1, "triplet_epochs": 1}
                ),
            ),
        ]
    )
    scores = cross_val_score(pipe, X, y, cv=10)
    assert scores.shape == (10,)
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("verbose", [0, 1, 2])
def test_verbose_levels(verbose, data, capsys):
    X, y = data
    EmotionEmbeddingClassifier(
        **{**TINY, "pretrain_epochs": 2, "triplet_epochs": 1}, verbose=verbose
    ).fit(X, y)
    out, err = capsys.readouterr()
    if verbose == 0:
        assert out == "" and err == ""
    elif verbose == 1:
        assert "softmax" in err and "2/2" in err
        assert "triplet" in err and "1/1" in err
        assert "train_loss" not in out
    else:
        assert "train_loss" in out and "epoch/s" not in err


def test_fits_in_threads_equal_the_serial_fit_bit_for_bit(data):
    """Each fit draws from its own generators, so fits running at once in
    threads (joblib's threading backend, a Dask worker) do not disturb each
    other: random_state=0 gives the same model as alone."""
    X, y = data
    params = {**TINY, "dropout": 0.3, "mixup_alpha": 0.4}
    serial = EmotionEmbeddingClassifier(**params).fit(X, y)
    threaded = joblib.Parallel(n_jobs=2, backend="threading")(
        joblib.delayed(clone(serial).fit)(X, y) for _ in range(2)
    )
    expected = serial.net_.module_.state_dict()
    for clf in threaded:
        for name, value in clf.net_.module_.state_dict().items():
            assert torch.equal(value, expected[name]), name
        np.testing.assert_array_equal(clf.predict_proba(X), serial.predict_proba(X))


@pytest.mark.parametrize("n_threads, during", [(1, 1), (None, 2)])
def test_n_threads_holds_during_fit_and_predict_and_is_restored(
    data, monkeypatch, n_threads, during
):
    from sklearn_tser._training import EmbeddingNet

    seen = []
    fit_phases, embed = EmbeddingNet.fit_phases, EmbeddingNet.embed

    def spy_fit(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return fit_phases(self, *args, **kwargs)

    def spy_embed(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return embed(self, *args, **kwargs)

    monkeypatch.setattr(EmbeddingNet, "fit_phases", spy_fit)
    monkeypatch.setattr(EmbeddingNet, "embed", spy_embed)
    X, y = data
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        clf = EmotionEmbeddingClassifier(**TINY, n_threads=n_threads).fit(X, y)
        assert torch.get_num_threads() == 2
        clf.predict(X)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert set(seen) == {during}


@pytest.mark.parametrize("name, value", [("n_threads", 0), ("n_jobs", 0)])
def test_thread_counts_are_validated(data, name, value):
    X, y = data
    with pytest.raises(ValueError, match=f"'{name}' parameter"):
        EmotionEmbeddingClassifier(**TINY, **{name: value}).fit(X, y)
