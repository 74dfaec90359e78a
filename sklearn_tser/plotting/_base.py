"""Helpers shared by the Display objects."""

from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted


def final_classifier(estimator):
    """The fitted emotion classifier of ``estimator`` (itself or a Pipeline's end).

    Raises
    ------
    NotFittedError
        If the classifier is not fitted.
    TypeError
        If it has no emotion centroids (not an EmotionEmbeddingClassifier).
    """
    clf = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    check_is_fitted(clf)
    if not (hasattr(clf, "centroids_") and hasattr(clf, "classes_")):
        raise TypeError(
            "estimator must be a fitted EmotionEmbeddingClassifier or a Pipeline "
            f"ending in one; got {type(clf).__name__}, which has no centroids_."
        )
    return clf


def import_pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is installed in CI
        raise ImportError(
            "Plotting needs matplotlib: pip install 'sklearn-tser[plots]'."
        ) from exc
    return plt


def class_colors(n_classes):
    """One distinct colour per class (tab10, or tab20 beyond 10 classes)."""
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10" if n_classes <= 10 else "tab20"]
    return [cmap(k % cmap.N) for k in range(n_classes)]
