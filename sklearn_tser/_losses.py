r"""Triplet loss on cosine distances, triplet miners and a collapse diagnostic.

The embedding network of Kumar et al. is trained with a triplet loss on
L2-normalised embeddings: for an anchor ``a``, a positive ``p`` (same emotion)
and a negative ``n`` (another emotion),

.. math::

    \ell(a, p, n) = \max(d(a, p) - d(a, n) + m, 0),
    \qquad d(x, y) = 1 - \cos(x, y),

with margin ``m``. Which triplets of a batch enter the loss is decided by a
*miner*; the miners here are small callables in the style of
pytorch-metric-learning: ``miner(distances, labels)`` returns the index
tensors ``(anchor_idx, positive_idx, negative_idx)`` of the mined triplets.

All miners break ties between equally hard candidates by taking the lowest
index, so their output is a deterministic function of ``(distances, labels)``.
"""

import numbers

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "MINERS",
    "BatchAllMiner",
    "BatchHardMiner",
    "SemiHardMiner",
    "TripletLoss",
    "angular_margin_logits",
    "class_centroids",
    "cosine_distance_matrix",
    "embedding_collapse_score",
    "get_miner",
    "group_centered",
    "l2_normalize",
]

# Added to the norm in ``F.normalize`` so that a zero embedding stays finite.
_NORM_EPS = 1e-12


def _check_margin(margin):
    """Return ``margin`` as a float after checking it is a finite number > 0."""
    if (
        isinstance(margin, bool)
        or not isinstance(margin, numbers.Real)
        or not np.isfinite(margin)
        or margin <= 0
    ):
        raise ValueError(f"margin must be a finite number > 0, got {margin!r}.")
    return float(margin)


def _check_distances_labels(distances, labels):
    """Check shapes; return ``labels`` as a tensor on the device of distances."""
    if distances.ndim != 2 or distances.shape[0] != distances.shape[1]:
        raise ValueError(
            "distances must be a square (n, n) matrix, got shape "
            f"{tuple(distances.shape)}."
        )
    labels = torch.as_tensor(labels, device=distances.device)
    if labels.ndim != 1 or labels.shape[0] != distances.shape[0]:
        raise ValueError(
            f"labels must have shape ({distances.shape[0]},) to match distances, "
            f"got shape {tuple(labels.shape)}."
        )
    return labels


def _pair_masks(labels):
    """Boolean (n, n) masks of valid anchor-positive and anchor-negative pairs."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def _first_index(mask):
    """Lowest index along the last axis where ``mask`` is True.

    Rows without any True value get ``mask.shape[-1]``; callers drop them.
    """
    size = mask.shape[-1]
    positions = torch.arange(size, device=mask.device)
    return torch.where(mask, positions, size).amin(dim=-1)


# Miners look at (anchors, n, n) candidate triplets at most this many at a
# time (bytes of one boolean mask), so that their memory is quadratic in the
# batch size, not cubic.
_MINING_CHUNK = 2**24


def _anchor_chunks(n):
    """Slices of anchors whose (chunk, n, n) candidate masks stay within
    ``_MINING_CHUNK`` entries."""
    step = max(1, _MINING_CHUNK // max(1, n * n))
    return [slice(start, start + step) for start in range(0, n, step)]


def _concat_triplets(parts, device):
    if not parts:
        return _empty_triplets(device)
    return tuple(torch.cat(column) for column in zip(*parts, strict=True))


def _empty_triplets(device):
    empty = torch.empty(0, dtype=torch.long, device=device)
    return empty, empty.clone(), empty.clone()


def cosine_distance_matrix(embeddings):
    """Pairwise cosine distances ``1 - cos(e_i, e_j)``.

    Parameters
    ----------
    embeddings : torch.Tensor of shape (n_samples, n_features)
        Embeddings; they need not be normalised. Rows are L2-normalised with
        ``F.normalize`` (norm clamped below at 1e-12), so a zero row becomes
        the zero vector and has distance 1 to every row, itself included.

    Returns
    -------
    distances : torch.Tensor of shape (n_samples, n_samples)
        Cosine distances, clamped to ``[0, 2]`` against rounding. The diagonal
        is 0 up to rounding (1 for zero rows). Differentiable.
    """
    if embeddings.ndim != 2:
        raise ValueError(
            "embeddings must be a 2-D (n_samples, n_features) tensor, got shape "
            f"{tuple(embeddings.shape)}."
        )
    unit = F.normalize(embeddings, p=2, dim=1, eps=_NORM_EPS)
    return (1.0 - unit @ unit.T).clamp(0.0, 2.0)


class BatchAllMiner:
    """Mine all valid triplets of a batch, optionally only the active ones.

    A triplet ``(a, p, n)`` is valid when ``a != p``,
    ``labels[a] == labels[p]`` and ``labels[n] != labels[a]``. It is *active*
    when its loss is positive: ``d(a, p) - d(a, n) + margin > 0``.

    Parameters
    ----------
    margin : float > 0, default=0.2
        Margin of the triplet loss; only used when ``only_active=True``.
    only_active : bool, default=True
        If True, keep only the active triplets ("batch all, non-zero" of
        Hermans et al.), so that the mean loss is not diluted by the many easy
        triplets that already satisfy the margin. If False, keep every valid
        triplet.

    Notes
    -----
    Candidate triplets are examined a chunk of anchors at a time, so memory is
    quadratic in ``n_samples`` plus the mined triplets themselves, which can
    be up to ``n_samples ** 3`` with ``only_active=False``: prefer the other
    miners for batches of thousands.

    References
    ----------
    .. [1] A. Hermans, L. Beyer and B. Leibe, "In Defense of the Triplet Loss
       for Person Re-Identification", arXiv:1703.07737, 2017.
    """

    _uses_margin = True

    def __init__(self, margin=0.2, *, only_active=True):
        self.margin = _check_margin(margin)
        self.only_active = bool(only_active)

    def __repr__(self):
        return f"BatchAllMiner(margin={self.margin}, only_active={self.only_active})"

    @torch.no_grad()
    def __call__(self, distances, labels):
        """Return the mined triplets.

        Parameters
        ----------
        distances : torch.Tensor of shape (n_samples, n_samples)
            Pairwise distances.
        labels : torch.Tensor of shape (n_samples,)
            Integer class labels.

        Returns
        -------
        anchor_idx, positive_idx, negative_idx : torch.LongTensor of shape \
