"""The training machinery: fold statistics, validation split, batches, phases."""

import threading
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from _params import TINY, make_spectrograms
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from sklearn_tser import EmotionEmbeddingClassifier
from sklearn_tser import _classifier as classifier_module
from sklearn_tser import _training as training_module
from sklearn_tser._networks import initialize_weights
from sklearn_tser._training import (
    CollapseMonitor,
    EmbeddingNet,
    SpectrogramDataset,
    _ReverseGradient,
    _stretch,
    _warp,
    add_noise,
    autocast_dtype,
    frame_scales,
    group_standardization,
    make_net,
    member_nets,
    member_seeds,
    mix_band_statistics,
    networks_at_once,
    optimizer_settings,
    paste_partners,
    piecewise_linear,
    random_filters,
    reverberate,
    serves_scales,
    speech_regions,
    standardization,
    stretched_lengths,
)
from sklearn_tser._validation import check_spectrograms
from sklearn_tser.exceptions import MissingGroupsWarning


def spy_on_fit(monkeypatch):
    """Record the clips the standardiser, the net and the calibration see."""
    seen = {}
    standardization = classifier_module.standardization
    fit_phases = EmbeddingNet.fit_phases
    fit_scale = EmotionEmbeddingClassifier._fit_proba_scale

    def spy_standardization(X, starts, lengths, indices=None):
        seen["standardization"] = np.asarray(indices)
        return standardization(X, starts, lengths, indices)

    def spy_fit_phases(self, train_set, valid_set=None):
        seen["train"] = train_set.indices
        seen["valid"] = None if valid_set is None else valid_set.indices
        return fit_phases(self, train_set, valid_set)

    def spy_fit_scale(self, emb, y):
        seen["calibration"] = len(y)
        return fit_scale(self, emb, y)

    monkeypatch.setattr(classifier_module, "standardization", spy_standardization)
    monkeypatch.setattr(EmbeddingNet, "fit_phases", spy_fit_phases)
    monkeypatch.setattr(EmotionEmbeddingClassifier, "_fit_proba_scale", spy_fit_scale)
    return seen


@pytest.mark.parametrize("with_groups", [False, True])
def test_standardiser_and_calibration_see_only_their_clips(monkeypatch, with_groups):
    """The standardiser is fitted on the training part only (not the clips held
    out for validation); predict_proba is calibrated on the held-out part."""
    X, y = make_spectrograms()
    groups = np.repeat(np.arange(6), 10) if with_groups else None
    seen = spy_on_fit(monkeypatch)
    clf = EmotionEmbeddingClassifier(**TINY, validation_fraction=0.3)
    clf.fit(X, y, groups=groups)
    train, valid = seen["train"], seen["valid"]
    assert len(valid) > 0 and set(train).isdisjoint(valid)
    assert sorted(set(train) | set(valid)) == list(range(len(X)))
    np.testing.assert_array_equal(seen["standardization"], train)
    assert seen["calibration"] == len(valid)
    # The statistics are those of the training part.
    lengths = (~np.isnan(X).all(axis=1)).sum(axis=1)
    frames = np.concatenate([X[i, :, : lengths[i]] for i in train], axis=1)
    np.testing.assert_allclose(clf.feature_mean_, frames.mean(axis=1), rtol=1e-5)
    if with_groups:
        assert set(groups[train]).isdisjoint(groups[valid])


