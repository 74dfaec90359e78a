"""Tests of the triplet loss, the miners and the collapse diagnostic.

The vectorised miners and loss are checked against explicit Python loops over
every ``(anchor, positive, negative)`` triplet of a batch.
"""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from sklearn_tser import _losses as losses
from sklearn_tser._losses import (
    MINERS,
    BatchAllMiner,
    BatchHardMiner,
    SemiHardMiner,
    TripletLoss,
    angular_margin_logits,
    class_centroids,
    cosine_distance_matrix,
    embedding_collapse_score,
    get_miner,
    group_centered,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --------------------------------------------------------------------------
# Slow references: plain loops over all triplets, on the same distance matrix.


def _valid_triplets(labels):
    n = len(labels)
    for a in range(n):
        for p in range(n):
            if p == a or labels[p] != labels[a]:
                continue
            for neg in range(n):
                if labels[neg] != labels[a]:
                    yield a, p, neg


def _loop_batch_all(d, labels, margin, only_active=True):
    return {
        (a, p, n)
        for a, p, n in _valid_triplets(labels)
        if not only_active or d[a][p] - d[a][n] + margin > 0
    }


def _loop_batch_hard(d, labels, margin=None):
    triplets = set()
    for a in range(len(labels)):
        hardest_p = hardest_n = None
        for j in range(len(labels)):
            if j != a and labels[j] == labels[a]:
                if hardest_p is None or d[a][j] > d[a][hardest_p]:
                    hardest_p = j
            elif labels[j] != labels[a] and (
                hardest_n is None or d[a][j] < d[a][hardest_n]
            ):
                hardest_n = j
        if hardest_p is not None and hardest_n is not None:
            triplets.add((a, hardest_p, hardest_n))
    return triplets


def _loop_semi_hard(d, labels, margin):
    triplets = set()
    n = len(labels)
    for a in range(n):
        for p in range(n):
            if p == a or labels[p] != labels[a]:
                continue
            best = None
            for neg in range(n):
                if labels[neg] == labels[a]:
                    continue
                semi_hard = d[a][p] < d[a][neg] < d[a][p] + margin
                if semi_hard and (best is None or d[a][neg] < d[a][best]):
                    best = neg
            if best is not None:
                triplets.add((a, p, best))
    return triplets


LOOPS = {
    "batch_all": _loop_batch_all,
    "batch_hard": _loop_batch_hard,
    "semi_hard": _loop_semi_hard,
}


def _loop_loss(d, triplets, margin):
    if not triplets:
        return 0.0
    losses = [max(d[a][p] - d[a][n] + margin, 0.0) for a, p, n in triplets]
    return sum(losses) / len(losses)


def _as_set(triplets):
    anchor, positive, negative = (t.tolist() for t in triplets)
    mined = list(zip(anchor, positive, negative, strict=True))
    assert len(mined) == len(set(mined)), "a triplet was mined twice"
    return set(mined)


# --------------------------------------------------------------------------
# Batches: random, with ties, with a singleton class, with a single class.


def _random_batch(seed):
    rng = np.random.default_rng(seed)
    n_samples = int(rng.integers(6, 16))
    labels = rng.integers(0, int(rng.integers(2, 5)), size=n_samples)
    return rng.normal(size=(n_samples, 5)), labels


def _tied_batch(seed):
    # Few distinct directions, so many distances are exactly equal.
    rng = np.random.default_rng(seed)
    directions = rng.integers(-1, 2, size=(4, 3)).astype(float)
    directions[np.all(directions == 0, axis=1)] = 1.0
    embeddings = directions[rng.integers(0, 4, size=12)]
    return embeddings, rng.integers(0, 3, size=12)


def _batches():
    batches = {f"random{seed}": _random_batch(seed) for seed in range(6)}
    batches.update({f"ties{seed}": _tied_batch(seed) for seed in range(3)})
    rng = np.random.default_rng(10)
    batches["singleton_class"] = (
        rng.normal(size=(7, 4)),
        np.array([0, 0, 0, 1, 1, 1, 2]),
    )
    batches["single_class"] = (rng.normal(size=(5, 4)), np.zeros(5, dtype=int))
    batches["duplicated_rows"] = (
        np.repeat(rng.normal(size=(3, 4)), 3, axis=0),
        np.array([0, 1, 2] * 3),
    )
    return batches


BATCHES = _batches()


@pytest.mark.parametrize("margin", [0.05, 0.2, 1.0, 2.5])
@pytest.mark.parametrize("mining", sorted(MINERS))
@pytest.mark.parametrize("batch", sorted(BATCHES))
def test_miner_and_loss_match_loop(batch, mining, margin):
    embeddings, labels = BATCHES[batch]
    embeddings = torch.tensor(embeddings, dtype=torch.float64)
    labels = torch.tensor(labels)
    distances = cosine_distance_matrix(embeddings)
    d, label_list = distances.tolist(), labels.tolist()

    expected = LOOPS[mining](d, label_list, margin)
    mined = _as_set(get_miner(mining, margin)(distances, labels))
    assert mined == expected

    loss_fn = TripletLoss(margin=margin, mining=mining)
    loss = loss_fn(embeddings, labels)
    expected_loss = _loop_loss(d, expected, margin)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(expected_loss, abs=1e-6)


@pytest.mark.parametrize("mining", sorted(MINERS))
def test_mining_a_few_anchors_at_a_time_gives_the_same_triplets(mining, monkeypatch):
    embeddings, labels = BATCHES["random3"]
    distances = cosine_distance_matrix(torch.tensor(embeddings))
    labels = torch.tensor(labels)
    whole = get_miner(mining, 0.3)(distances, labels)
    monkeypatch.setattr(losses, "_MINING_CHUNK", 2 * len(labels) ** 2)
    chunked = get_miner(mining, 0.3)(distances, labels)
    for a, b in zip(whole, chunked, strict=True):
        assert torch.equal(a, b)


def test_semi_hard_mining_memory_is_quadratic_in_the_batch():
    # 100 classes x 8 clips: the (800, 800, 800) masks of one piece would take
    # 512 MB each, over 2 GB in all; a few anchors at a time stay small.
    code = (
        "import resource, torch; from sklearn_tser._losses import SemiHardMiner, "
        "cosine_distance_matrix; torch.manual_seed(0); "
        "e = torch.randn(800, 16); y = torch.arange(800) // 8; "
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
        "SemiHardMiner(0.2)(cosine_distance_matrix(e), y); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert int(out.stdout) < 300_000  # KiB


@pytest.mark.parametrize("margin", [0.1, 0.5])
@pytest.mark.parametrize("batch", sorted(BATCHES))
def test_batch_all_without_active_filter_matches_loop(batch, margin):
    embeddings, labels = BATCHES[batch]
    distances = cosine_distance_matrix(torch.tensor(embeddings))
    labels = torch.tensor(labels)
    mined = _as_set(BatchAllMiner(margin, only_active=False)(distances, labels))
    expected = _loop_batch_all(distances.tolist(), labels.tolist(), margin, False)
    assert mined == expected
    assert mined == set(_valid_triplets(labels.tolist()))


def test_batch_all_keeps_only_active_triplets():
    embeddings, labels = BATCHES["random0"]
    distances = cosine_distance_matrix(torch.tensor(embeddings))
    a, p, n = BatchAllMiner(0.2)(distances, torch.tensor(labels))
    assert len(a) > 0
    assert (distances[a, p] - distances[a, n] + 0.2 > 0).all()


def test_batch_hard_breaks_ties_by_lowest_index():
    distances = torch.tensor(
        [
            [0.0, 0.5, 0.5, 0.3, 0.3],
            [0.5, 0.0, 0.2, 0.3, 0.3],
            [0.5, 0.2, 0.0, 0.3, 0.3],
            [0.3, 0.3, 0.3, 0.0, 0.1],
            [0.3, 0.3, 0.3, 0.1, 0.0],
        ]
    )
    labels = torch.tensor([0, 0, 0, 1, 1])
    anchor, positive, negative = BatchHardMiner()(distances, labels)
    assert anchor.tolist() == [0, 1, 2, 3, 4]
    assert positive.tolist() == [1, 0, 0, 4, 3]
    assert negative.tolist() == [3, 3, 3, 0, 0]


def test_semi_hard_drops_pairs_without_semi_hard_negative():
    # d(0, 1) = 0.1; negatives at 0.05 (hard), 0.25 (semi-hard), 0.9 (easy).
    distances = torch.tensor(
        [
            [0.0, 0.1, 0.05, 0.25, 0.9],
            [0.1, 0.0, 0.9, 0.9, 0.9],
            [0.05, 0.9, 0.0, 0.5, 0.5],
            [0.25, 0.9, 0.5, 0.0, 0.5],
            [0.9, 0.9, 0.5, 0.5, 0.0],
        ]
    )
    labels = torch.tensor([0, 0, 1, 2, 3])
    mined = _as_set(SemiHardMiner(margin=0.2)(distances, labels))
    assert mined == {(0, 1, 3)}


def test_miners_return_long_tensors_even_when_empty():
    distances = torch.rand(4, 4)
    for miner in (BatchAllMiner(0.2), BatchHardMiner(), SemiHardMiner(0.2)):
        for labels in (torch.tensor([0, 0, 1, 1]), torch.zeros(4, dtype=torch.long)):
            triplets = miner(distances, labels)
            assert len(triplets) == 3
            assert all(t.dtype == torch.long and t.ndim == 1 for t in triplets)
            assert len({t.numel() for t in triplets}) == 1


def test_miners_do_not_track_gradients():
    embeddings = torch.randn(8, 3, requires_grad=True)
    distances = cosine_distance_matrix(embeddings)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    for miner in (BatchAllMiner(0.5), BatchHardMiner(), SemiHardMiner(0.5)):
        assert not any(t.requires_grad for t in miner(distances, labels))


# --------------------------------------------------------------------------
# Gradients.


@pytest.mark.parametrize("mining", sorted(MINERS))
def test_loss_gradient_is_finite_and_nonzero(mining):
    embeddings = torch.randn(12, 6, requires_grad=True)
    labels = torch.arange(12) % 3
    loss = TripletLoss(margin=0.5, mining=mining)(embeddings, labels)
    loss.backward()
    assert torch.isfinite(embeddings.grad).all()
    assert embeddings.grad.abs().sum() > 0


@pytest.mark.parametrize("mining", sorted(MINERS))
def test_loss_gradcheck(mining):
    embeddings = torch.randn(8, 4, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loss_fn = TripletLoss(margin=1.0, mining=mining)
    assert torch.autograd.gradcheck(lambda e: loss_fn(e, labels), (embeddings,))


@pytest.mark.parametrize("mining", sorted(MINERS))
def test_no_triplet_gives_connected_zero(mining):
    embeddings = torch.randn(5, 4, requires_grad=True)
    labels = torch.zeros(5, dtype=torch.long)
    loss_fn = TripletLoss(mining=mining)
    loss = loss_fn(embeddings, labels)
    assert loss.item() == 0.0
    assert loss.grad_fn is not None
    loss.backward()
    assert torch.equal(embeddings.grad, torch.zeros_like(embeddings))


@pytest.mark.parametrize("mining", sorted(MINERS))
def test_zero_embeddings_give_finite_loss_and_gradient(mining):
    embeddings = torch.zeros(6, 4, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    loss = TripletLoss(margin=0.2, mining=mining)(embeddings, labels)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(embeddings.grad).all()


def test_loss_accepts_list_labels_and_float32():
    embeddings = torch.randn(6, 3)
    loss = TripletLoss()(embeddings, [0, 0, 1, 1, 2, 2])
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss)


def test_loss_is_a_module_with_readable_repr():
    loss_fn = TripletLoss(margin=0.3, mining="semi_hard")
    assert isinstance(loss_fn, torch.nn.Module)
    assert "margin=0.3" in repr(loss_fn)
    assert "mining='semi_hard'" in repr(loss_fn)
    assert repr(loss_fn.miner) == "SemiHardMiner(margin=0.3)"


# --------------------------------------------------------------------------
# Distances.


def test_cosine_distance_matrix_matches_numpy_loop():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 5))
    x[3] = 0.0  # a zero row stays finite
    x[5] = -2.5 * x[1]  # antipodal to row 1
    distances = cosine_distance_matrix(torch.tensor(x)).numpy()

    expected = np.empty((7, 7))
    for i in range(7):
        for j in range(7):
            u = x[i] / max(np.linalg.norm(x[i]), 1e-12)
            v = x[j] / max(np.linalg.norm(x[j]), 1e-12)
            expected[i, j] = min(max(1.0 - float(np.dot(u, v)), 0.0), 2.0)
    np.testing.assert_allclose(distances, expected, atol=1e-12)
    assert distances[1, 5] == pytest.approx(2.0)
    assert distances[3, 0] == pytest.approx(1.0)
    assert np.all((distances >= 0) & (distances <= 2))


def test_cosine_distance_matrix_is_scale_invariant_and_differentiable():
    x = torch.randn(5, 3, requires_grad=True)
    distances = cosine_distance_matrix(x)
    torch.testing.assert_close(distances, cosine_distance_matrix(3.0 * x))
    distances.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_cosine_distance_matrix_rejects_non_2d():
    with pytest.raises(ValueError, match=r"2-D .* got shape \(5,\)"):
        cosine_distance_matrix(torch.randn(5))


# --------------------------------------------------------------------------
# Collapse diagnostic.


def test_collapse_score_of_identical_embeddings():
    embeddings = np.tile([[0.3, -1.0, 2.0]], (10, 1)) * np.arange(1, 11)[:, None]
    assert embedding_collapse_score(embeddings) == pytest.approx(1.0)
    tensor = torch.tensor(embeddings, dtype=torch.float32)
    assert embedding_collapse_score(tensor) == pytest.approx(1.0)


def test_collapse_score_of_random_embeddings():
    embeddings = np.random.default_rng(0).normal(size=(200, 64))
    score = embedding_collapse_score(embeddings)
    assert abs(score) < 0.05


def test_collapse_score_matches_pairwise_loop():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(9, 4)) + 1.0
    x[2] = 0.0
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    pairs = [unit[i] @ unit[j] for i in range(9) for j in range(9) if i != j]
    assert embedding_collapse_score(x) == pytest.approx(np.mean(pairs))
    assert embedding_collapse_score([[1.0, 0.0], [-2.0, 0.0]]) == pytest.approx(-1)


