"""
==============================
Visualising emotion embeddings
==============================

The classifier maps every clip to a unit-norm *emotion embedding*; each emotion
is represented by its *centroid* (the normalised mean embedding of its training
clips), and a clip gets the emotion whose centroid makes the smallest angle with
its embedding. This example draws the paper's Fig. 3 with
:class:`~sklearn_tser.plotting.EmbeddingDisplay` (PCA and t-SNE projections,
centroids as stars) and the angles between the centroids with
:class:`~sklearn_tser.plotting.CentroidAnglesDisplay`.

The clips are synthetic (:func:`~sklearn_tser.datasets.make_emotional_speech`,
not speech) and the network small, so it runs in about a minute on a CPU.
"""

# %%
# Train on six speakers, keep two for testing
# -------------------------------------------
import numpy as np
from sklearn.pipeline import Pipeline

from sklearn_tser import EmotionEmbeddingClassifier, LogMelTransformer
from sklearn_tser.datasets import make_emotional_speech

speech = make_emotional_speech(n_samples=160, n_classes=4, random_state=0)
test = np.isin(speech.speaker, [6, 7])
X_train = [x for x, t in zip(speech.data, test, strict=True) if not t]
X_test = [x for x, t in zip(speech.data, test, strict=True) if t]
y_train, y_test = speech.target[~test], speech.target[test]

pipe = Pipeline(
    [
        ("mel", LogMelTransformer()),
        (
            "clf",
            EmotionEmbeddingClassifier(
                n_networks=1,  # default: 2, an ensemble of two
                n_layers=6,
                width=16,
                embedding_dim=32,
                pretrain_epochs=10,
                triplet_epochs=5,
                random_state=0,
            ),
        ),
    ]
)
pipe.fit(X_train, y_train, clf__groups=speech.speaker[~test])
print(f"held-out accuracy: {pipe.score(X_test, y_test):.3f}")

# %%
# Training and held-out embeddings, PCA
# -------------------------------------
# The same projection for both would need one PCA; each panel here fits its own,
# on the clips it shows, with the centroids projected alongside. Training
# embeddings cluster tightly around their centroids; held-out speakers spread
# more, and the overlaps are the confusions.
import matplotlib.pyplot as plt

from sklearn_tser.plotting import CentroidAnglesDisplay, EmbeddingDisplay

fig, axes = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
EmbeddingDisplay.from_estimator(
    pipe, X_train, y_train, ax=axes[0], legend=False, title="Training clips (PCA)"
)
EmbeddingDisplay.from_estimator(
    pipe, X_test, y_test, ax=axes[1], title="Held-out speakers (PCA)"
)

# %%
# t-SNE
# -----
# t-SNE keeps neighbourhoods rather than distances: clusters are easier to see,
# but distances between clusters mean little.
EmbeddingDisplay.from_estimator(
    pipe, X_train + X_test, np.concatenate([y_train, y_test]), projection="tsne"
)

# %%
# Angles between the centroids
# ----------------------------
# 0 degrees on the diagonal; a small angle between two emotions means the
# embedding hardly separates them. The display needs no data: the angles are
# learned in ``fit`` (``angles_``).
CentroidAnglesDisplay.from_estimator(pipe)
plt.show()