def test_fit_statistics_never_see_other_clips():
    """Changing clips that fit is not given changes nothing it learns."""
    X, y = make_spectrograms()
    train = np.arange(40)
    a = EmotionEmbeddingClassifier(**TINY).fit(X[train], y[train])
    X2 = X.copy()
    X2[40:] += 100.0  # the "test" clips
    b = EmotionEmbeddingClassifier(**TINY).fit(X2[train], y[train])
    for name in ("feature_mean_", "feature_std_", "centroids_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.proba_scale_ == b.proba_scale_


def test_a_class_only_in_held_out_speakers_is_an_error():
    """Holding out whole speakers must not leave a class without training clips
    (it would get a NaN centroid and take every prediction)."""
    X, y = make_spectrograms(n=40, n_classes=2)
    y = np.array(["a", "b"] * 20, dtype=object)
    groups = np.repeat([0, 1], 20)
    y[:10] = "only_in_group_0"
    y[20:30] = "only_in_group_1"
    clf = EmotionEmbeddingClassifier(**TINY, validation_fraction=0.3)
    with pytest.raises(ValueError, match=r"every clip of class 'only_in_group_\d'"):
        clf.fit(X, y, groups=groups)
    assert not hasattr(clf, "centroids_")


@pytest.mark.parametrize(
    ("y", "groups", "reason"),
    [
        (np.arange(60) % 3, np.zeros(60), "groups holds a single group"),
        (np.r_[np.arange(59) % 2, 2], None, "class 2 has a single clip"),
    ],
)
def test_validation_turned_off_warns(y, groups, reason):
    X, _ = make_spectrograms()
    clf = EmotionEmbeddingClassifier(**TINY, validation_fraction=0.2)
    with pytest.warns(
        UserWarning, match=f"validation_fraction=0.2 is ignored: {reason}"
    ):
        clf.fit(X, y, groups=groups)
    assert "valid_loss" not in clf.net_.history[-1]
    assert np.isfinite(clf.centroids_).all()


def test_too_few_groups_for_the_validation_fraction_warns():
    """Whole groups are held out: with 3 groups, validation_fraction=0.1 holds
    out a third of the clips, and says so."""
    X, y = make_spectrograms()
    groups = np.arange(60) % 3
    clf = EmotionEmbeddingClassifier(**TINY, validation_fraction=0.1)
    with pytest.warns(
        UserWarning,
        match=r"of these 3, 1, with 20 of the 60 clips \(33%\), well over the",
    ):
        clf.fit(X, y % 2, groups=groups)
    # Inside a Pipeline too, the warning points at the user's line.
    with pytest.warns(UserWarning, match="well over the") as record:
        make_pipeline(clf).fit(X, y % 2, emotionembeddingclassifier__groups=groups)
    assert {Path(w.filename).name for w in record} == {Path(__file__).name}
    with warnings.catch_warnings():  # enough groups: no warning
        warnings.simplefilter("error")
        clf.fit(X, y % 2, groups=np.arange(60) % 10)


def test_no_warning_without_validation():
    X, y = make_spectrograms()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EmotionEmbeddingClassifier(**TINY).fit(X, y, groups=np.zeros(len(X)))


@pytest.mark.parametrize("indices", [None, np.array([5, 0, 17, 33])])
def test_standardization_matches_a_loop(indices):
    X, _ = make_spectrograms(n=40)
    S = check_spectrograms(X)
    starts = np.arange(40) % 3  # regions that skip the first frames
    lengths = S.lengths - starts
    mean, std = standardization(S, starts, lengths, indices)
    clips = range(len(X)) if indices is None else indices
    frames = np.concatenate(
        [X[i, :, starts[i] : starts[i] + lengths[i]] for i in clips], axis=1
    )
    np.testing.assert_allclose(mean, frames.mean(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, frames.std(axis=1), rtol=1e-5)


def test_group_standardization_matches_a_loop():
    X, _ = make_spectrograms(n=40)
    S = check_spectrograms(X)
    starts = np.arange(40) % 3
    lengths = S.lengths - starts
    groups = np.array(["b", "a", "c", "a"] * 10)
    indices = np.arange(3, 37)  # some clips of each group are left out
    mean, std, codes = group_standardization(S, starts, lengths, groups, indices)
    assert mean.shape == std.shape == (3, X.shape[1]) and mean.dtype == np.float32
    np.testing.assert_array_equal(np.array(["a", "b", "c"])[codes], groups[indices])
    for g, name in enumerate(["a", "b", "c"]):
        frames = np.concatenate(
            [
                X[i, :, starts[i] : starts[i] + lengths[i]]
                for i in indices
                if groups[i] == name
            ],
            axis=1,
        )
        np.testing.assert_allclose(mean[g], frames.mean(axis=1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(std[g], frames.std(axis=1), rtol=1e-5)


def test_dataset_standardises_each_clip_with_its_groups_row():
    X, y = make_spectrograms(n=10)
    S = check_spectrograms(X)
    starts, lengths = np.zeros(10, int), S.lengths
    rng = np.random.default_rng(0)
    mean = rng.standard_normal((3, X.shape[1])).astype(np.float32)
    std = rng.uniform(0.5, 2, (3, X.shape[1])).astype(np.float32)
    rows = np.array([2, 0, 1, 1, 0, 2, 2, 0, 1, 0])  # the row of each clip of X
    indices = np.array([4, 5, 2])
    dataset = SpectrogramDataset(
        S,
        starts,
        lengths,
        y,
        indices=indices,
        mean=mean,
        std=std,
        stat_rows=rows[indices],  # one per clip served
        scales=True,
    )
    batch, _ = dataset.__getitems__([1, 2, 0])  # clips 5, 2 and 4
    x = batch["x"].numpy()
    # What each clip was divided by: its group's row.
    np.testing.assert_array_equal(batch["scale"].numpy(), std[rows[[5, 2, 4]]])
    for row, i in enumerate([5, 2, 4]):
        expected = (X[i, :, : lengths[i]] - mean[rows[i], :, None]) / std[
            rows[i], :, None
        ]
        np.testing.assert_allclose(x[row, :, : lengths[i]], expected, atol=1e-5)
        assert (x[row, :, lengths[i] :] == 0).all()


@pytest.mark.parametrize("per_clip", [False, True])
def test_dataset_batches_are_standardised_valid_frames(per_clip):
    X, y = make_spectrograms(n=10)
    S = check_spectrograms(X)
    starts = np.array([0, 2, 0, 5, 0, 0, 0, 1, 0, 0])
    lengths = S.lengths - starts
    mean, std = standardization(S, starts, lengths)
    scale = {} if per_clip else {"mean": mean, "std": std}
    dataset = SpectrogramDataset(
        S, starts, lengths, y, indices=np.array([3, 7, 1]), scales=True, **scale
    )
    batch, target = dataset.__getitems__([2, 0])  # clips 1 and 3
    x, n = batch["x"].numpy(), batch["lengths"].numpy()
    served = batch["scale"].numpy()  # what each clip was divided by
    assert served.shape == (2, X.shape[1]) and served.dtype == np.float32
    np.testing.assert_array_equal(n, lengths[[1, 3]])
    np.testing.assert_array_equal(target.numpy(), y[[1, 3]])
    assert x.shape == (2, X.shape[1], n.max())
    for row, i in enumerate([1, 3]):
        clip = X[i, :, starts[i] : starts[i] + lengths[i]]
        if per_clip:
            m, s = clip.mean(axis=1), clip.std(axis=1)
        else:
            m, s = mean, std
        np.testing.assert_allclose(
            x[row, :, : lengths[i]], (clip - m[:, None]) / s[:, None], atol=1e-5
        )
        np.testing.assert_allclose(served[row], s, rtol=1e-5)
        assert (x[row, :, lengths[i] :] == 0).all()
    # Without scales, no scale: the batch is what the network reads.
    plain = SpectrogramDataset(S, starts, lengths, y, **scale).__getitems__([0])[0]
    assert set(plain) == {"x", "lengths"}


@pytest.mark.parametrize("standardize", ["global", "clip", "group"])
def test_cropped_dataset_serves_windows_of_the_standardised_regions(standardize):
    """Each clip served is ``crop_frames`` frames of its region (all of it
    when shorter) from where a loop over the clips draws with the same
    generator, standardised as the whole region is; the lengths are those of
    the crops."""
    X, y = make_spectrograms(n=12)
    S = check_spectrograms(X)
    starts = np.array([0, 3, 0, 5, 0, 0, 1, 0, 0, 2, 0, 0])
    lengths = S.lengths - starts
    if standardize == "global":
        mean, std = standardization(S, starts, lengths)
        scale = {"mean": mean, "std": std}
    elif standardize == "group":
        mean, std, codes = group_standardization(S, starts, lengths, np.arange(12) % 3)
        scale = {"mean": mean, "std": std, "stat_rows": codes}
    else:
        scale = {}
    whole = SpectrogramDataset(S, starts, lengths, y, scales=True, **scale)
    crop = 25
    cropped = whole.cropped(crop, torch.Generator().manual_seed(7))
    assert whole.crop_frames is None and cropped.crop_frames == crop  # a copy
    order = [4, 0, 9, 3, 11]
    batch, target = cropped.__getitems__(order)
    full, _ = whole.__getitems__(order)
    g = torch.Generator().manual_seed(7)
    draws = torch.rand(len(order), generator=g)
    np.testing.assert_array_equal(target.numpy(), y[order])
    for row, i in enumerate(order):
        room = max(int(lengths[i]) - crop, 0)
        first = int(draws[row] * (room + 1))  # uniform over the starts
        n = min(int(lengths[i]), crop)
        assert int(batch["lengths"][row]) == n
        np.testing.assert_array_equal(
            batch["x"][row, :, :n], full["x"][row, :, first : first + n]
        )
        assert (batch["x"][row, :, n:] == 0).all()
        np.testing.assert_array_equal(batch["scale"][row], full["scale"][row])
    assert batch["x"].shape[2] == min(crop, int(lengths[order].max()))


def test_cropping_as_served_trains_as_cropping_in_augment(monkeypatch):
    """The crops a fit reads as its batches are served are those augment
    would draw from the whole clips: the same networks, to the bit."""
    X, y = make_spectrograms(n=40)
    params = {**TINY, "crop_frames": 30, "n_networks": 2}
    calls = []
    cropped = SpectrogramDataset.cropped

    def spy(self, crop_frames, generator):
        calls.append(crop_frames)
        return cropped(self, crop_frames, generator)

    monkeypatch.setattr(SpectrogramDataset, "cropped", spy)
    served = EmotionEmbeddingClassifier(**params).fit(X, y)
    assert calls and set(calls) == {30}
    n_calls = len(calls)
    monkeypatch.setattr(EmbeddingNet, "crops_as_served", lambda self: False)
    in_augment = EmotionEmbeddingClassifier(**params).fit(X, y)
    assert len(calls) == n_calls  # no view served this time
    np.testing.assert_array_equal(served.transform(X), in_augment.transform(X))
    losses = served.net_.history[:, "train_loss"]
    assert losses == in_augment.net_.history[:, "train_loss"]
    # The calibration's views, cropped in augment both times.
    assert served.proba_scale_ == in_augment.proba_scale_


def test_augment_crops_a_batch_no_wider_than_a_crop_unless_served_cropped():
    """A batch of whole clips no wider than a crop is still cropped: one draw,
    and trimmed to its longest clip (as the calibration's views of short
    clips are); a batch served cropped is left as it is, without the draw."""
    net = EmbeddingNet(
        torch.nn.Identity, criterion=torch.nn.CrossEntropyLoss, crop_frames=20
    )
    lengths = torch.tensor([8, 12])
    x = torch.randn(2, 5, 16) * (torch.arange(16) < lengths[:, None])[:, None, :]

    def run(cropped):
        net.generator_ = torch.Generator().manual_seed(0)
        if cropped:  # the draw the dataset made
            torch.rand(len(lengths), generator=net.generator_)
        out = net.augment(x, lengths, cropped=cropped)
        return out["x"], net.generator_.get_state()

    whole, after_whole = run(False)
    served, after_served = run(True)
    assert torch.equal(after_whole, after_served)
    assert whole.shape[2] == 12 and served.shape[2] == 16
    torch.testing.assert_close(whole, served[:, :, :12])
    assert (served[:, :, 12:] == 0).all()


def test_augment_crops_within_each_clip_and_masks():
    """Each crop is a window of its own clip's valid frames; masks zero whole
    bands and frames; the same seed gives the same batch."""
    net = EmbeddingNet(
        torch.nn.Identity,
        criterion=torch.nn.CrossEntropyLoss,
        crop_frames=20,
        freq_masks=1,
        freq_mask_width=3,
        time_masks=1,
        time_mask_width=5,
    )
    n_mels = 6
    lengths = torch.tensor([50, 12, 30])
    x = torch.arange(3 * n_mels * 50, dtype=torch.float32).reshape(3, n_mels, 50) + 1
    x = x * (torch.arange(50) < lengths[:, None])[:, None, :]

    def batch(seed):
        net.generator_ = torch.Generator().manual_seed(seed)
        return net.augment(x, lengths)

    out = batch(0)
    np.testing.assert_array_equal(out["lengths"].numpy(), [20, 12, 20])
    assert out["x"].shape == (3, n_mels, 20)
    for i in range(3):
        n = int(out["lengths"][i])
        crop = out["x"][i, :, :n]
        kept = crop != 0
        # x[i, b, t] = 1 + (i * n_mels + b) * 50 + t: every kept value gives
        # the crop's start, which must be one start inside the clip.
        b, j = torch.nonzero(kept, as_tuple=True)
        starts = crop[kept] - 1 - (i * n_mels + b) * 50 - j
        assert len(set(starts.tolist())) == 1
        assert 0 <= starts[0] <= lengths[i] - n
        # Zeros are whole masked bands (<= 3) or whole masked frames (<= 5).
        bands, frames = (~kept).all(dim=1), (~kept).all(dim=0)
        assert bands.sum() <= 3 and frames.sum() <= 5
        assert torch.equal(~kept, bands[:, None] | frames[None, :])
        assert (out["x"][i, :, n:] == 0).all()
    torch.testing.assert_close(batch(0)["x"], out["x"])
    assert not torch.equal(batch(1)["x"], out["x"])


def _padded(X, lengths):
    """``X`` with NaN after each clip's ``lengths`` frames."""
    X = X.copy()
    for i, n in enumerate(lengths):
        X[i, :, n:] = np.nan
    return X


def _regions_loop(X, lengths, trim_db):
    """Slow reference: one clip and one frame at a time."""
    starts, out = [], []
    for x, n in zip(X, lengths, strict=True):
        energy = [10 * np.log10(np.mean(10 ** (x[:, t] / 10))) for t in range(n)]
        loud = [t for t in range(n) if energy[t] >= max(energy) - trim_db]
        starts.append(loud[0])
        out.append(loud[-1] - loud[0] + 1)
    return np.array(starts), np.array(out)


@pytest.mark.parametrize("trim_db", [10.0, 30.0, 60.0])
def test_speech_regions_match_a_loop(trim_db):
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 40, 12)
    X = np.zeros((12, 5, 40), dtype=np.float32)
    for i, n in enumerate(lengths):
        loudness = rng.uniform(-70, 0, n)  # dB per frame, silence and speech
        X[i, :, :n] = loudness + rng.normal(0, 3, (5, n))
    starts, out = speech_regions(check_spectrograms(_padded(X, lengths)), trim_db)
    expected_starts, expected_lengths = _regions_loop(X, lengths, trim_db)
    np.testing.assert_array_equal(starts, expected_starts)
    np.testing.assert_array_equal(out, expected_lengths)
    assert (out >= 1).all() and (starts + out <= lengths).all()


def test_speech_regions_ignore_scale_and_padding():
    X = np.zeros((1, 3, 10), dtype=np.float32)
    X[0, :, 3:6] = 500.0  # far above float32's power range
    S = check_spectrograms(_padded(X, [8]))
    starts, lengths = speech_regions(S, 20.0)
    assert (starts[0], lengths[0]) == (3, 3)
    starts, lengths = speech_regions(S, None)
    assert (starts[0], lengths[0]) == (0, 8)


def test_trimming_reads_only_the_speech(monkeypatch):
    """With trim_db, padding the clips with silence changes nothing."""
    X, y = make_spectrograms(n=30)
    lengths = (~np.isnan(X).all(axis=1)).sum(axis=1)
    padded = np.full((30, X.shape[1], 80), np.nan, dtype=np.float32)
    for i, n in enumerate(lengths):
        padded[i, :, :10] = -100.0  # leading silence
        padded[i, :, 10 : 10 + n] = X[i, :, :n] + 40.0
        padded[i, :, 10 + n : 15 + n] = -100.0  # trailing silence
    plain = np.where(np.isnan(X), np.nan, X + 40.0)
    params = {**TINY, "trim_db": 60.0, "freq_masks": 0, "time_masks": 0}
    a = EmotionEmbeddingClassifier(**params).fit(plain, y)
    b = EmotionEmbeddingClassifier(**params).fit(padded, y)
    np.testing.assert_allclose(a.transform(plain), b.transform(padded), atol=1e-5)


@pytest.mark.parametrize("softmax_loss", ["cross_entropy", "aam"])
def test_softmax_losses_learn_separable_emotions(softmax_loss):
    X, y = make_spectrograms(n=60)
    params = {**TINY, "pretrain_epochs": 15, "triplet_epochs": 0, "mixup_alpha": 0.0}
    clf = EmotionEmbeddingClassifier(**params, softmax_loss=softmax_loss).fit(X, y)
    assert clf.score(X, y) > 0.9


def test_sgd_softmax_phase_learns_separable_emotions():
    X, y = make_spectrograms(n=60)
    params = {**TINY, "pretrain_epochs": 15, "triplet_epochs": 0, "mixup_alpha": 0.0}
    clf = EmotionEmbeddingClassifier(**params, softmax_optimizer="sgd").fit(X, y)
    assert clf.score(X, y) > 0.9


@pytest.mark.parametrize("softmax_optimizer", ["adamw", "sgd"])
def test_each_phase_has_its_optimizer_and_weight_decay(monkeypatch, softmax_optimizer):
    """The softmax phase steps with ``softmax_optimizer`` and ``weight_decay``;
    the triplet phase with AdamW and ``triplet_weight_decay`` (or
    ``weight_decay`` when it is None)."""
    X, y = make_spectrograms(n=30)
    seen = {}
    step = EmbeddingNet.train_step

    def spy(self, batch, **kwargs):
        group = self.optimizer_.param_groups[0]
        seen.setdefault(self.phase_, (type(self.optimizer_), group["weight_decay"]))
        if isinstance(self.optimizer_, torch.optim.SGD):
            assert group["momentum"] == 0.9 and group["nesterov"]
            assert group["lr"] == pytest.approx(0.05)  # the schedule's first
        return step(self, batch, **kwargs)

    monkeypatch.setattr(EmbeddingNet, "train_step", spy)
    params = {
        **TINY,
        "softmax_optimizer": softmax_optimizer,
        "lr": 0.05,
        "weight_decay": 3e-4,
        "pretrain_epochs": 1,  # the first epoch's rate is the peak
    }
    EmotionEmbeddingClassifier(**params, triplet_weight_decay=2e-5).fit(X, y)
    softmax = torch.optim.SGD if softmax_optimizer == "sgd" else torch.optim.AdamW
    assert seen == {"softmax": (softmax, 3e-4), "triplet": (torch.optim.AdamW, 2e-5)}
    seen.clear()
    EmotionEmbeddingClassifier(**params).fit(X, y)
    # Unset, the triplet phase's decay is the softmax phase's when both are
    # AdamW, and AdamW's own after SGD's L2 decay.
    triplet = 3e-4 if softmax_optimizer == "adamw" else 1e-4
    assert seen["triplet"] == (torch.optim.AdamW, triplet)


@pytest.mark.parametrize(
    "given, expected",
    [
        # Unset: each optimizer's own rate and decay; the triplet phase's
        # AdamW falls back on the softmax phase's when it is AdamW too.
        ({}, (4.243e-3, 1e-4, 4.243e-3 / 3, 1e-4)),
        ({"softmax_optimizer": "sgd"}, (0.05, 5e-4, 4.243e-3 / 3, 1e-4)),
        ({"lr": 3e-3, "weight_decay": 0.01}, (3e-3, 0.01, 1e-3, 0.01)),
        (
            {"softmax_optimizer": "sgd", "lr": 0.1, "weight_decay": 1e-3},
            (0.1, 1e-3, 4.243e-3 / 3, 1e-4),
        ),
        # Set: as given.
        (
            {"lr": 1.0, "weight_decay": 0.5, "triplet_lr": 0.2},
            (1.0, 0.5, 0.2, 0.5),
        ),
        (
            {"softmax_optimizer": "sgd", "triplet_lr": 0.2, "triplet_weight_decay": 0},
            (0.05, 5e-4, 0.2, 0),
        ),
    ],
)
def test_optimizer_settings_resolve_none(given, expected):
    params = {
        "softmax_optimizer": "adamw",
        **dict.fromkeys(["lr", "weight_decay", "triplet_lr", "triplet_weight_decay"]),
        **given,
    }
    got = optimizer_settings(params)
    names = ("lr", "weight_decay", "triplet_lr", "triplet_weight_decay")
    assert tuple(got[k] for k in names) == pytest.approx(expected)


def test_each_optimizer_alone_trains_with_its_own_rate_and_decay():
    """Either optimizer with nothing else set trains the same networks as its
    rate and decays spelled out (SGD's, the recipe screened in the
    benchmarks)."""
    X, y = make_spectrograms(n=30)

    def embeddings(**params):
        clf = EmotionEmbeddingClassifier(**{**TINY, "pretrain_epochs": 2}, **params)
        return clf.fit(X, y).transform(X)

    sgd = {"softmax_optimizer": "sgd"}
    spelled = {"lr": 0.05, "weight_decay": 5e-4, "triplet_weight_decay": 1e-4}
    np.testing.assert_array_equal(embeddings(**sgd), embeddings(**sgd, **spelled))
    adamw = {"softmax_optimizer": "adamw"}
    spelled = {"lr": 4.243e-3, "weight_decay": 1e-4, "triplet_weight_decay": 1e-4}
    np.testing.assert_array_equal(embeddings(**adamw), embeddings(**adamw, **spelled))


def test_mixup_mixes_the_softmax_phase_only(monkeypatch):
    """The softmax phase trains on mixtures of clips, the triplet phase on the
    clips themselves."""
    X, y = make_spectrograms(n=30)
    seen = []
    infer = EmbeddingNet.infer

    def spy(self, x, **kwargs):
        if self.module_.training:
            seen.append((self.phase_, x["x"].detach().clone(), x["lengths"].clone()))
        return infer(self, x, **kwargs)

    monkeypatch.setattr(EmbeddingNet, "infer", spy)
    params = {**TINY, "pretrain_epochs": 1, "triplet_epochs": 1, "mixup_alpha": 1.0}
    params.update(freq_masks=0, time_masks=0, crop_frames=None, batch_size=64)
    # training views are the clips
    params.update(frequency_warping=0.0, reverberation=0.0)
    clf = EmotionEmbeddingClassifier(**params).fit(X, y)
    S = check_spectrograms(X)
    lengths = S.lengths
    clips, _ = SpectrogramDataset(
        S, np.zeros(30, int), lengths, mean=clf.feature_mean_, std=clf.feature_std_
    ).__getitems__(np.arange(30))
    clips = clips["x"]

    def is_a_clip(row, n):
        return any(
            torch.allclose(row[:, :n], clip[:, :n], atol=1e-5)
            for clip, m in zip(clips, lengths, strict=True)
            if m == n
        )

    phases = {phase for phase, _, _ in seen}
    assert phases == {"softmax", "triplet"}
    for phase, x, n in seen:
        found = [is_a_clip(row, int(k)) for row, k in zip(x, n, strict=True)]
        if phase == "triplet":
            assert all(found)
        else:
            assert not any(found)


def test_augmented_embeddings_are_reproducible_views():
    X, y = make_spectrograms(n=30)
    clf = EmotionEmbeddingClassifier(**{**TINY, "crop_frames": 12}).fit(X, y)
    S = check_spectrograms(X)
    # As the training set is built: with the scales that rooms need.
    dataset = clf._dataset(S, (np.zeros(30, int), S.lengths), scales=True)
    whole = clf.net_.embed(dataset)
    views = clf.net_.embed(dataset, augmented=True)
    np.testing.assert_array_equal(views, clf.net_.embed(dataset, augmented=True))
    assert not np.allclose(views, whole)
    np.testing.assert_allclose(np.linalg.norm(views, axis=1), 1.0, rtol=1e-5)


def test_stretch_matches_numpy_interpolation_clip_by_clip():
    rng = np.random.default_rng(0)
    lengths = torch.tensor([40, 17, 1, 33])
    x = torch.as_tensor(rng.normal(size=(4, 3, 40)), dtype=torch.float32)
    rate = torch.tensor([1.1, 0.9, 1.05, 1.0])
    out, new = _stretch(x, lengths, rate), stretched_lengths(lengths, rate)
    np.testing.assert_array_equal(new.numpy(), [37, 19, 1, 33])
    assert out.shape == (4, 3, 37)
    for i, n in enumerate(lengths.tolist()):
        m = int(new[i])
        where = np.minimum(np.arange(m) * float(rate[i]), n - 1)
        for band in range(3):
            ref = np.interp(where, np.arange(n), x[i, band, :n].numpy())
            np.testing.assert_allclose(out[i, band, :m].numpy(), ref, atol=1e-5)
    # Rate 1 is the identity.
    torch.testing.assert_close(out[3, :, :33], x[3, :, :33])


def test_stretch_of_some_frames_is_those_frames_of_the_whole_stretch():
    # A crop's frames computed alone (as augment does) are, to the bit, the
    # same frames of the whole stretched clips, past their ends included.
    rng = np.random.default_rng(1)
    lengths = torch.tensor([40, 17, 1, 33])
    x = torch.as_tensor(rng.normal(size=(4, 3, 45)), dtype=torch.float32)
    rate = torch.tensor([1.1, 0.9, 1.05, 0.93])
    whole = _stretch(x, lengths, rate)
    frames = torch.as_tensor(rng.integers(0, whole.shape[2], size=(4, 12)))
    some = _stretch(x, lengths, rate, frames)
    assert some.shape == (4, 3, 12)
    for i in range(4):
        torch.testing.assert_close(some[i], whole[i][:, frames[i]], rtol=0, atol=0)


def _unaugmented(lengths, n_mels):
    """A net whose augment does nothing by default (no crops, no masks),
    and a batch of random clips of ``lengths`` frames, zero after them."""
    net = EmbeddingNet(
        torch.nn.Identity,
        criterion=torch.nn.CrossEntropyLoss,
        crop_frames=None,
        freq_masks=0,
        time_masks=0,
    )
    net.generator_ = torch.Generator().manual_seed(0)
    width = int(lengths.max())
    valid = torch.arange(width) < lengths[:, None]
    x = torch.randn(len(lengths), n_mels, width) * valid[:, None, :]
    torch.testing.assert_close(net.augment(x, lengths)["x"], x)
    return net, x


def test_augment_masks_match_a_clip_by_clip_reference():
    """The SpecAugment masks, from the same draws, zero exactly the bands and
    frames that a clip-by-clip loop zeroes, and the padding."""
    lengths = torch.tensor([40, 7, 23, 1, 31])
    net, x = _unaugmented(lengths, n_mels=10)
    net.set_params(freq_masks=2, freq_mask_width=3, time_masks=3, time_mask_width=6)
    n, n_mels, n_frames = x.shape
    out = net.augment(x, lengths, generator=torch.Generator().manual_seed(3))

    g = torch.Generator().manual_seed(3)
    keep = torch.zeros(n, n_mels, n_frames, dtype=torch.bool)
    for i in range(n):
        keep[i, :, : lengths[i]] = True
    for count, widest, size, axis in (
        (2, 3, torch.full_like(lengths, n_mels), 1),
        (3, 6, lengths, 2),
    ):
        for _ in range(count):  # the draws of augment, in its order
            top = torch.clamp(size // 2, max=widest)
            width = (torch.rand(n, generator=g) * (top + 1)).long()
            lo = (torch.rand(n, generator=g) * (size - width + 1)).long()
            for i in range(n):
                hidden = slice(int(lo[i]), int(lo[i] + width[i]))
                if axis == 1:
                    keep[i, hidden, :] = False
                else:
                    keep[i, :, hidden] = False
    assert not keep.all()
    torch.testing.assert_close(out["x"], torch.where(keep, x, 0.0), rtol=0, atol=0)
    torch.testing.assert_close(out["lengths"], lengths)


def test_tempo_perturbation_stretches_training_views_only_when_asked():
    lengths = torch.tensor([100, 60])
    net, x = _unaugmented(lengths, n_mels=4)
    net.set_params(tempo_perturbation=0.2)
    stretched = net.augment(x, lengths)
    n = stretched["lengths"]
    assert not torch.equal(n, lengths)
    assert ((n >= 100 / 1.2 - 1) & (n <= 100 / 0.8 + 1))[0]
    assert ((n >= 60 / 1.2 - 1) & (n <= 60 / 0.8 + 1))[1]
    # Padding after each stretched clip is zero.
    for i in range(2):
        assert (stretched["x"][i, :, int(n[i]) :] == 0).all()


def test_warp_matches_numpy_interpolation_band_by_band():
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(size=(3, 10, 7)), dtype=torch.float32)
    x[:, :, 5:] = 0  # padding frames
    rate = torch.tensor([0.9, 1.13, 1.0])
    out = _warp(x, rate)
    assert out.shape == x.shape
    for i in range(3):
        where = np.minimum(np.arange(10) * float(rate[i]), 9)
        for t in range(7):
            ref = np.interp(where, np.arange(10), x[i, :, t].numpy())
            np.testing.assert_allclose(out[i, :, t].numpy(), ref, atol=1e-5)
    assert (out[:, :, 5:] == 0).all()
    torch.testing.assert_close(out[2], x[2])  # rate 1 is the identity
    assert out.stride(1) == 1  # channels-last, the network's layout


def test_frequency_warping_warps_training_views_only_when_asked():
    lengths = torch.tensor([30, 20])
    net, x = _unaugmented(lengths, n_mels=16)
    net.set_params(frequency_warping=0.2)
    warped = net.augment(x, lengths)
    torch.testing.assert_close(warped["lengths"], lengths)
    assert not torch.allclose(warped["x"], x)
    # Band 0 stays band 0 (0 * rate), and the padding stays zero.
    torch.testing.assert_close(warped["x"][:, 0], x[:, 0])
    assert (warped["x"][1, :, 20:] == 0).all()


def test_piecewise_linear_matches_numpy_interp_row_by_row():
    rng = np.random.default_rng(0)
    inner = np.sort(rng.uniform(0, 15, size=(4, 3)), axis=1)
    inner[1, 1] = inner[1, 0]  # two points at one place
    points = np.hstack([np.zeros((4, 1)), inner, np.full((4, 1), 15.0)])
    values = rng.normal(size=(4, 5))
    out = piecewise_linear(torch.as_tensor(points), torch.as_tensor(values), 16)
    assert out.shape == (4, 16)
    for i in range(4):
        ref = np.interp(np.arange(16), points[i], values[i])
        np.testing.assert_allclose(out[i].numpy(), ref, atol=1e-12)


def test_random_filters_are_bounded_piecewise_linear_gains():
    g = torch.Generator().manual_seed(0)
    gains = random_filters(200, 32, 0.5, g, torch.device("cpu"))
    assert gains.shape == (200, 32) and gains.dtype == torch.float32
    assert gains.abs().max() <= 0.5
    # Each filter is linear between at most 6 points: its second difference
    # is zero but at the 4 inner points, where the slope may change.
    bends = (gains.diff(n=2, dim=1).abs() > 1e-5).sum(dim=1)
    assert bends.max() <= 2 * 4
    assert gains.std(dim=1).min() > 0  # not flat
    # The gains spread over [-0.5, 0.5]; the same seed gives the same filters.
    assert gains.min() < -0.4 and gains.max() > 0.4
    again = random_filters(200, 32, 0.5, torch.Generator().manual_seed(0), "cpu")
    torch.testing.assert_close(again, gains)


def test_filter_augment_adds_one_gain_per_band_to_each_training_crop():
    lengths = torch.tensor([30, 20, 25])
    net, x = _unaugmented(lengths, n_mels=16)
    net.set_params(filter_augment=0.5)
    out = net.augment(x, lengths)["x"]
    torch.testing.assert_close(net.augment(x, lengths)["lengths"], lengths)
    shift = out - x
    for i, n in enumerate(lengths.tolist()):
        # The same gain on every valid frame of a band, none on the padding.
        gain = shift[i, :, :1]
        torch.testing.assert_close(shift[i, :, :n], gain.expand(16, n))
        assert (out[i, :, n:] == 0).all()
        assert 0 < gain.abs().max() <= 0.5
    # The gains are those random_filters draws from the training generator.
    expected = random_filters(3, 16, 0.5, torch.Generator().manual_seed(0), "cpu")
    torch.testing.assert_close(shift[:, :, 0], expected)


@pytest.mark.parametrize("per_frame", [False, True])
def test_reverberate_matches_a_frame_by_frame_reference(per_frame):
    """In power (dB, as the standardisation's scale gives it back), each
    valid frame gets the decaying sum of itself and the frames before it,
    drawn from the generator: a reverberation time in (0, longest] frames
    and a ratio in [0, 10] dB; with a scale per frame (a clip made of two),
    each frame is read and written with its own."""
    lengths = torch.tensor([70, 25, 7, 1])  # several blocks of the recursion
    _, x = _unaugmented(lengths, n_mels=5)
    x = x * 2.0  # a range of about 80 dB, as the top_db floor leaves
    bands = torch.rand(4, 5, generator=torch.Generator().manual_seed(1)) * 10 + 10
    scale = bands[:, :, None].expand(4, 5, 70).clone()
    if per_frame:  # from frame 12 on, the scales of a clip of another speaker
        scale[:, :, 12:] = bands.flip(0)[:, :, None] * 1.5
    given = scale if per_frame else bands
    out = reverberate(x, lengths, given, 40.0, torch.Generator().manual_seed(2))
    assert out.shape == x.shape and out.dtype == x.dtype
    g = torch.Generator().manual_seed(2)
    t60 = ((1 - torch.rand(4, generator=g)) * 40.0).double().numpy()
    drr_db = (torch.rand(4, generator=g) * 10.0).double().numpy()
    for i, n in enumerate(lengths.tolist()):
        # Delay k frames (0 included): a power 6 k / t60 decades down, the
        # weights summing to the ratio's share of the direct sound.
        decay = 10.0 ** (-6.0 / t60[i])
        weights = (1 - decay) * decay ** np.arange(n) * 10 ** (-drr_db[i] / 10)
        for b in range(5):
            s = scale[i, b, :n].double().numpy()
            power = 10 ** (x[i, b, :n].double().numpy() * s / 10)
            heard = power.copy()
            for t in range(n):
                for k in range(t + 1):
                    heard[t] += weights[k] * power[t - k]
            ref = 10 * np.log10(heard) / s
            np.testing.assert_allclose(out[i, b, :n].numpy(), ref, atol=1e-4)
        assert (out[i, :, n:] == 0).all()
    # Reverberation only adds power: no frame is quieter, and every band
    # gets louder somewhere.
    assert (out >= x - 1e-5).all()
    assert ((out - x)[:3].amax(dim=2) > 0.05).all()


def test_reverberation_far_under_a_frame_only_raises_each_frame():
    """A reverberation time far under a frame: the reflections fall in the
    frame itself, raising it by at most 3 dB (a ratio of 0 dB), no echo."""
    lengths = torch.tensor([30, 12])
    _, x = _unaugmented(lengths, n_mels=4)
    x = x * 2.0
    scale = torch.full((2, 4), 20.0)
    out = reverberate(x, lengths, scale, 1e-6, torch.Generator().manual_seed(0))
    rise = (out - x) * 20.0
    g = torch.Generator().manual_seed(0)
    torch.rand(2, generator=g)  # the reverberation times
    drr_db = torch.rand(2, generator=g) * 10.0
    for i, n in enumerate(lengths.tolist()):
        expected = 10 * torch.log10(1 + 10 ** (-drr_db[i] / 10))
        torch.testing.assert_close(
            rise[i, :, :n], expected.expand(4, n), atol=1e-3, rtol=0
        )
        assert 0 <= expected <= 10 * np.log10(2) + 1e-6


def test_reverberation_off_never_reverberates(monkeypatch):
    """Off (the default), augment never calls reverberate or add_noise
    (which make all of the options' draws) and ignores a scale, so that
    training is what it was before the options existed."""
    lengths = torch.tensor([30, 20])
    net, x = _unaugmented(lengths, n_mels=4)
    net.set_params(filter_augment=0.5)
    g = torch.Generator().manual_seed(5)
    first = net.augment(x, lengths, g)["x"]
    # Without crops and masks, FilterAugment's draws are the only ones.
    expected = torch.Generator().manual_seed(5)
    random_filters(2, 4, 0.5, expected, "cpu")
    state = expected.get_state()
    assert torch.equal(g.get_state(), state)

    def refuse(*args):
        raise AssertionError("reverberate or add_noise called while off")

    monkeypatch.setattr(training_module, "reverberate", refuse)
    monkeypatch.setattr(training_module, "add_noise", refuse)
    g = torch.Generator().manual_seed(5)
    again = net.augment(x, lengths, g, scale=torch.ones(2, 4))["x"]
    torch.testing.assert_close(again, first)
    assert torch.equal(g.get_state(), state)


@pytest.mark.parametrize("fraction", [0.5, 0.2, 1.0])
@pytest.mark.parametrize("option", ["reverberation", "noise"])
def test_a_fraction_augments_that_share_of_the_batch(option, fraction):
    """``reverberation_fraction`` and ``noise_fraction`` augment
    ``round(fraction * n)`` clips of a batch of ``n``, drawn without
    replacement, each as reverberate (add_noise) treats it alone with the
    draws that follow the choice; the others are the batch's own. The whole
    batch takes the augmentation's draws unchanged, so that a fraction of 1
    trains as before the option existed."""
    lengths = torch.tensor([40, 25, 33, 7, 40, 18, 29, 11, 40, 3])
    net, x = _unaugmented(lengths, n_mels=4)
    x = x * 2.0
    scale = torch.rand(10, 4, generator=torch.Generator().manual_seed(1)) * 10 + 10
    if option == "reverberation":
        net.set_params(reverberation=20.0, reverberation_fraction=fraction)

        def expected(x, lengths, scale, g):
            return reverberate(x, lengths, scale, 20.0, g)

    else:
        net.set_params(noise_snr=0.0, noise_fraction=fraction)

        def expected(x, lengths, scale, g):
            return add_noise(x, lengths, scale, 0.0, g)

    out = net.augment(x, lengths, torch.Generator().manual_seed(4), scale=scale)["x"]
    count = round(fraction * 10)
    g = torch.Generator().manual_seed(4)
    if count == 10:
        chosen = list(range(10))
    else:
        chosen = torch.randperm(10, generator=g)[:count].tolist()
    assert len(set(chosen)) == count
    heard = expected(x[chosen], lengths[chosen], scale[chosen], g)
    for row, i in enumerate(chosen):
        torch.testing.assert_close(out[i], heard[row])
        assert not torch.equal(out[i], x[i])
    for i in set(range(10)) - set(chosen):
        assert torch.equal(out[i], x[i])


def test_rooms_then_noise_each_on_their_share_with_each_frames_scale():
    """With both fractions below 1, the rooms' share is drawn first and heard
    in rooms, then the noise's share, drawn after the rooms' draws, gets the
    noise; with per-frame scales and offsets (CopyPaste, per-clip
    standardisation), each chosen clip takes its own rows of both."""
    lengths = torch.tensor([30, 25, 12, 30, 7, 18, 30, 21])
    net, x = _unaugmented(lengths, n_mels=4)
    g = torch.Generator().manual_seed(2)
    scale = frame_scales(torch.rand(8, 4, generator=g) * 10 + 5, lengths, 30)
    offset = frame_scales(torch.randn(8, 4, generator=g) * 10 - 40, lengths, 30)
    net.set_params(
        reverberation=20.0,
        reverberation_fraction=0.5,
        noise_snr=0.0,
        noise_spectrum="tilted",
        noise_fraction=0.25,
    )
    out = net.augment(
        x, lengths, torch.Generator().manual_seed(7), scale=scale, offset=offset
    )["x"]
    g = torch.Generator().manual_seed(7)
    expected = x.clone()
    rooms = torch.randperm(8, generator=g)[:4]
    expected[rooms] = reverberate(x[rooms], lengths[rooms], scale[rooms], 20.0, g)
    noisy = torch.randperm(8, generator=g)[:2]
    expected[noisy] = add_noise(
        expected[noisy],
        lengths[noisy],
        scale[noisy],
        0.0,
        g,
        "tilted",
        offset[noisy],
    )
    torch.testing.assert_close(out, expected)
    untouched = set(range(8)) - set(rooms.tolist()) - set(noisy.tolist())
    assert untouched and all(torch.equal(out[i], x[i]) for i in untouched)


def test_reverberation_reads_each_pasted_frame_with_its_scale(monkeypatch):
    """In training with CopyPaste and per-clip standardisation, reverberate
    gets each frame's own scale: a pasted row holds two clips' scales, a
    clip alone one, and every valid frame a positive one (without pasting,
    as in the calibration's augmented views, each clip's own)."""
    seen = []
    reverberate_ = training_module.reverberate

    def spy(x, lengths, scale, longest, generator):
        seen.append((scale.clone(), lengths.clone()))
        return reverberate_(x, lengths, scale, longest, generator)

    monkeypatch.setattr(training_module, "reverberate", spy)
    X, y = make_spectrograms(n=32)
    params = {**TINY, "pretrain_epochs": 1, "triplet_epochs": 0}
    EmotionEmbeddingClassifier(
        **params, standardize="clip", copy_paste=1.0, reverberation=10.0
    ).fit(X, y)
    assert seen
    distinct = []
    for scale, lengths in seen:
        if scale.dim() == 2:  # a clip's own, where nothing is pasted
            assert (scale > 0).all()
            continue
        for i, n in enumerate(lengths.tolist()):
            frames = scale[i, :, :n]
            assert (frames > 0).all()
            distinct.append(len(torch.unique(frames[0])))
    # Every clip pasted whose label another clip of the batch has: two.
    assert set(distinct) <= {1, 2} and 2 in distinct


def test_reverberation_fills_the_silence_after_a_sound():
    """A sound then silence: the tail decays through the silence, 60 dB in
    the reverberation time; the silence before the sound stays as quiet as
    its own reverberation leaves it (at most 3 dB louder)."""
    x = torch.full((1, 1, 60), -4.0)  # -80 dB with a scale of 20 dB
    x[0, 0, 10:20] = 0.0
    net, _ = _unaugmented(torch.tensor([60]), n_mels=1)
    net.set_params(reverberation=30.0)
    with pytest.raises(ValueError, match="reverberation and noise_snr need the scale"):
        net.augment(x, torch.tensor([60]))
    out = net.augment(x, torch.tensor([60]), scale=torch.full((1, 1), 20.0))["x"]
    db = out[0, 0] * 20.0
    assert (db[:10] >= -80.001).all() and (db[:10] <= -76.99).all()
    assert 0 <= db[10] <= 3.02  # the sound's first frame: nothing loud before
    after = db[20:]
    assert (after.diff() <= 1e-4).all() and after[0] > -40  # a decaying tail
    g = torch.Generator().manual_seed(0)  # the generator _unaugmented seeds
    t60 = float((1 - torch.rand(1, generator=g)) * 30.0)
    # 60 dB in t60 frames, while the tail is well above the -80 dB floor.
    drops = -after.diff()[: int((after > -60).sum()) - 1]
    assert len(drops) >= 5
    torch.testing.assert_close(
        drops, torch.full_like(drops, 60.0 / t60), atol=0.05, rtol=0
    )


@pytest.mark.parametrize("per_frame", [False, True])
def test_add_noise_matches_a_band_by_band_reference(per_frame):
    """In power (dB, as the standardisation's scale gives it back), each
    valid frame of a band gets that band's mean power over the clip's valid
    frames times 10 ** (-snr / 10), the ratio drawn from the generator in
    [lowest, lowest + 20] dB; with a scale per frame, each frame is read and
    written with its own."""
    lengths = torch.tensor([30, 12, 1])
    _, x = _unaugmented(lengths, n_mels=5)
    x = x * 2.0
    bands = torch.rand(3, 5, generator=torch.Generator().manual_seed(1)) * 10 + 10
    scale = bands[:, :, None].expand(3, 5, 30).clone()
    if per_frame:  # from frame 8 on, the scales of a clip of another speaker
        scale[:, :, 8:] = bands.flip(0)[:, :, None] * 1.5
    given = scale if per_frame else bands
    out = add_noise(x, lengths, given, 5.0, torch.Generator().manual_seed(2))
    assert out.shape == x.shape and out.dtype == x.dtype
    snr_db = 5.0 + torch.rand(3, generator=torch.Generator().manual_seed(2)) * 20
    assert ((snr_db >= 5.0) & (snr_db <= 25.0)).all()
    for i, n in enumerate(lengths.tolist()):
        for b in range(5):
            s = scale[i, b, :n].double().numpy()
            power = 10 ** (x[i, b, :n].double().numpy() * s / 10)
            noise = power.mean() * 10 ** (-float(snr_db[i]) / 10)
            ref = 10 * np.log10(power + noise) / s
            np.testing.assert_allclose(out[i, b, :n].numpy(), ref, atol=1e-4)
            # The ratio of the band's power to the noise's over the clip.
            added = 10 ** (out[i, b, :n].double().numpy() * s / 10) - power
            ratio = 10 * np.log10(power.sum() / added.sum())
            assert ratio == pytest.approx(float(snr_db[i]), abs=1e-2)
        assert (out[i, :, n:] == 0).all()
    # Noise only adds power, most where the clip is quietest.
    assert (out >= x - 1e-5).all()
    rise = out - x
    quiet, loud = x[0].argmin(dim=1), x[0].argmax(dim=1)
    assert (rise[0].gather(1, quiet[:, None]) > rise[0].gather(1, loud[:, None])).all()


@pytest.mark.parametrize("per_frame", [False, True])
def test_add_noise_tilted_matches_a_reference_in_absolute_power(per_frame):
    """With ``spectrum="tilted"``, each clip's absolute power (dB from the
    scale and the offset) gets, at every valid frame, a noise whose power
    falls linearly in dB over the bands by the tilt drawn in [0, 40] dB, at
    the ratio drawn in [lowest, lowest + 20] dB of the clip's mean power
    over bands and valid frames to the noise's mean over bands."""
    lengths = torch.tensor([30, 12, 1])
    n_mels = 6
    _, x = _unaugmented(lengths, n_mels=n_mels)
    x = x * 2.0
    g = torch.Generator().manual_seed(1)
    bands = torch.rand(3, n_mels, generator=g) * 10 + 10
    levels = torch.rand(3, n_mels, generator=g) * 60 - 50  # -50 to 10 dB
    scale = bands[:, :, None].expand(3, n_mels, 30).clone()
    offset = levels[:, :, None].expand(3, n_mels, 30).clone()
    if per_frame:  # from frame 8 on, those of a clip of another speaker
        scale[:, :, 8:] = bands.flip(0)[:, :, None] * 1.5
        offset[:, :, 8:] = levels.flip(0)[:, :, None] - 20
    given = (scale, offset) if per_frame else (bands, levels)
    out = add_noise(
        x, lengths, given[0], 5.0, torch.Generator().manual_seed(2), "tilted", given[1]
    )
    assert out.shape == x.shape and out.dtype == x.dtype
    draws = torch.Generator().manual_seed(2)
    snr_db = 5.0 + torch.rand(3, generator=draws) * 20
    tilt_db = torch.rand(3, generator=draws) * 40
    b = np.arange(n_mels)
    for i, n in enumerate(lengths.tolist()):
        s = scale[i, :, :n].double().numpy()
        m = offset[i, :, :n].double().numpy()
        power = 10 ** ((x[i, :, :n].double().numpy() * s + m) / 10)
        shape = 10 ** (-float(tilt_db[i]) * b / (n_mels - 1) / 10)
        noise = power.mean() * 10 ** (-float(snr_db[i]) / 10) * shape / shape.mean()
        ref = (10 * np.log10(power + noise[:, None]) - m) / s
        np.testing.assert_allclose(out[i, :, :n].numpy(), ref, rtol=1e-4, atol=1e-4)
        # The noise recovered from the float32 output: its tilt from band to
        # band (a band's noise far under its power to a fraction of a dB),
        # and the ratio.
        added = 10 ** ((out[i, :, :n].double().numpy() * s + m) / 10) - power
        added_db = 10 * np.log10(added.mean(axis=1))
        fall = added_db[0] - added_db[-1]
        assert fall == pytest.approx(float(tilt_db[i]), abs=0.5)
        ratio = 10 * np.log10(power.mean() / added.mean())
        assert ratio == pytest.approx(float(snr_db[i]), abs=1e-2)
        assert (out[i, :, n:] == 0).all()
    # The draws of the ratios are those of speech-shaped noise.
    speech = add_noise(x, lengths, given[0], 5.0, torch.Generator().manual_seed(2))
    assert not torch.equal(speech, out)
    with pytest.raises(ValueError, match="needs the offset"):
        add_noise(x, lengths, bands, 5.0, torch.Generator(), "tilted")
    with pytest.raises(ValueError, match="'pink' is not one of"):
        add_noise(x, lengths, bands, 5.0, torch.Generator(), "pink")


def test_add_noise_tilted_drowns_the_quiet_bands():
    """Over a clip whose top band is 40 dB quieter than its bottom one, the
    tilted noise (at most 40 dB lower at the top) raises the quiet band
    more than the loud one, by the amounts its draws give; features far
    from 0 dB stay finite."""
    lengths = torch.tensor([20])
    x = torch.zeros(1, 2, 20)
    scale = torch.ones(1, 2)
    for level in (0.0, -250.0):  # absolute dB of the bottom band
        offset = torch.tensor([[level, level - 40.0]])
        g = torch.Generator()
        draws = torch.Generator()
        snr_db = 10.0 + torch.rand(1, generator=draws) * 20
        tilt_db = torch.rand(1, generator=draws) * 40
        out = add_noise(x, lengths, scale, 10.0, g, "tilted", offset)
        assert torch.isfinite(out).all()
        # Band powers (relative to each band's own level) from the draws.
        total = (1 + 10**-4) / 2  # mean absolute power, in units of band 0
        shape = torch.tensor([1.0, 10 ** (-float(tilt_db) / 10)])
        noise = total * 10 ** (-float(snr_db) / 10) * shape / shape.mean()
        expected = 10 * torch.log10(1 + noise / torch.tensor([1.0, 10**-4]))
        torch.testing.assert_close(out[0, :, 0], expected, rtol=1e-4, atol=1e-4)
        assert out[0, 1, 0] > out[0, 0, 0] > 0
    # Per-frame offsets (zero after the clip, as pasted frames carry them)
    # give the same noise as the clip's own, however far from 0 dB.
    x, offset = torch.zeros(1, 2, 30), torch.tensor([[-400.0, -440.0]])
    clip = add_noise(x, lengths, scale, 10.0, torch.Generator(), "tilted", offset)
    per_frame = add_noise(
        x,
        lengths,
        frame_scales(scale, lengths, 30),
        10.0,
        torch.Generator(),
        "tilted",
        frame_scales(offset, lengths, 30),
    )
    torch.testing.assert_close(per_frame, clip)
    assert (clip[0, 1, :20] > clip[0, 0, :20]).all()


def test_noise_snr_in_augment_is_add_noise_after_the_rooms():
    """With ``noise_snr``, augment needs the scale and adds noise to every
    crop (add_noise, with the draws that follow the rooms')."""
    lengths = torch.tensor([30, 20, 9])
    net, x = _unaugmented(lengths, n_mels=4)
    x = x * 2.0
    scale = torch.rand(3, 4, generator=torch.Generator().manual_seed(1)) * 10 + 10
    net.set_params(noise_snr=0.0)
    assert serves_scales(net)
    with pytest.raises(ValueError, match="reverberation and noise_snr need the scale"):
        net.augment(x, lengths)
    out = net.augment(x, lengths, torch.Generator().manual_seed(4), scale=scale)
    expected = add_noise(x, lengths, scale, 0.0, torch.Generator().manual_seed(4))
    torch.testing.assert_close(out["x"], expected)
    torch.testing.assert_close(out["lengths"], lengths)
    net.set_params(reverberation=20.0)
    out = net.augment(x, lengths, torch.Generator().manual_seed(4), scale=scale)["x"]
    g = torch.Generator().manual_seed(4)
    heard = reverberate(x, lengths, scale, 20.0, g)
    torch.testing.assert_close(out, add_noise(heard, lengths, scale, 0.0, g))
    # Tilted noise needs the offset too, and gets it.
    net.set_params(reverberation=0.0, noise_spectrum="tilted")
    with pytest.raises(ValueError, match='noise_spectrum="tilted" needs the offset'):
        net.augment(x, lengths, torch.Generator(), scale=scale)
    offset = -scale * 2
    out = net.augment(x, lengths, torch.Generator().manual_seed(4), scale, offset)
    g = torch.Generator().manual_seed(4)
    expected = add_noise(x, lengths, scale, 0.0, g, "tilted", offset)
    torch.testing.assert_close(out["x"], expected)


@pytest.mark.parametrize("spectrum", ["speech", "tilted"])
def test_noise_snr_trains_with_the_scales_served(spectrum):
    """A fit with noise (and per-clip standardisation, whose scales and
    offsets differ clip by clip) serves the scales, and with tilted noise
    the offsets, and adds noise to the training crops."""
    calls = []
    add_noise_ = training_module.add_noise

    def spy(x, lengths, scale, lowest_snr, generator, spectrum, offset):
        calls.append((scale.clone(), lowest_snr, spectrum, offset))
        return add_noise_(x, lengths, scale, lowest_snr, generator, spectrum, offset)

    X, y = make_spectrograms(n=32)
    params = {**TINY, "pretrain_epochs": 1, "triplet_epochs": 1, "reverberation": 0.0}
    with pytest.MonkeyPatch.context() as m:
        m.setattr(training_module, "add_noise", spy)
        clf = EmotionEmbeddingClassifier(
            **params, standardize="clip", noise_snr=10.0, noise_spectrum=spectrum
        ).fit(X, y)
    assert calls and all(c[1:3] == (10.0, spectrum) for c in calls)
    # Each crop's own scales (and offsets): one per band (nothing is
    # pasted), clip by clip; its own means for the offsets.
    for scale, _, _, offset in calls:
        assert scale.shape[1:] == (X.shape[1],) and (scale > 0).all()
        assert len(torch.unique(scale[:, 0])) == len(scale)
        if spectrum == "speech":
            assert offset is None
        else:
            assert offset.shape == scale.shape
            assert len(torch.unique(offset[:, 0])) == len(offset)
    assert serves_scales(clf) and not serves_scales(clf.set_params(noise_snr=None))


def test_tilted_noise_offsets_follow_the_pasted_frames():
    """With CopyPaste, a pasted partner's frames keep the offset (and scale)
    they were standardised with, as augment hands them to add_noise."""
    calls = []
    add_noise_ = training_module.add_noise

    def spy(x, lengths, scale, lowest_snr, generator, spectrum, offset):
        calls.append((scale.clone(), offset.clone(), lengths.clone()))
        return add_noise_(x, lengths, scale, lowest_snr, generator, spectrum, offset)

    X, y = make_spectrograms(n=32)
    params = {**TINY, "pretrain_epochs": 1, "triplet_epochs": 1, "crop_frames": None}
    with pytest.MonkeyPatch.context() as m:
        m.setattr(training_module, "add_noise", spy)
        EmotionEmbeddingClassifier(
            **params,
            reverberation=0.0,
            standardize="clip",
            noise_snr=10.0,
            noise_spectrum="tilted",
            copy_paste=1.0,
        ).fit(X, y)
    # The training steps' batches (views made for embeddings paste nothing).
    calls = [call for call in calls if call[0].dim() == 3]
    assert calls
    for scale, offset, lengths in calls:
        assert scale.shape == offset.shape
        # Frame by frame: the offsets change where a partner's frames begin,
        # with the scales, and both are zero after the clip.
        for i, n in enumerate(lengths.tolist()):
            s_, o_ = scale[i, 0, :n], offset[i, 0, :n]
            changes_s = torch.nonzero(s_[1:] != s_[:-1]).flatten()
            changes_o = torch.nonzero(o_[1:] != o_[:-1]).flatten()
            assert torch.equal(changes_s, changes_o) and len(changes_s) <= 1
            assert (scale[i, :, n:] == 0).all() and (offset[i, :, n:] == 0).all()
    assert any(
        len(torch.nonzero(s[i, 0, 1:n] != s[i, 0, : n - 1])) == 1
        for s, _, lengths in calls
        for i, n in enumerate(lengths.tolist())
    )


def test_mix_band_statistics_matches_a_clip_by_clip_reference():
    """Each clip, standardised band by band over its valid frames, takes the
    mixed mean and standard deviation of its own and its partner's bands."""
    rng = np.random.default_rng(0)
    lengths = torch.tensor([9, 4, 7, 1])
    x = torch.as_tensor(rng.normal(2.0, 3.0, size=(4, 5, 9)), dtype=torch.float32)
    x *= (torch.arange(9) < lengths[:, None])[:, None, :]
    lam = np.array([0.3, 1.0, 0.0, 0.8])
    perm = torch.tensor([2, 0, 1, 3])
    out = mix_band_statistics(x, lengths, lam, perm)
    assert out.shape == x.shape and out.dtype == x.dtype

    def stats(i):  # the population statistics, floored as the pooling floors
        v = x[i, :, : int(lengths[i])].double().numpy()
        return v.mean(axis=1), np.sqrt(np.maximum(v.var(axis=1), 1e-5))

    for i in range(4):
        n, j = int(lengths[i]), int(perm[i])
        (mean, std), (other_mean, other_std) = stats(i), stats(j)
        mixed_mean = lam[i] * mean + (1 - lam[i]) * other_mean
        mixed_std = lam[i] * std + (1 - lam[i]) * other_std
        v = x[i, :, :n].double().numpy()
        ref = (v - mean[:, None]) / std[:, None] * mixed_std[:, None]
        ref += mixed_mean[:, None]
        np.testing.assert_allclose(out[i, :, :n].numpy(), ref, rtol=1e-4, atol=1e-4)
        assert (out[i, :, n:] == 0).all()
    # lam = 1 keeps a clip.
    torch.testing.assert_close(out[1], x[1], rtol=1e-5, atol=1e-5)


def test_freq_mixstyle_restyles_training_views_only_when_asked():
    lengths = torch.tensor([30, 20, 25])
    net, x = _unaugmented(lengths, n_mels=6)
    net.set_params(freq_mixstyle=1.0, freq_mixstyle_alpha=0.3)
    draws = [  # seed 3 draws a permutation that moves every clip
        net.augment(x, lengths, generator=torch.Generator().manual_seed(3))
        for _ in range(2)
    ]
    torch.testing.assert_close(draws[0]["x"], draws[1]["x"])  # the generator's
    torch.testing.assert_close(draws[0]["lengths"], lengths)
    assert not torch.allclose(draws[0]["x"], x)
    assert (draws[0]["x"][1, :, 20:] == 0).all()
    # A batch of one clip has no other clip to take statistics from.
    alone = net.augment(x[:1, :, :30], lengths[:1])
    torch.testing.assert_close(alone["x"], x[:1, :, :30])
    # Probability 0.2 restyles about a fifth of the batches (40 of 200
    # expected, standard deviation 5.7); 0 is off.
    net.set_params(freq_mixstyle=0.2)
    g = torch.Generator().manual_seed(0)
    kept = [torch.equal(net.augment(x, lengths, g)["x"], x) for _ in range(200)]
    assert 20 < 200 - sum(kept) < 60
    net.set_params(freq_mixstyle=0.0)
    torch.testing.assert_close(net.augment(x, lengths)["x"], x)


@pytest.mark.parametrize(
    "option",
    [
        {"freq_mixstyle": 1.0},
        {"copy_paste": 0.5},
        {"filter_augment": 0.3},
        {"reverberation": 20.0},
        {"reverberation": 20.0, "standardize": "clip", "copy_paste": 0.5},
        {"reverberation": 20.0, "reverberation_fraction": 0.5},
    ],
)
def test_augmentation_options_fit_reproducibly(option):
    """A training augmentation draws from the fit's generators: the same
    seed gives the same model, and the option changes it."""
    X, y = make_spectrograms(n=48)
    params = {**TINY, **option}
    first = EmotionEmbeddingClassifier(**params).fit(X, y)
    again = EmotionEmbeddingClassifier(**params).fit(X, y)
    plain = EmotionEmbeddingClassifier(**TINY).fit(X, y)
    np.testing.assert_array_equal(first.transform(X), again.transform(X))
    assert not np.array_equal(first.transform(X), plain.transform(X))


def test_paste_partners_matches_a_clip_by_clip_reference():
    """Each clip is itself, or its valid frames then those of another clip of
    its label, zero after; a clip alone with its label is never pasted."""
    lengths = torch.tensor([5, 9, 3, 7, 6, 4])
    _, x = _unaugmented(lengths, n_mels=4)
    y = torch.tensor([0, 1, 0, 1, 0, 2])  # clip 5 is alone with its label
    pasted_somewhere = set()
    for seed in range(20):
        out, new = paste_partners(
            x, lengths, y, 0.5, torch.Generator().manual_seed(seed)
        )
        assert out.shape == (6, 4, int(new.max()))
        for i in range(6):
            n_i, m = int(lengths[i]), int(new[i])
            torch.testing.assert_close(out[i, :, :n_i], x[i, :, :n_i])
            assert (out[i, :, m:] == 0).all()
            if m == n_i:
                continue
            pasted_somewhere.add(i)
            tail = out[i, :, n_i:m]
            partners = [
                j
                for j in range(6)
                if j != i
                and y[j] == y[i]
                and int(lengths[j]) == m - n_i
                and torch.equal(x[j, :, : m - n_i], tail)
            ]
            assert partners, f"clip {i}: its second part is no clip of its label"
    assert pasted_somewhere == {0, 1, 2, 3, 4}  # never 5


def test_paste_partners_draws_with_its_probability_and_reproducibly():
    lengths = torch.full((8,), 4)
    _, x = _unaugmented(lengths, n_mels=4)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    g = torch.Generator().manual_seed(0)
    pasted = [
        (paste_partners(x, lengths, y, 0.3, g)[1] > 4).float().mean()
        for _ in range(200)
    ]
    assert abs(float(np.mean(pasted)) - 0.3) < 0.03
    again = [
        paste_partners(x, lengths, y, 0.3, torch.Generator().manual_seed(s))
        for s in (1, 1)
    ]
    torch.testing.assert_close(again[0][0], again[1][0])
    out, new = paste_partners(x, lengths, y, 1.0, g)
    assert (new == 8).all()


def test_reverse_gradient_flips_and_scales_the_gradient():
    x = torch.randn(4, 3, requires_grad=True)
    out = _ReverseGradient.apply(x, 0.5)
    torch.testing.assert_close(out, x)
    weights = torch.randn(4, 3)
    (out * weights).sum().backward()
    torch.testing.assert_close(x.grad, -0.5 * weights)


def test_speaker_adversarial_trains_a_speaker_classifier_in_both_phases(monkeypatch):
    """Every training batch adds the speaker loss of its own clips' speakers;
    the speaker classifier learns, and is gone from the fitted model."""
    X, y = make_spectrograms(n=48)
    groups = np.array(["abcdef"[i % 6] for i in range(48)])
    seen = []
    speaker_loss = EmbeddingNet.speaker_loss

    def spy(self, embeddings, speakers):
        loss = speaker_loss(self, embeddings, speakers)
        seen.append((self.phase_, speakers.tolist(), loss.item()))
        return loss

    monkeypatch.setattr(EmbeddingNet, "speaker_loss", spy)
    params = {**TINY, "pretrain_epochs": 30, "triplet_epochs": 2, "mixup_alpha": 0.0}
    clf = EmotionEmbeddingClassifier(**params, speaker_adversarial=0.1)
    clf.fit(X, y, groups=groups)
    assert {phase for phase, _, _ in seen} == {"softmax", "triplet"}
    softmax = [s for phase, s, _ in seen if phase == "softmax"]
    assert sorted(sum(softmax[:3], [])) == sorted(  # the first epoch's 3 batches
        np.unique(groups, return_inverse=True)[1].tolist()
    )
    losses = [loss for phase, _, loss in seen if phase == "softmax"]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])  # the classifier learns
    assert not hasattr(clf.net_.module_, "speaker_adversary")
    plain = EmotionEmbeddingClassifier(**params).fit(X, y, groups=groups)
    keys = clf.net_.module_.state_dict().keys()
    assert keys == plain.net_.module_.state_dict().keys()
    assert not np.allclose(clf.transform(X), plain.transform(X))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"speaker_adversarial": 0.5}, r"speaker_adversarial=0.5 needs .*groups="),
        ({"standardize": "group"}, r"standardize='group' .* groups=speakers"),
        ({"center_embeddings": "group"}, r"center_embeddings='group' .* groups="),
    ],
)
def test_settings_that_need_the_speakers_refuse_a_fit_without_them(params, match):
    X, y = make_spectrograms(n=30)
    clf = EmotionEmbeddingClassifier(**TINY, **params)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)
    assert not hasattr(clf, "net_")