@pytest.mark.parametrize(
    ("embeddings", "match"),
    [
        (np.ones((1, 3)), r"n_samples >= 2, got shape \(1, 3\)"),
        (np.ones(4), r"got shape \(4,\)"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN or infinite"),
    ],
)
def test_collapse_score_rejects_bad_embeddings(embeddings, match):
    with pytest.raises(ValueError, match=match):
        embedding_collapse_score(embeddings)


# --------------------------------------------------------------------------
# Parameter validation and registry.


def test_registry_and_get_miner():
    assert set(MINERS) == {"batch_all", "batch_hard", "semi_hard"}
    assert isinstance(get_miner("batch_all", 0.3), BatchAllMiner)
    assert get_miner("batch_all", 0.3).margin == 0.3
    assert isinstance(get_miner("batch_hard", 0.3), BatchHardMiner)
    assert get_miner("semi_hard", 0.4).margin == 0.4


@pytest.mark.parametrize("name", ["hard", "BatchHard", None, ""])
def test_get_miner_rejects_unknown_names(name):
    with pytest.raises(ValueError, match=r"must be one of \['batch_all', 'batch_h"):
        get_miner(name, 0.2)
    with pytest.raises(ValueError, match=repr(name)):
        TripletLoss(mining=name)


@pytest.mark.parametrize("margin", [0, -0.1, math.nan, math.inf, "0.2", None, True])
def test_margin_must_be_positive(margin):
    match = r"margin must be a finite number > 0, got " + repr(margin)
    with pytest.raises(ValueError, match=match.replace("'", ".")):
        TripletLoss(margin=margin)
    with pytest.raises(ValueError, match=r"margin must be a finite number > 0"):
        SemiHardMiner(margin)
    with pytest.raises(ValueError, match=r"margin must be a finite number > 0"):
        BatchAllMiner(margin)


def test_margin_accepts_numpy_scalars():
    assert TripletLoss(margin=np.float32(0.5)).margin == 0.5
    assert SemiHardMiner(np.int64(1)).margin == 1.0


def test_miners_reject_mismatched_inputs():
    miner = BatchHardMiner()
    with pytest.raises(ValueError, match=r"square .* got shape \(3, 4\)"):
        miner(torch.zeros(3, 4), torch.zeros(3))
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\).*\(4,\)"):
        miner(torch.zeros(3, 3), torch.zeros(4))
    with pytest.raises(ValueError, match=r"labels must have shape"):
        TripletLoss()(torch.randn(3, 2), torch.zeros(3, 1))


