"""Tests of the class-balanced P x K batch sampler."""

import math
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from sklearn_tser._sampling import ClassBalancedBatchSampler


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _labels(sizes):
    return np.repeat(np.arange(len(sizes)), sizes)


def _sampler(labels, n_classes=2, n_samples=3, **kwargs):
    return ClassBalancedBatchSampler(
        labels, n_classes_per_batch=n_classes, n_samples_per_class=n_samples, **kwargs
    )


@pytest.mark.parametrize(
    ("sizes", "n_classes", "n_samples"),
    [
        ([8, 8, 8, 8], 2, 4),
        ([10] * 7, 3, 4),
        ([30, 5, 12, 9, 40], 4, 5),
        ([100, 10, 10], 2, 4),
        ([5, 3, 1, 12], 3, 4),
    ],
)
def test_batches_hold_p_classes_with_k_clips(sizes, n_classes, n_samples):
    labels = _labels(sizes)
    sampler = _sampler(labels, n_classes, n_samples, random_state=0)
    assert len(sampler) == math.ceil(len(labels) / (n_classes * n_samples))
    assert sampler.batch_size_ == n_classes * n_samples
    for _ in range(5):
        batches = list(sampler)
        assert len(batches) == len(sampler)
        for batch in batches:
            assert len(batch) == sampler.batch_size_
            assert all(isinstance(i, int) and 0 <= i < len(labels) for i in batch)
            counts = Counter(labels[batch].tolist())
            assert len(counts) == n_classes
            assert set(counts.values()) == {n_samples}
            for k in counts:  # no repeated clip unless the class is too small
                block = [i for i in batch if labels[i] == k]
                assert len(set(block)) == min(sizes[k], n_samples)


def test_batches_are_grouped_by_class():
    labels = _labels([6, 6, 6])
    for batch in _sampler(labels, 3, 2, random_state=0):
        blocks = labels[batch].reshape(3, 2)
        assert (blocks == blocks[:, :1]).all()


def test_string_labels():
    labels = np.array(["angry", "sad", "happy", "neutral"] * 5)
    sampler = _sampler(labels, 2, 3, random_state=1)
    np.testing.assert_array_equal(
        sampler.classes_, ["angry", "happy", "neutral", "sad"]
    )
    for batch in sampler:
        assert sorted(Counter(labels[batch].tolist()).values()) == [3, 3]


def test_every_clip_seen_about_once_per_epoch_when_balanced():
    labels = _labels([30] * 6)
    sampler = _sampler(labels, 4, 5, random_state=0)
    for _ in range(20):
        seen = {i for batch in sampler for i in batch}
        assert len(seen) >= 0.8 * len(labels)


def test_reproducible_with_integer_seed():
    labels = _labels([7, 9, 4, 12])
    first = _sampler(labels, random_state=42)
    second = _sampler(labels, random_state=42)
    epochs = [list(first) for _ in range(3)]
    assert epochs == [list(second) for _ in range(3)]
    assert epochs[0] != epochs[1] != epochs[2]
    assert list(_sampler(labels, random_state=43)) != epochs[0]


@pytest.mark.parametrize(
    "make_rng", [np.random.RandomState, np.random.default_rng], ids=["rs", "gen"]
)
def test_numpy_random_states(make_rng):
    labels = _labels([7, 9, 4, 12])
    first = _sampler(labels, random_state=make_rng(3))
    second = _sampler(labels, random_state=make_rng(3))
    assert [list(first) for _ in range(2)] == [list(second) for _ in range(2)]


def test_random_state_none_uses_global_numpy_state():
    labels = _labels([7, 9, 4, 12])
    np.random.seed(5)  # noqa: NPY002 - the legacy global state is what is tested
    first = list(_sampler(labels))
    np.random.seed(5)  # noqa: NPY002
    assert list(_sampler(labels)) == first


def test_an_epoch_is_about_one_pass():
    sampler = _sampler(_labels([4, 5]), 2, 2, random_state=0)
    assert len(sampler) == 3  # ceil(9 / (2 * 2))
    assert len(list(sampler)) == 3


def test_fewer_classes_than_p_uses_all_classes():
    labels = _labels([5, 6, 7])
    sampler = _sampler(labels, 5, 3, random_state=0)
    assert sampler.batch_size_ == 9
    assert len(sampler) == 2
    for batch in sampler:
        assert Counter(labels[batch].tolist()) == {0: 3, 1: 3, 2: 3}


def test_small_classes_sampled_with_replacement():
    labels = _labels([1, 2, 10])
    sampler = _sampler(labels, 3, 3, random_state=0)
    for batch in sampler:
        batch = np.array(batch)
        assert batch[labels[batch] == 0].tolist() == [0, 0, 0]
        assert set(batch[labels[batch] == 1].tolist()) == {1, 2}
        assert len(set(batch[labels[batch] == 2].tolist())) == 3


def test_works_as_dataloader_batch_sampler():
    labels = _labels([6, 6, 6, 6])
    dataset = TensorDataset(torch.randn(len(labels), 3), torch.as_tensor(labels))
    sampler = _sampler(labels, 2, 3, random_state=0)
    loader = DataLoader(dataset, batch_sampler=sampler)
    assert len(loader) == 4
    for x, y in loader:
        assert x.shape == (6, 3)
        assert sorted(Counter(y.tolist()).values()) == [3, 3]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": np.zeros((4, 2))}, r"labels must be 1-D .* got shape \(4, 2\)"),
        ({"labels": np.zeros(6)}, r"at least 2 distinct classes .* got 1"),
        ({"labels": []}, r"at least 2 distinct classes .* got 0"),
        (
            {"n_classes_per_batch": 1},
            r"n_classes_per_batch must be an integer >= 2 .*negative.* got 1\.",
        ),
        (
            {"n_samples_per_class": 1},
            r"n_samples_per_class must be an integer >= 2 .*positive.* got 1\.",
        ),
        ({"n_samples_per_class": 2.5}, r"n_samples_per_class .* got 2\.5\."),
        ({"n_classes_per_batch": True}, r"n_classes_per_batch .* got True\."),
        ({"random_state": "seed"}, r"'seed' cannot be used to seed"),
    ],
)
def test_invalid_parameters(kwargs, match):
    params = {
        "labels": _labels([3, 3, 3]),
        "n_classes_per_batch": 2,
        "n_samples_per_class": 2,
    }
    params.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ClassBalancedBatchSampler(
            params.pop("labels"),
            **params,
        )
