"""Plots of emotion embeddings, as scikit-learn style Display objects.

- :class:`EmbeddingDisplay`: the clips' embeddings projected to 2-D (PCA or
  t-SNE), coloured by emotion, with the emotion centroids marked (the paper's
  Fig. 3).
- :class:`CentroidAnglesDisplay`: the angles between the emotion centroids as an
  annotated heat map.

For the confusion matrix use :class:`sklearn.metrics.ConfusionMatrixDisplay`,
which works with the estimators of this package as they are.

matplotlib is an optional dependency (``pip install sklearn-tser[plots]``); it
is imported only when a plot is drawn.
"""

from ._angles import CentroidAnglesDisplay
from ._embedding import EmbeddingDisplay

__all__ = ["CentroidAnglesDisplay", "EmbeddingDisplay"]