def _group_fit():
    X, y = make_spectrograms()
    groups = np.repeat(np.arange(6), 10)
    clf = EmotionEmbeddingClassifier(**TINY, standardize="group")
    return clf.fit(X, y, groups=groups), X, y, groups


def test_group_standardization_removes_a_speakers_level_at_prediction():
    """A speaker recorded 6 dB louder gets the same embeddings: each speaker is
    standardised with its own clips, at prediction as in training."""
    clf, X, _, groups = _group_fit()
    louder = X.copy()
    louder[groups == 2] += 6.0
    np.testing.assert_allclose(
        clf.transform(louder, groups=groups), clf.transform(X, groups=groups), atol=1e-5
    )
    # Speakers are standardised apart: changing one leaves the others alone.
    other = X.copy()
    other[groups == 2] *= 3.0
    keep = groups != 2
    np.testing.assert_array_equal(
        clf.transform(other, groups=groups)[keep], clf.transform(X, groups=groups)[keep]
    )


def test_group_standardization_without_groups_takes_the_clips_as_one_speaker():
    clf, X, _, groups = _group_fit()
    one = groups == 3
    with pytest.warns(
        MissingGroupsWarning, match=r"no groups were given: the 10 clips"
    ):
        alone = clf.predict_proba(X[one])
    together = clf.predict_proba(X, groups=groups)[one]  # other batches: rounding
    np.testing.assert_allclose(alone, together, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"groups has shape \(59,\); expected"):
        clf.predict(X, groups=groups[:-1])


