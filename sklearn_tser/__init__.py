"""sklearn-tser: speech emotion recognition with learned emotion embeddings.

The library implements the triplet-loss emotion embedding system of Kumar et al.
as scikit-learn estimators:

- :class:`LogMelTransformer` turns audio clips (waveforms of any length, or audio
  files) into log-mel spectrograms: NaN-padded, ragged, or written to a
  :class:`SpectrogramStore` on disk;
- :class:`EmotionEmbeddingClassifier` learns emotion embeddings with softmax
  pre-training and triplet loss, and classifies a clip by the emotion centroid
  that makes the smallest cosine angle with its embedding.

Corpus loaders and a synthetic generator live in :mod:`sklearn_tser.datasets`;
the default model and the evaluation protocols in :mod:`sklearn_tser.evaluation`.
:func:`save` and :func:`load` store fitted models safely (safetensors + JSON, no
pickle); exceptions live in :mod:`sklearn_tser.exceptions`. :func:`show_versions`
prints what a bug report needs to know about the installation.
"""

__version__ = "0.1.0.dev0"

from ._classifier import EmotionEmbeddingClassifier
from ._log_mel import LogMelTransformer
from ._persistence import load, save
from ._show_versions import show_versions
from ._store import SpectrogramStore
from ._validation import n_valid_frames

__all__ = [
    "EmotionEmbeddingClassifier",
    "LogMelTransformer",
    "SpectrogramStore",
    "__version__",
    "load",
    "n_valid_frames",
    "save",
    "show_versions",
]