(n_triplets,)
            Indices of the mined triplets, in lexicographic order of
            ``(a, p, n)``.
        """
        labels = _check_distances_labels(distances, labels)
        distances = distances.detach()
        pos, neg = _pair_masks(labels)
        parts = []
        for chunk in _anchor_chunks(len(labels)):
            valid = pos[chunk, :, None] & neg[chunk, None, :]
            if self.only_active:
                d = distances[chunk]
                valid &= d[:, :, None] - d[:, None, :] + self.margin > 0
            anchor, positive, negative = valid.nonzero(as_tuple=True)
            parts.append((anchor + chunk.start, positive, negative))
        return _concat_triplets(parts, distances.device)


class BatchHardMiner:
    """For every anchor, mine its hardest positive and its hardest negative.

    Anchors without any positive or without any negative in the batch are
    skipped. The hardest positive is the one at the largest distance, the
    hardest negative the one at the smallest distance; ties go to the lowest
    index. Yields at most one triplet per anchor.

    References
    ----------
    .. [1] A. Hermans, L. Beyer and B. Leibe, "In Defense of the Triplet Loss
       for Person Re-Identification", arXiv:1703.07737, 2017.
    """

    _uses_margin = False

    def __repr__(self):
        return "BatchHardMiner()"

    @torch.no_grad()
    def __call__(self, distances, labels):
        """Return the mined triplets.

        Parameters
        ----------
        distances : torch.Tensor of shape (n_samples, n_samples)
            Pairwise distances.
        labels : torch.Tensor of shape (n_samples,)
            Integer class labels.

        Returns
        -------
        anchor_idx, positive_idx, negative_idx : torch.LongTensor of shape \
