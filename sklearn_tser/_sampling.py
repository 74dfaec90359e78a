"""Class-balanced P x K batch sampling for triplet training."""

import math

import numpy as np
from sklearn.utils import check_random_state

from ._validation import check_integer

__all__ = ["ClassBalancedBatchSampler"]


def _check_rng(random_state):
    """``check_random_state``, also letting a ``numpy.random.Generator`` through."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return check_random_state(random_state)


class ClassBalancedBatchSampler:
    """Yield batches of P classes with K clips each, for triplet mining.

    Every batch holds ``n_classes_per_batch`` (P) distinct classes and
    ``n_samples_per_class`` (K) clips of each, so that every anchor has
    positives and negatives. Usable as the ``batch_sampler`` of a
    :class:`torch.utils.data.DataLoader`.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        Class label of every clip of the dataset (any hashable values); at
        least two distinct classes.
    n_classes_per_batch : int >= 2
        P, the number of distinct classes per batch (a triplet needs a
        negative). If the labels hold fewer classes, every batch uses all of
        them.
    n_samples_per_class : int >= 2
        K, the number of clips per class and batch (a triplet needs a
        positive).
    random_state : int, RandomState instance, Generator or None, default=None
        Source of randomness, as in :func:`sklearn.utils.check_random_state`
        (a :class:`numpy.random.Generator` is used as is). The generator is
        created once, here: successive epochs give different batches, and the
        whole sequence of epochs is reproducible for an integer seed.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Distinct labels, sorted.
    batch_size_ : int
        ``min(P, n_classes) * K``, the length of every batch.
    n_batches_ : int
        Number of batches per epoch, ``len(sampler)``:
        ``ceil(n_samples / (P * K))``, about one pass over the data.

    Notes
    -----
    Each epoch starts from a fresh random permutation (a *pool*) of the clips
    of every class. A batch draws its P classes without replacement, with
    probabilities proportional to the number of clips of each class not yet
    drawn in this epoch; when fewer than P classes have clips left, classes
    that have been fully drawn complete the batch. A class takes its K clips
    from the front of its pool and, once the pool is used up, continues with a
    fresh permutation (clips already in the batch go to its end, so no clip
    appears twice in a batch). So with balanced classes every clip is seen
    about once per epoch; with imbalanced classes the small ones are repeated
    and the large ones partly skipped, the price of balanced batches.

    Only a class with fewer than K clips is sampled with replacement: its
    batch block holds all its clips plus ``K - n_clips`` of them drawn again
    at random.

    Batches are lists of integer indices, grouped by class.

    Examples
    --------
    >>> from sklearn_tser._sampling import ClassBalancedBatchSampler
    >>> labels = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    >>> sampler = ClassBalancedBatchSampler(
    ...     labels, n_classes_per_batch=2, n_samples_per_class=3, random_state=0
    ... )
    >>> len(sampler)
    2
    >>> [len(batch) for batch in sampler]
    [6, 6]
    """

    def __init__(
        self,
        labels,
        *,
        n_classes_per_batch,
        n_samples_per_class,
        random_state=None,
    ):
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise ValueError(
                f"labels must be 1-D of shape (n_samples,), got shape {labels.shape}."
            )
        self.n_classes_per_batch = check_integer(
            n_classes_per_batch,
            "n_classes_per_batch",
            low=2,
            reason="a triplet needs a negative from another class",
        )
        self.n_samples_per_class = check_integer(
            n_samples_per_class,
            "n_samples_per_class",
            low=2,
            reason="a triplet needs a positive from the same class",
        )
        self.random_state = random_state

        self.classes_, encoded = np.unique(labels, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                "labels must contain at least 2 distinct classes for triplet "
                f"sampling, got {len(self.classes_)}: {self.classes_.tolist()}."
            )
        self._class_indices = [
            np.flatnonzero(encoded == k) for k in range(len(self.classes_))
        ]
        self._class_sizes = np.array([len(idx) for idx in self._class_indices])
        n_classes = min(self.n_classes_per_batch, len(self.classes_))
        self.batch_size_ = n_classes * self.n_samples_per_class
        self.n_batches_ = math.ceil(len(labels) / self.batch_size_)
        self._rng = _check_rng(random_state)

    def __len__(self):
        return self.n_batches_

    def __iter__(self):
        """Yield the batches of one epoch.

        Yields
        ------
        batch : list of int of length ``batch_size_``
            Dataset indices, ``K`` consecutive ones per class.
        """
        rng = self._rng
        pools = [rng.permutation(indices) for indices in self._class_indices]
        positions = np.zeros(len(pools), dtype=np.int64)  # next clip of each pool
        n_drawn = np.zeros(len(pools), dtype=np.int64)  # clips drawn this epoch
        for _ in range(self.n_batches_):
            batch = []
            for k in self._draw_classes(rng, n_drawn):
                clips = self._draw_clips(rng, pools, positions, k)
                n_drawn[k] += len(clips)
                batch.extend(clips.tolist())
            yield batch

    def _draw_classes(self, rng, n_drawn):
        """Choose the classes of one batch, favouring clips not yet drawn."""
        size = min(self.n_classes_per_batch, len(self.classes_))
        left = np.maximum(self._class_sizes - n_drawn, 0)
        fresh = np.flatnonzero(left > 0)
        if len(fresh) >= size:
            return rng.choice(fresh, size, replace=False, p=left[fresh] / left.sum())
        exhausted = np.flatnonzero(left == 0)
        extra = rng.choice(exhausted, size - len(fresh), replace=False)
        return np.concatenate([fresh, extra])

    def _draw_clips(self, rng, pools, positions, k):
        """Take K clips of class ``k`` from its pool, refilling the pool as needed."""
        n_per_class = self.n_samples_per_class
        indices = self._class_indices[k]
        if len(indices) < n_per_class:
            extra = rng.choice(indices, n_per_class - len(indices), replace=True)
            return np.concatenate([indices, extra])
        taken = pools[k][positions[k] : positions[k] + n_per_class]
        positions[k] += len(taken)
        if len(taken) == n_per_class:
            return taken
        # Pool used up: continue with a fresh permutation, whose clips already
        # taken for this batch go to its end.
        refill = rng.permutation(indices)
        in_batch = np.isin(refill, taken)
        pools[k] = np.concatenate([refill[~in_batch], refill[in_batch]])
        positions[k] = n_per_class - len(taken)
        return np.concatenate([taken, pools[k][: positions[k]]])