# --------------------------------------------------------------------------
# Additive angular margin softmax.


def _arcface_loop(embeddings, weight, labels, margin, scale):
    """Slow reference: one logit at a time, with math's acos and cos."""
    import math

    out = []
    for e, label in zip(embeddings.tolist(), labels.tolist(), strict=True):
        row = []
        for k, w in enumerate(weight.tolist()):
            cos = sum(a * b for a, b in zip(e, w, strict=True)) / (
                math.sqrt(sum(a * a for a in e)) * math.sqrt(sum(b * b for b in w))
            )
            theta = math.acos(max(-1.0, min(1.0, cos)))
            if k == label:
                if theta + margin < math.pi:
                    cos = math.cos(theta + margin)
                else:
                    cos = cos - margin * math.sin(margin)
            row.append(scale * cos)
        out.append(row)
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("margin", [0.0, 0.2, 0.5])
def test_angular_margin_logits_match_a_loop(margin):
    gen = torch.Generator().manual_seed(0)
    embeddings = torch.randn(12, 5, generator=gen, dtype=torch.float64)
    weight = torch.randn(4, 5, generator=gen, dtype=torch.float64)
    labels = torch.arange(12) % 4
    embeddings[0] = -weight[0]  # theta = pi: the linear continuation
    got = angular_margin_logits(embeddings, weight, labels, margin=margin, scale=16.0)
    expected = _arcface_loop(embeddings, weight, labels, margin, 16.0)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-6)