def test_group_standardization_in_a_pipeline_and_other_settings_ignore_groups():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = make_spectrograms()
    groups = np.repeat(np.arange(6), 10)
    pipe = make_pipeline(
        FunctionTransformer(), EmotionEmbeddingClassifier(**TINY, standardize="group")
    )
    pipe.fit(X, y, emotionembeddingclassifier__groups=groups)
    clf = pipe[-1]
    np.testing.assert_array_equal(
        pipe.predict(X, groups=groups), clf.predict(X, groups=groups)
    )
    plain = EmotionEmbeddingClassifier(**TINY).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # groups are ignored, without a warning
        np.testing.assert_array_equal(
            plain.transform(X, groups=groups), plain.transform(X)
        )


def test_group_standardization_with_validation_and_unordered_string_groups(
    monkeypatch,
):
    """The network reads each speaker's clips standardised with that speaker's
    statistics (an explicit reference: per-speaker z-scores), the held-out
    speakers' from their own clips, as new speakers' at prediction; speakers
    given in any order and of any type."""
    X, y = make_spectrograms()
    rng = np.random.default_rng(1)
    groups = rng.permutation(np.repeat([f"spk{k}" for k in range(6)], 10))
    read = []
    getitems = SpectrogramDataset.__getitems__

    def spy(self, indices):
        batch, target = getitems(self, indices)
        read.append((self.indices[np.asarray(indices)], batch["x"].numpy()))
        return batch, target

    monkeypatch.setattr(SpectrogramDataset, "__getitems__", spy)
    clf = EmotionEmbeddingClassifier(
        **{**TINY, "crop_frames": None, "pretrain_epochs": 1, "triplet_epochs": 0},
        standardize="group",
        validation_fraction=0.34,
    ).fit(X, y, groups=groups)
    lengths = (~np.isnan(X).all(axis=1)).sum(axis=1)
    seen = set()
    for clips, x in read:
        for row, i in enumerate(clips):
            own = np.concatenate(
                [X[j, :, : lengths[j]] for j in np.flatnonzero(groups == groups[i])],
                axis=1,
            )
            m, sd = own.mean(axis=1, keepdims=True), own.std(axis=1, keepdims=True)
            np.testing.assert_allclose(
                x[row, :, : lengths[i]], (X[i, :, : lengths[i]] - m) / sd, atol=1e-4
            )
            seen.add(i)
    assert len(seen) == len(X)  # training and validation clips were read
    # Predictions follow the clips: shuffled together, shuffled outputs.
    p = rng.permutation(len(X))
    np.testing.assert_allclose(
        clf.transform(X[p], groups=groups[p]),
        clf.transform(X, groups=groups)[p],
        atol=1e-6,
    )