(n_triplets,)
            One triplet per usable anchor, in increasing anchor order.
        """
        labels = _check_distances_labels(distances, labels)
        distances = distances.detach()
        pos, neg = _pair_masks(labels)
        anchors = (pos.any(dim=1) & neg.any(dim=1)).nonzero(as_tuple=True)[0]
        if anchors.numel() == 0:
            return _empty_triplets(distances.device)
        d = distances[anchors]
        pos, neg = pos[anchors], neg[anchors]
        hardest_pos = torch.where(pos, d, -torch.inf).amax(dim=1, keepdim=True)
        hardest_neg = torch.where(neg, d, torch.inf).amin(dim=1, keepdim=True)
        positive = _first_index(pos & (d == hardest_pos))
        negative = _first_index(neg & (d == hardest_neg))
        return anchors, positive, negative


class SemiHardMiner:
    """For every anchor-positive pair, mine the hardest semi-hard negative.

    A negative ``n`` of the pair ``(a, p)`` is semi-hard when
    ``d(a, p) < d(a, n) < d(a, p) + margin`` (FaceNet): farther than the
    positive but still inside the margin, so its loss is positive but below
    ``margin``. Among them the closest one is taken (ties go to the lowest
    index).

    Parameters
    ----------
    margin : float > 0, default=0.2
        Margin of the triplet loss, the width of the semi-hard band.

    Notes
    -----
    Candidate triplets are examined a chunk of anchors at a time: memory is
    quadratic in ``n_samples`` (at most ``n_samples ** 2`` triplets are
    mined), whatever the number of classes. Anchor-positive pairs without any
    semi-hard negative are dropped: there is
    no fall-back to the hardest negative (which may collapse training early
    on) nor to the easiest one (whose loss is zero anyway, as in TensorFlow
    Addons). Each kept pair yields exactly one triplet.

    References
    ----------
    .. [1] F. Schroff, D. Kalenichenko and J. Philbin, "FaceNet: A Unified
       Embedding for Face Recognition and Clustering", CVPR 2015.
    """

    _uses_margin = True

    def __init__(self, margin=0.2):
        self.margin = _check_margin(margin)

    def __repr__(self):
        return f"SemiHardMiner(margin={self.margin})"

    @torch.no_grad()
    def __call__(self, distances, labels):
        """Return the mined triplets.

        Parameters
        ----------
        distances : torch.Tensor of shape (n_samples, n_samples)
            Pairwise distances.
        labels : torch.Tensor of shape (n_samples,)
            Integer class labels.

        Returns
        -------
        anchor_idx, positive_idx, negative_idx : torch.LongTensor of shape \