def test_angular_margin_logits_have_finite_gradients():
    weight = torch.randn(3, 4, requires_grad=True)
    embeddings = weight.detach()[[0, 1, 2, 0]].clone().requires_grad_(True)
    logits = angular_margin_logits(embeddings, weight, torch.tensor([0, 1, 2, 0]))
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0])).backward()
    assert torch.isfinite(embeddings.grad).all() and torch.isfinite(weight.grad).all()


def test_group_centered_against_a_loop():
    """Each row less its group's mean, the mean shrunk towards the prior by
    ``prior_weight`` pseudo-rows, then scaled to unit norm."""
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(30, 4))
    groups = rng.choice(["b", "a", "c", "d"], 30)
    groups[-1] = "alone"  # a group of one row
    prior = rng.normal(size=4)
    for weight in (0.0, 1.0, 5.0):
        got = group_centered(emb, groups, prior, prior_weight=weight)
        assert got.dtype == np.float32 and got.shape == emb.shape
        for i in range(len(emb)):
            own = emb[groups == groups[i]]
            mean = (own.sum(axis=0) + weight * prior) / (len(own) + weight)
            want = (emb[i] - mean) / np.linalg.norm(emb[i] - mean)
            np.testing.assert_allclose(got[i], want, rtol=1e-5, atol=1e-6)
    # One row and the default weight: centred along its difference to the prior.
    alone = group_centered(emb[-1:], ["x"], prior)[0]
    direction = (emb[-1] - prior) / np.linalg.norm(emb[-1] - prior)
    np.testing.assert_allclose(alone, direction, rtol=1e-5)
    # Without shrinkage a lone row is its own mean: zero, not NaN.
    assert not group_centered(emb[-1:], ["x"], prior, prior_weight=0).any()


def test_class_centroids_against_a_loop():
    """The centroid of each class is the unit-norm mean of its rows."""
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(40, 5))
    codes = np.r_[np.arange(4), rng.integers(0, 4, 36)]
    centroids = class_centroids(emb, codes, 4)
    assert centroids.dtype == np.float32 and centroids.shape == (4, 5)
    for c in range(4):
        mean = emb[codes == c].mean(axis=0)
        np.testing.assert_allclose(centroids[c], mean / np.linalg.norm(mean), rtol=1e-6)