def test_group_standardization_in_fit_transform_score_and_routing():
    import sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    clf, X, y, groups = _group_fit()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no speaker-less call
        np.testing.assert_allclose(
            clone(clf).fit_transform(X, y, groups=groups),
            clf.transform(X, groups=groups),
            atol=1e-6,
        )
        expected = np.mean(clf.predict(X, groups=groups) == y)
        assert clf.score(X, y, groups=groups) == expected
    with sklearn.config_context(enable_metadata_routing=True):
        first = clone(clf).set_fit_request(groups=True)
        first.set_transform_request(groups=True)
        pipe = make_pipeline(first, LogisticRegression())
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            pipe.fit(X, y, groups=groups)
            pipe.predict(X, groups=groups)


def test_embedding_centering_against_the_same_network_uncentred():
    """Centring happens after training: the same seed trains the same network,
    and the centred classifier's embeddings, centroids and predictions are
    those of the plain one's embeddings with each speaker's mean taken away
    (an explicit per-speaker reference)."""
    X, y = make_spectrograms()
    rng = np.random.default_rng(3)
    groups = rng.permutation(np.repeat([f"spk{k}" for k in range(6)], 10))
    plain = EmotionEmbeddingClassifier(**TINY).fit(X, y, groups=groups)
    clf = clone(plain).set_params(center_embeddings="group")
    clf.fit(X, y, groups=groups)
    assert not hasattr(plain, "embedding_mean_")
    raw = plain.transform(X)
    np.testing.assert_allclose(clf.embedding_mean_, raw.mean(axis=0), atol=1e-6)
    want = np.empty_like(raw)
    for g in np.unique(groups):
        own = raw[groups == g]
        mean = (own.sum(axis=0) + raw.mean(axis=0)) / (len(own) + 1)
        want[groups == g] = (own - mean) / np.linalg.norm(own - mean, axis=1)[:, None]
    got = clf.transform(X, groups=groups)
    np.testing.assert_allclose(got, want, atol=1e-5)
    for c in range(3):
        mean = want[y == c].mean(axis=0)
        np.testing.assert_allclose(
            clf.centroids_[c], mean / np.linalg.norm(mean), atol=1e-5
        )
    np.testing.assert_array_equal(
        clf.predict(X, groups=groups), (got @ clf.centroids_.T).argmax(axis=1)
    )
    # Speakers are centred apart and in any order.
    p = rng.permutation(len(X))
    np.testing.assert_allclose(clf.transform(X[p], groups=groups[p]), got[p], atol=1e-6)
    one = groups == "spk2"
    with pytest.warns(
        MissingGroupsWarning, match=r"center_embeddings='group' normalises .* 10 clips"
    ):
        alone = clf.transform(X[one])
    np.testing.assert_allclose(alone, got[one], atol=1e-6)
    # A refit without it keeps no mean of the last.
    clf.set_params(center_embeddings=None).fit(X, y)
    assert not hasattr(clf, "embedding_mean_")


