"""The default model and the evaluation protocols, defined once.

The command line (``sklearn-tser evaluate``), the benchmarks and the examples
all take their model and their folds from here, so that a figure of the
benchmarks page can be reproduced from the command line, and the other way
round.

Protocols on a corpus of clips ``X`` with labels ``y`` and speakers ``groups``:

- :func:`paper_cv`: the paper's stratified 10-fold cross-validation; clips of
  every speaker fall on both sides (speakers mixed), which flatters a model
  that recognises voices.
- :func:`paper_split`: the paper's stratified 70/30 split, speakers mixed.
- :func:`speaker_cv`: folds grouped by speaker (RAVDESS: 6 folds of 4 actors;
  IEMOCAP: one fold per session), so that every test speaker is unseen.

Each returns a scikit-learn splitter: pass it as ``cv`` to
:func:`~sklearn.model_selection.cross_validate` (with ``groups`` for
:func:`speaker_cv`).
"""

import numpy as np
from sklearn.model_selection import GroupKFold, StratifiedKFold, StratifiedShuffleSplit
from sklearn.pipeline import Pipeline

__all__ = [
    "default_pipeline",
    "expected_calibration_error",
    "paper_cv",
    "paper_split",
    "speaker_cv",
]


def default_pipeline(*, random_state=0, verbose=0):
    """The default model: log-mel spectrograms, then the default classifier.

    Parameters
    ----------
    random_state : int, RandomState instance or None, default=0
        Seed of the classifier.
    verbose : int, default=0
        Verbosity of the classifier.

    Returns
    -------
    pipe : Pipeline
        ``Pipeline([("mel", LogMelTransformer()), ("clf",
        EmotionEmbeddingClassifier(...))])``, unfitted; change it with
        ``pipe.set_params(clf__n_layers=6, mel__n_mels=40)``.

    Examples
    --------
    >>> from sklearn_tser.evaluation import default_pipeline
    >>> pipe = default_pipeline().set_params(clf__width=16)
    >>> [name for name, _ in pipe.steps]
    ['mel', 'clf']
    """
    from ._classifier import EmotionEmbeddingClassifier
    from ._log_mel import LogMelTransformer

    return Pipeline(
        [
            ("mel", LogMelTransformer()),
            (
                "clf",
                EmotionEmbeddingClassifier(random_state=random_state, verbose=verbose),
            ),
        ]
    )


def paper_cv(n_splits=10, *, random_state=0):
    """The paper's protocol: stratified k-fold cross-validation, speakers mixed.

    Parameters
    ----------
    n_splits : int >= 2, default=10
        Number of folds.
    random_state : int, default=0
        Seed of the shuffle that assigns clips to folds.

    Returns
    -------
    cv : StratifiedKFold
    """
    return StratifiedKFold(n_splits, shuffle=True, random_state=random_state)


def paper_split(test_size=0.3, *, random_state=0):
    """The paper's other protocol: one stratified 70/30 split, speakers mixed.

    Parameters
    ----------
    test_size : float in (0, 1), default=0.3
        Fraction of the clips held out for testing.
    random_state : int, default=0
        Seed of the split.

    Returns
    -------
    cv : StratifiedShuffleSplit
        With a single split.
    """
    return StratifiedShuffleSplit(1, test_size=test_size, random_state=random_state)


def speaker_cv(n_splits=6):
    """Speaker-independent folds: every speaker's clips in one test fold.

    Deterministic: the same groups give the same folds, whatever the seed.

    Parameters
    ----------
    n_splits : int >= 2, default=6
        Number of folds; 6 gives 4 test actors per fold on RAVDESS. Use the
        number of sessions for leave-one-session-out on IEMOCAP.

    Returns
    -------
    cv : GroupKFold
        Pass the speaker of every clip as ``groups``.
    """
    return GroupKFold(n_splits)


def expected_calibration_error(y_true, proba, *, classes=None, n_bins=15):
    """Expected calibration error of the top-label probabilities.

    The clips are put in ``n_bins`` equal-width bins by the probability of
    their predicted class (their *confidence*); the error is the mean, weighted
    by bin size, of ``|accuracy - mean confidence|`` in each bin (Guo et al.,
    2017). 0 is perfectly calibrated; an over-confident model scores about
    the gap between its confidence and its accuracy.

    Parameters
    ----------
    y_true : array-like of shape (n_clips,)
        True labels.
    proba : array-like of shape (n_clips, n_classes)
        Predicted probabilities, columns in the order of ``classes``.
    classes : array-like of shape (n_classes,) or None, default=None
        Labels of the columns; ``None`` means ``np.unique(y_true)``.
    n_bins : int >= 1, default=15
        Number of confidence bins.

    Returns
    -------
    ece : float in [0, 1]

    Examples
    --------
    >>> from sklearn_tser.evaluation import expected_calibration_error
    >>> ece = expected_calibration_error(["a", "b"], [[0.9, 0.1], [0.2, 0.8]])
    >>> round(ece, 3)  # both right, at confidences 0.9 and 0.8
    0.15
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    classes = np.unique(y_true) if classes is None else np.asarray(classes)
    if proba.ndim != 2 or proba.shape != (len(y_true), len(classes)):
        raise ValueError(
            f"proba has shape {proba.shape}; expected ({len(y_true)}, "
            f"{len(classes)}): a row per clip and a column per class."
        )
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be an integer >= 1; got {n_bins!r}.")
    confidence = proba.max(axis=1)
    correct = classes[proba.argmax(axis=1)] == y_true
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        in_bin = bins == b
        ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)