(n_triplets,)
            One triplet per kept anchor-positive pair, in lexicographic order
            of ``(a, p)``.
        """
        labels = _check_distances_labels(distances, labels)
        distances = distances.detach()
        pos, neg = _pair_masks(labels)
        parts = []
        for chunk in _anchor_chunks(len(labels)):
            d_ap = distances[chunk, :, None]  # (a, p, 1)
            d_an = distances[chunk, None, :]  # (a, 1, n)
            semi_hard = pos[chunk, :, None] & neg[chunk, None, :] & (d_an > d_ap)
            semi_hard &= d_an < d_ap + self.margin
            anchor, positive = semi_hard.any(dim=2).nonzero(as_tuple=True)
            if anchor.numel() == 0:
                continue
            candidates = semi_hard[anchor, positive]  # (n_pairs, n)
            d = distances[chunk][anchor]
            closest = torch.where(candidates, d, torch.inf).amin(dim=1, keepdim=True)
            negative = _first_index(candidates & (d == closest))
            parts.append((anchor + chunk.start, positive, negative))
        return _concat_triplets(parts, distances.device)


MINERS = {
    "batch_all": BatchAllMiner,
    "batch_hard": BatchHardMiner,
    "semi_hard": SemiHardMiner,
}
"""dict: Miner classes by the name accepted by :func:`get_miner`."""


def get_miner(name, margin):
    """Build the miner registered under ``name``.

    Parameters
    ----------
    name : {"batch_all", "batch_hard", "semi_hard"}
        Key of :data:`MINERS`.
    margin : float > 0
        Margin handed to the miners that use one (``"batch_all"`` and
        ``"semi_hard"``); checked but unused for ``"batch_hard"``.

    Returns
    -------
    miner : callable
        ``miner(distances, labels) -> (anchor_idx, positive_idx, negative_idx)``.
    """
    if not isinstance(name, str) or name not in MINERS:
        raise ValueError(f"mining must be one of {sorted(MINERS)}, got {name!r}.")
    margin = _check_margin(margin)
    miner_cls = MINERS[name]
    return miner_cls(margin=margin) if miner_cls._uses_margin else miner_cls()


class TripletLoss(torch.nn.Module):
    """Triplet margin loss on cosine distances of L2-normalised embeddings.

    The loss of a batch is the mean, over the triplets chosen by the miner, of
    ``relu(d(a, p) - d(a, n) + margin)`` with ``d = 1 - cos``. Mining runs
    without gradient; the distances of the mined triplets keep theirs.

    Parameters
    ----------
    margin : float > 0, default=0.2
        Margin between positive and negative cosine distances (which lie in
        ``[0, 2]``).
    mining : {"batch_hard", "batch_all", "semi_hard"}, default="batch_hard"
        Triplet miner, see :data:`MINERS`.

    Attributes
    ----------
    miner : callable
        The miner built from ``mining`` and ``margin``.

    Notes
    -----
    When no triplet can be mined (a batch with a single class, or no
    semi-hard negative) the loss is ``embeddings.sum() * 0``: zero, yet
    connected to the graph so that ``backward`` still runs.

    Examples
    --------
    >>> import torch
    >>> from sklearn_tser._losses import TripletLoss
    >>> loss_fn = TripletLoss(margin=0.2, mining="batch_hard")
    >>> embeddings = torch.randn(8, 4, requires_grad=True)
    >>> labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    >>> loss = loss_fn(embeddings, labels)
    >>> loss.backward()
    >>> loss.shape
    torch.Size([])
    """

    def __init__(self, *, margin=0.2, mining="batch_hard"):
        super().__init__()
        self.margin = _check_margin(margin)
        self.mining = mining
        self.miner = get_miner(mining, self.margin)

    def extra_repr(self):
        return f"margin={self.margin}, mining={self.mining!r}"

    def forward(self, embeddings, labels):
        """Compute the loss of a batch.

        Parameters
        ----------
        embeddings : torch.Tensor of shape (n_samples, n_features)
            Embeddings, not necessarily normalised.
        labels : torch.Tensor of shape (n_samples,)
            Integer class labels.

        Returns
        -------
        loss : torch.Tensor of shape ()
            Mean triplet loss over the mined triplets.
        """
        distances = cosine_distance_matrix(embeddings)
        anchor, positive, negative = self.miner(distances, labels)
        if anchor.numel() == 0:
            return embeddings.sum() * 0.0
        losses = F.relu(
            distances[anchor, positive] - distances[anchor, negative] + self.margin
        )
        return losses.mean()


def angular_margin_logits(embeddings, weight, labels, *, margin=0.2, scale=30.0):
    r"""Logits of the additive angular margin softmax (ArcFace).

    With :math:`\theta_{ik}` the angle between embedding ``i`` and the weight
    row of class ``k``, the logits are :math:`s \cos\theta_{ik}` for the other
    classes and :math:`s \cos(\theta_{iy_i} + m)` for the true class: the true
    class must win by an angle ``m``, which trains the cosine geometry that
    the emotion centroids use. Past :math:`\theta + m = \pi` the true logit
    continues linearly, :math:`s (\cos\theta - m \sin m)`, so that it stays
    monotonic (Deng et al., 2019).

    Parameters
    ----------
    embeddings : torch.Tensor of shape (n_samples, n_features)
    weight : torch.Tensor of shape (n_classes, n_features)
        One row per class; rows and embeddings are L2-normalised here.
    labels : torch.Tensor of shape (n_samples,)
        Integer class of each embedding.
    margin : float >= 0, default=0.2
        Angular margin ``m`` in radians.
    scale : float > 0, default=30.0
        Scale ``s`` of the cosines.

    Returns
    -------
    logits : torch.Tensor of shape (n_samples, n_classes)

    References
    ----------
    .. [1] J. Deng, J. Guo, N. Xue and S. Zafeiriou, "ArcFace: Additive Angular
       Margin Loss for Deep Face Recognition", CVPR 2019.
    """
    cos = (
        F.normalize(embeddings, dim=1, eps=_NORM_EPS)
        @ F.normalize(weight, dim=1, eps=_NORM_EPS).T
    )
    cos = cos.clamp(-1.0, 1.0)
    sin = (1.0 - cos.square()).clamp_min(1e-6).sqrt()
    shifted = torch.where(
        cos > np.cos(np.pi - margin),
        cos * np.cos(margin) - sin * np.sin(margin),
        cos - margin * np.sin(margin),
    )
    true = F.one_hot(labels, cos.shape[1]).bool()
    return scale * torch.where(true, shifted, cos)


def l2_normalize(a):
    """Rows of a NumPy array scaled to unit L2 norm (a zero row stays zero).

    Parameters
    ----------
    a : ndarray of shape (n_samples, n_features)

    Returns
    -------
    unit : ndarray of shape (n_samples, n_features), same dtype
    """
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.maximum(norms, _NORM_EPS).astype(a.dtype)


def class_centroids(embeddings, codes, n_classes):
    """The unit-norm mean embedding of each class: the emotion centroids.

    Parameters
    ----------
    embeddings : ndarray of shape (n_samples, n_features)
    codes : ndarray of int of shape (n_samples,)
        Class of each row, in ``[0, n_classes)``; every class has a row.
    n_classes : int

    Returns
    -------
    centroids : ndarray of shape (n_classes, n_features), float32

    Examples
    --------
    >>> import numpy as np
    >>> emb = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    >>> class_centroids(emb, np.array([0, 1, 1]), n_classes=2)
    array([[1., 0.],
           [0., 1.]], dtype=float32)
    """
    counts = np.bincount(codes, minlength=n_classes)
    sums = np.zeros((n_classes, embeddings.shape[1]), dtype=np.float64)
    np.add.at(sums, codes, embeddings)
    return l2_normalize(sums / counts[:, None]).astype(np.float32)


def group_centered(embeddings, groups, prior_mean, prior_weight=1.0):
    """Each group's embeddings less the group's mean embedding, at unit norm.

    Speaker normalisation in the embedding space: what all of a speaker's clips
    share (the voice, the recording) is taken away, and how each clip differs
    from the speaker's others is kept. The mean of a group of ``n`` clips is
    shrunk towards ``prior_mean`` as if the group had ``prior_weight`` more
    clips there, ``(sum of the group's embeddings + prior_weight * prior_mean)
    / (n + prior_weight)``: a group of one clip is then centred by a point
    between itself and the prior, along ``embedding - prior_mean``, instead of
    by itself (which would leave nothing), and a large group by about its own
    mean.

    Parameters
    ----------
    embeddings : ndarray of shape (n_samples, n_features)
    groups : array-like of shape (n_samples,)
        The group (speaker) of each row.
    prior_mean : ndarray of shape (n_features,)
        Where a group's mean is shrunk to: the mean embedding of the training
        clips.
    prior_weight : float >= 0, default=1.0
        Pseudo-clips at ``prior_mean`` added to every group's mean.

    Returns
    -------
    centered : ndarray of shape (n_samples, n_features), float32
        Unit-norm rows (a row equal to its group's mean stays zero).

    Examples
    --------
    >>> import numpy as np
    >>> emb = np.array([[1.0, 1.0], [1.0, -1.0], [3.0, 1.0], [3.0, -1.0]])
    >>> group_centered(emb, ["a", "a", "b", "b"], np.zeros(2), prior_weight=0)
    array([[ 0.,  1.],
           [ 0., -1.],
           [ 0.,  1.],
           [ 0., -1.]], dtype=float32)
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    codes = np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    sums = np.zeros((n_groups, embeddings.shape[1]))
    np.add.at(sums, codes, embeddings)
    counts = np.bincount(codes, minlength=n_groups)[:, None]
    means = (sums + prior_weight * np.asarray(prior_mean, np.float64)) / (
        counts + prior_weight
    )
    return l2_normalize(embeddings - means[codes]).astype(np.float32)


def embedding_collapse_score(embeddings):
    """Mean pairwise cosine similarity of the embeddings.

    A diagnostic for embedding collapse, the failure mode of triplet training
    where every clip is mapped to (nearly) the same direction.

    Parameters
    ----------
    embeddings : array-like or torch.Tensor of shape (n_samples, n_features)
        Embeddings, ``n_samples >= 2``; rows are L2-normalised first (a zero
        row stays zero and counts as orthogonal to every other row).

    Returns
    -------
    score : float in [-1, 1]
        Mean of ``cos(e_i, e_j)`` over the pairs ``i != j``. Close to 1 means
        collapse to a single direction; about 0 for random directions in a
        high-dimensional space; clearly below 1 for well-separated class
        clusters.
    """
    if isinstance(embeddings, torch.Tensor):
        embeddings = embeddings.detach().cpu().numpy()
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2 or embeddings.shape[0] < 2:
        raise ValueError(
            "embeddings must be a 2-D (n_samples, n_features) array with "
            f"n_samples >= 2, got shape {embeddings.shape}."
        )
    if not np.all(np.isfinite(embeddings)):
        raise ValueError("embeddings contain NaN or infinite values.")
    unit = l2_normalize(embeddings)
    n_samples = unit.shape[0]
    total = unit.sum(axis=0)
    # sum_{i != j} <u_i, u_j> = ||sum_i u_i||^2 - sum_i ||u_i||^2
    off_diagonal = total @ total - np.sum(unit * unit)
    return float(off_diagonal / (n_samples * (n_samples - 1)))