def test_ensemble_joins_networks_of_their_own_seeds():
    """n_networks trains each member from its own seed (the first is the net
    of a single fit with the same random_state) and joins their embeddings:
    an explicit reference from single fits of the members' seeds."""
    X, y = make_spectrograms()
    single = EmotionEmbeddingClassifier(**TINY).fit(X, y)
    clf = clone(single).set_params(n_networks=3).fit(X, y)
    seeds = [net.random_state for net in clf.net_.nets]
    assert seeds[0] == single.net_.random_state and len(set(seeds)) == 3
    assert seeds == member_seeds(seeds[0], 3)
    members = []
    for seed in seeds:  # the same nets, trained one at a time
        params = {**clf.get_params(), "n_networks": 1}
        net = make_net(params, n_mels=12, n_classes=3, device="cpu", random_state=seed)
        members.append(net.fit_phases(*_datasets(clf, X, y)))
    want = np.hstack([net.embed(_datasets(clf, X, y)[0]) for net in members])
    want /= np.sqrt(3)
    got = clf.transform(X)
    assert got.shape == (60, 3 * TINY["embedding_dim"])
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got[:, :8] * np.sqrt(3), single.transform(X), atol=1e-5)
    # The cosine of two clips is the mean of the members' cosines.
    parts = np.split(got * np.sqrt(3), 3, axis=1)
    np.testing.assert_allclose(
        got @ got.T, np.mean([p @ p.T for p in parts], axis=0), atol=1e-5
    )
    for c in range(3):
        mean = want[y == c].mean(axis=0)
        np.testing.assert_allclose(
            clf.centroids_[c], mean / np.linalg.norm(mean), atol=1e-5
        )
    assert [row["network"] for row in clf.net_.history] == [0] * 3 + [1] * 3 + [2] * 3
    assert torch.device(clf.net_.device).type == "cpu"


def test_ensemble_warm_start_keeps_every_network():
    X, y = make_spectrograms()
    clf = EmotionEmbeddingClassifier(**{**TINY, "n_networks": 2}).fit(X, y)
    before = clf.transform(X)
    seeds = [net.random_state for net in clf.net_.nets]
    lengths = [len(net.history) for net in clf.net_.nets]
    clf.set_params(warm_start=True, pretrain_epochs=0, triplet_epochs=0).fit(X, y)
    np.testing.assert_allclose(clf.transform(X), before, atol=1e-6)
    assert [net.random_state for net in clf.net_.nets] == seeds
    assert [len(net.history) for net in clf.net_.nets] == lengths
    clf.set_params(pretrain_epochs=1).fit(X, y)  # one more epoch for each
    assert [len(net.history) for net in clf.net_.nets] == [n + 1 for n in lengths]
    assert len(clf.net_.history) == sum(lengths) + 2


def test_ensemble_trained_in_threads_equals_the_serial_one_bit_for_bit(monkeypatch):
    """n_jobs trains the networks at the same time, each in a thread of its
    own (n_jobs=None follows joblib's context), into exactly the networks
    trained one after the other in the caller's thread."""
    X, y = make_spectrograms()
    threads = {}
    train_step = EmbeddingNet.train_step

    def spy_train_step(self, batch, **fit_params):
        threads.setdefault(self.random_state, set()).add(threading.get_ident())
        return train_step(self, batch, **fit_params)

    monkeypatch.setattr(EmbeddingNet, "train_step", spy_train_step)
    params = {**TINY, "n_networks": 2, "n_jobs": None}
    params.update(dropout=0.3, mixup_alpha=0.4)
    serial = EmotionEmbeddingClassifier(**params).fit(X, y)
    assert list(threads.values()) == [{threading.get_ident()}] * 2
    threads.clear()
    with joblib.parallel_config(n_jobs=2):
        threaded = clone(serial).fit(X, y)  # n_jobs=None: the context's 2
    used = [thread for (thread,) in threads.values()]
    assert len(set(used)) == 2 and threading.get_ident() not in used
    expected = serial.net_.module_.state_dict()
    for name, value in threaded.net_.module_.state_dict().items():
        assert torch.equal(value, expected[name]), name
    np.testing.assert_array_equal(threaded.predict_proba(X), serial.predict_proba(X))
    assert [len(n.history) for n in threaded.net_.nets] == [
        len(n.history) for n in serial.net_.nets
    ]


def test_the_default_ensemble_trains_its_two_networks_at_once(monkeypatch):
    """The defaults are two networks, trained at once where there are two
    cores (n_jobs=-1), one after the other on one."""
    X, y = make_spectrograms()
    threads, started, met = [], set(), []
    train_step = EmbeddingNet.train_step

    def spy_train_step(self, batch, **fit_params):
        threads.append(threading.get_ident())
        if self.random_state not in started:  # each network's first step
            started.add(self.random_state)
            # Waits for the other network's first step: only threads meet.
            deadline = time.monotonic() + 10
            while len(started) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            met.append(len(started) == 2)
        return train_step(self, batch, **fit_params)

    monkeypatch.setattr(EmbeddingNet, "train_step", spy_train_step)
    params = {k: v for k, v in TINY.items() if k != "n_networks"}
    clf = EmotionEmbeddingClassifier(**params).fit(X, y)
    assert len(clf.net_.nets) == 2
    assert clf.centroids_.shape[1] == 2 * TINY["embedding_dim"]
    if joblib.cpu_count() >= 2:
        assert len(set(threads)) == 2 and met == [True, True]
    else:
        assert len(set(threads)) == 1


def test_member_nets_lists_an_ensembles_networks_or_the_one():
    X, y = make_spectrograms()
    one = EmotionEmbeddingClassifier(**TINY).fit(X, y)
    assert member_nets(one.net_) == [one.net_]
    two = EmotionEmbeddingClassifier(**{**TINY, "n_networks": 2, "n_jobs": 1})
    two.fit(X, y)
    assert member_nets(two.net_) == two.net_.nets and len(two.net_.nets) == 2


def test_networks_at_once_follows_joblib_and_the_ensemble():
    assert networks_at_once(None, 3) == 1
    assert networks_at_once(-1, 2) == min(joblib.cpu_count(), 2)
    assert networks_at_once(8, 3) == 3
    with joblib.parallel_config(n_jobs=4):
        assert networks_at_once(None, 3) == 3


def test_ensemble_threads_use_the_callers_torch_threads(monkeypatch):
    """A new thread takes the torch thread count last set by any thread; each
    network's thread takes the count of the fit (n_threads) instead."""
    X, y = make_spectrograms()
    counts = set()
    train_step = EmbeddingNet.train_step

    def spy_train_step(self, batch, **fit_params):
        counts.add(torch.get_num_threads())
        return train_step(self, batch, **fit_params)

    monkeypatch.setattr(EmbeddingNet, "train_step", spy_train_step)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        other = threading.Thread(target=torch.set_num_threads, args=(2,))
        other.start()
        other.join()
        params = {**TINY, "n_networks": 2, "n_jobs": 2, "n_threads": 1}
        EmotionEmbeddingClassifier(**params).fit(X, y)
    finally:
        torch.set_num_threads(before)
    assert counts == {1}


def _datasets(clf, X, y):
    """The training set a fit of ``clf`` on ``X, y`` builds (and no validation
    set), standardised with the statistics ``clf`` fitted."""
    S = check_spectrograms(X)
    scale = {"mean": clf.feature_mean_, "std": clf.feature_std_}
    dataset = SpectrogramDataset(
        S, *speech_regions(S), y, scales=serves_scales(clf), **scale
    )
    return dataset, None


def test_refit_with_another_standardisation_keeps_no_old_statistics():
    X, y = make_spectrograms()
    clf = EmotionEmbeddingClassifier(**TINY).fit(X, y)
    assert hasattr(clf, "feature_mean_")
    clf.set_params(standardize="group").fit(X, y, groups=np.arange(60) % 3)
    assert not hasattr(clf, "feature_mean_") and not hasattr(clf, "feature_std_")


def test_dataset_refuses_group_statistics_without_their_rows():
    X, y = make_spectrograms(n=10)
    S = check_spectrograms(X)
    starts, lengths = np.zeros(10, int), S.lengths
    two_d = np.zeros((2, X.shape[1]), np.float32)
    with pytest.raises(ValueError, match=r"stat_rows goes with 2-D mean"):
        SpectrogramDataset(S, starts, lengths, y, mean=two_d, std=two_d + 1)
    with pytest.raises(ValueError, match=r"stat_rows goes with 2-D mean"):
        SpectrogramDataset(S, starts, lengths, y, stat_rows=np.zeros(10, int))
    with pytest.raises(ValueError, match=r"expected one row per clip served"):
        SpectrogramDataset(
            S, starts, lengths, y, mean=two_d, std=two_d + 1, stat_rows=np.zeros(9, int)
        )


def _collapse_at_every_epoch(monkeypatch):
    """Make the collapse monitor's threshold one that every epoch reaches."""
    init = CollapseMonitor.__init__
    monkeypatch.setattr(
        CollapseMonitor,
        "__init__",
        lambda self, threshold=0.99: init(self, threshold=-1.0),
    )


def test_collapse_stops_the_triplet_phase_and_warns_at_the_callers_line(monkeypatch):
    """A collapse (here: a threshold every batch reaches) restores the last
    healthy weights, stops the phase, and the warning points at the user's
    code, not at skorch's."""
    from sklearn.model_selection import cross_val_score

    from sklearn_tser.exceptions import EmbeddingCollapseWarning

    _collapse_at_every_epoch(monkeypatch)
    X, y = make_spectrograms(n=30)
    params = {**TINY, "pretrain_epochs": 2, "triplet_epochs": 5}
    with pytest.warns(EmbeddingCollapseWarning, match="collapsed at epoch 3") as w:
        clf = EmotionEmbeddingClassifier(**params).fit(X, y)
    assert w[0].filename == __file__
    assert [row["phase"] for row in clf.net_.history] == ["softmax"] * 2 + ["triplet"]
    with pytest.warns(EmbeddingCollapseWarning) as w:
        cross_val_score(EmotionEmbeddingClassifier(**params), X, y, cv=2)
    assert w[0].filename == __file__


def _weights(module):  # float64 copies of the floating-point entries
    return {
        k: v.detach().double() if v.is_floating_point() else v.detach().clone()
        for k, v in module.state_dict().items()
    }


def test_weight_averaging_is_a_running_average_of_the_epochs(monkeypatch):
    """With ema_epochs=e, each phase ends with its epochs' weights w averaged
    by a <- a + max(1/e, 1/t) (w - a) (a float64 loop), the first copied."""
    X, y = make_spectrograms(n=30)
    seen = []  # per phase: its first weights, then each epoch's
    on_train_begin = EmbeddingNet.on_train_begin
    update_average = EmbeddingNet.update_average

    def spy_begin(self, net, **kwargs):
        seen.append([_weights(self.module_)])
        return on_train_begin(self, net, **kwargs)

    def spy_update(self):
        seen[-1].append(_weights(self.module_))
        return update_average(self)

    monkeypatch.setattr(EmbeddingNet, "on_train_begin", spy_begin)
    monkeypatch.setattr(EmbeddingNet, "update_average", spy_update)
    params = {**TINY, "pretrain_epochs": 6, "triplet_epochs": 4, "ema_epochs": 3.0}
    clf = EmotionEmbeddingClassifier(**params).fit(X, y)
    assert [len(states) for states in seen] == [1 + 6, 1 + 4]

    def running_average(states):
        average = dict(states[0])
        for t, state in enumerate(states[1:], start=2):
            step = max(1 / 3, 1 / t)
            for name, value in state.items():
                if value.is_floating_point():
                    average[name] = average[name] + step * (value - average[name])
                else:
                    average[name] = value
        return average

    softmax, triplet = seen
    start = running_average(softmax[1:])  # the triplet phase starts from it
    for name, value in start.items():
        torch.testing.assert_close(triplet[0][name], value, rtol=1e-5, atol=1e-6)
    final = _weights(clf.net_.module_)
    expected = running_average(triplet[1:])
    assert final.keys() == expected.keys()
    for name, value in final.items():
        torch.testing.assert_close(value, expected[name], rtol=1e-5, atol=1e-6)
    assert not all(torch.equal(v, triplet[-1][k]) for k, v in final.items())
    assert clf.net_.averaged_ is None  # the fitted net keeps no second copy


def test_weight_averaging_leaves_the_trained_weights_on_their_course():
    """The weights being trained follow the same course with or without an
    average beside them (validated, and watched by the collapse monitor,
    every epoch): the same training losses through a phase; and
    ema_epochs=1, which averages nothing, gives the same model."""
    X, y = make_spectrograms(n=30)
    params = {**TINY, "pretrain_epochs": 5, "triplet_epochs": 3}
    validated = {**params, "validation_fraction": 0.3, "patience": 100}
    off = EmotionEmbeddingClassifier(**validated).fit(X, y).net_.history
    for ema_epochs, same in [(1, 8), (3, 5)]:  # the average starts the triplets
        on = EmotionEmbeddingClassifier(**validated, ema_epochs=ema_epochs)
        on = on.fit(X, y).net_.history
        assert list(on[:, "phase"]) == ["softmax"] * 5 + ["triplet"] * 3
        np.testing.assert_array_equal(on[:same, "train_loss"], off[:same, "train_loss"])
    assert on[5:, "train_loss"] != off[5:, "train_loss"]
    plain = EmotionEmbeddingClassifier(**params).fit(X, y)
    one = EmotionEmbeddingClassifier(**params, ema_epochs=1).fit(X, y)
    np.testing.assert_array_equal(one.transform(X), plain.transform(X))


def test_early_stopping_validates_and_keeps_the_averaged_weights(monkeypatch):
    """With validation, each epoch's validation loss is that of the average, and
    the phase ends with the average of its best epoch."""
    X, y = make_spectrograms(n=40)
    averages, sets = [], {}
    update_average = EmbeddingNet.update_average
    fit_phases = EmbeddingNet.fit_phases

    def spy_average(self):
        update_average(self)
        averages.append({k: v.clone() for k, v in self.averaged_.items()})

    def spy_fit_phases(self, train_set, valid_set=None):
        sets["valid"] = valid_set
        return fit_phases(self, train_set, valid_set)

    monkeypatch.setattr(EmbeddingNet, "update_average", spy_average)
    monkeypatch.setattr(EmbeddingNet, "fit_phases", spy_fit_phases)
    params = {**TINY, "pretrain_epochs": 30, "triplet_epochs": 0, "lr": 0.1}
    params.update(validation_fraction=0.3, patience=3, ema_epochs=4)
    clf = EmotionEmbeddingClassifier(**params).fit(X, y)
    net = clf.net_
    best = dict(net.callbacks_)["early_stopping"].best_epoch_
    # This seed and rate overfit the 12 validation clips: the phase stops 3
    # epochs after its best, and puts back that epoch's average.
    assert len(averages) == len(net.history) == best + 3
    kept = net.module_.state_dict()
    for name, value in averages[best - 1].items():
        torch.testing.assert_close(kept[name], value)
    total, count = 0.0, 0
    for batch in net.get_iterator(sets["valid"]):  # skorch's validation, by hand
        total += net.validation_step(batch)["loss"].item() * len(batch[1])
        count += len(batch[1])
    assert total / count == pytest.approx(net.history[best - 1, "valid_loss"], rel=1e-5)


def test_weight_averaging_needs_a_time_constant_of_an_epoch_or_more():
    X, y = make_spectrograms(n=30)
    with pytest.raises(ValueError, match="'ema_epochs' parameter"):
        EmotionEmbeddingClassifier(**TINY, ema_epochs=0.5).fit(X, y)


def test_a_collapse_restores_the_average_of_the_last_healthy_epoch(monkeypatch):
    """A triplet phase that collapses at its first epoch ends where the
    softmax phase did: with the softmax phase's average, not the collapsed
    epoch's weights averaged in."""
    from sklearn_tser.exceptions import EmbeddingCollapseWarning

    _collapse_at_every_epoch(monkeypatch)
    X, y = make_spectrograms(n=30)
    params = {**TINY, "pretrain_epochs": 4, "ema_epochs": 3}
    without = EmotionEmbeddingClassifier(**{**params, "triplet_epochs": 0}).fit(X, y)
    with pytest.warns(EmbeddingCollapseWarning, match="collapsed at epoch 5"):
        clf = EmotionEmbeddingClassifier(**{**params, "triplet_epochs": 3}).fit(X, y)
    np.testing.assert_array_equal(clf.transform(X), without.transform(X))


def test_cpu_training_uses_the_fused_adamw_with_the_same_result(monkeypatch):
    """On the CPU the optimizer is torch's fused AdamW (one kernel per step);
    it trains the same weights as the per-weight loop, to float rounding."""
    X, y = make_spectrograms()
    fused = EmotionEmbeddingClassifier(**TINY).fit(X, y)
    assert fused.net_.optimizer_.defaults["fused"] is True
    monkeypatch.setattr(training_module, "_FUSED_DEVICES", ())
    looped = EmotionEmbeddingClassifier(**TINY).fit(X, y)
    assert not looped.net_.optimizer_.defaults["fused"]
    a, b = fused.net_.module_.state_dict(), looped.net_.module_.state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5, msg=name)


def test_autocast_dtype(monkeypatch):
    """bfloat16 by default on a CUDA GPU that computes it natively (compute
    capability 8.0 or later), asked once per device; elsewhere only when asked
    for."""
    from sklearn_tser import _training

    asked = []
    capabilities = {0: (8, 0), 1: (7, 5)}

    def capability(index):
        asked.append(index)
        return capabilities[index]

    current = [1]
    monkeypatch.setattr(torch.cuda, "get_device_capability", capability)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: current[0])
    _training._native_bfloat16.cache_clear()
    try:
        assert autocast_dtype("auto", "cpu") is None
        assert autocast_dtype("auto", "cuda:0") is torch.bfloat16
        assert autocast_dtype("auto", torch.device("cuda:0")) is torch.bfloat16
        assert autocast_dtype("auto", "cuda:1") is None  # a Turing GPU (T4)
        assert autocast_dtype("bfloat16", "cuda:1") is torch.bfloat16
        assert autocast_dtype("float32", torch.device("cuda:0")) is None
        assert autocast_dtype("bfloat16", "cpu") is torch.bfloat16
        # "cuda" is whichever device is current: the answer follows it.
        assert autocast_dtype("auto", "cuda") is None
        current[0] = 0
        assert autocast_dtype("auto", "cuda") is torch.bfloat16
        assert asked == [0, 1]
    finally:
        _training._native_bfloat16.cache_clear()


def test_bfloat16_training_steps_on_the_cpu():
    """precision="bfloat16" runs the training steps' convolutions in bfloat16,
    keeps the weights in float32 and predicts in float32; "auto" on the CPU is
    "float32", the same model to the last bit."""
    X, y = make_spectrograms()
    seen = []

    def record(module, inputs, output):
        if isinstance(module, torch.nn.Conv1d):
            seen.append((module.training, output.dtype))

    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        bf16 = EmotionEmbeddingClassifier(**TINY, precision="bfloat16").fit(X, y)
        proba = bf16.predict_proba(X)
    finally:
        handle.remove()
    assert {dtype for training, dtype in seen if training} == {torch.bfloat16}
    assert {dtype for training, dtype in seen if not training} == {torch.float32}
    assert all(w.dtype == torch.float32 for w in bf16.net_.module_.parameters())
    assert np.isfinite(proba).all()

    auto = EmotionEmbeddingClassifier(**TINY).fit(X, y)
    full = EmotionEmbeddingClassifier(**TINY, precision="float32").fit(X, y)
    np.testing.assert_array_equal(auto.predict_proba(X), full.predict_proba(X))
    assert proba.dtype == full.predict_proba(X).dtype
    assert not np.array_equal(proba, full.predict_proba(X))


def test_precision_is_validated():
    X, y = make_spectrograms()
    with pytest.raises(ValueError, match="'precision' parameter"):
        EmotionEmbeddingClassifier(**TINY, precision="float16").fit(X, y)


def test_initial_weights_are_drawn_on_the_cpu_whatever_the_device(monkeypatch):
    """The module's weights are drawn from a CPU generator before skorch moves
    it to ``device``: a net for another device (here "meta", which holds no
    values) draws the CPU net's weights, and does not ask for a generator of
    that device (torch has none for "meta"; a CUDA one cannot draw CPU
    weights)."""
    drawn = []

    def spy(module, generator):
        initialize_weights(module, generator)
        drawn.append({k: v.clone() for k, v in module.state_dict().items()})

    monkeypatch.setattr(training_module, "initialize_weights", spy)
    for device in ("cpu", "meta"):
        net = EmbeddingNet(
            torch.nn.Linear,
            module__in_features=4,
            module__out_features=3,
            criterion=torch.nn.CrossEntropyLoss,
            device=device,
            random_state=7,
        ).initialize()
        assert net.module_.weight.device.type == device
    on_cpu, elsewhere = drawn
    for name, w in on_cpu.items():
        assert elsewhere[name].device.type == "cpu"
        torch.testing.assert_close(elsewhere[name], w)


def test_zero_init_residual_reaches_every_member_at_initialisation():
    """The classifier's zero_init_residual starts the last batch
    normalisation of every residual block of every member at zero scales."""
    from sklearn_tser._networks import _Block

    params = {**EmotionEmbeddingClassifier(**TINY).get_params(), "n_networks": 2}
    for zero in (False, True):
        net = make_net(
            {**params, "zero_init_residual": zero},
            n_mels=12,
            n_classes=3,
            device="cpu",
        ).initialize()
        scales = [
            block.norm2.weight
            for member in net.nets
            for block in member.module_.modules()
            if isinstance(block, _Block)
        ]
        assert len(scales) == 2  # one block in each 6-layer member
        assert all(torch.equal(w, torch.full_like(w, 1.0 - zero)) for w in scales)
