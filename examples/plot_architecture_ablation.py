"""
===========================================================
Architecture ablation: FC, CNN, RNN, LSTM, GRU and ResNet-x
===========================================================

The paper's Table 1 compares six families of embedding networks of ``x`` weight
layers, ``6 <= x <= 15``, and finds ResNet-11 best (61.11%, against 47.22% for
FC-7, 58.33% for CNN-8, 55.56% for RNN-8, 56.94% for LSTM-7 and 54.16% for
GRU-8). Since ``architecture`` and ``n_layers`` are ordinary parameters of
:class:`~sklearn_tser.EmotionEmbeddingClassifier`, the ablation is a
:class:`~sklearn.model_selection.GridSearchCV`.

By default this example runs a **small grid on synthetic clips** (six
architectures x two depths, small networks trained for a few epochs, 3-fold
cross-validation by speaker): 36 small fits, about 5 minutes on a 2-core
CPU. Its numbers only show how to run the study. For the paper's full grid on
RAVDESS, set ``FULL = True`` and the corpus path (first argument, or
``SKLEARN_TSER_RAVDESS``): 60 candidates of default-size networks, 10 folds
each, which is a job for a GPU.
"""

# %%
# Data
# ----
import os
import sys
from pathlib import Path

import numpy as np

from sklearn_tser import LogMelTransformer
from sklearn_tser.datasets import load_ravdess, make_emotional_speech

FULL = False

if FULL:
    if len(sys.argv) > 1:
        path = Path(sys.argv[1])
    else:
        path = Path(os.environ.get("SKLEARN_TSER_RAVDESS", "../shared/data/ravdess"))
    if not path.is_dir():
        print(f"RAVDESS not found at {path}; pass its folder as first argument.")
        sys.exit(0)
    corpus = load_ravdess(path)
    groups = corpus.actor
else:
    corpus = make_emotional_speech(
        n_samples=120, n_classes=4, max_duration=2.0, random_state=0
    )
    groups = corpus.speaker
y = corpus.target
# The transformer is stateless: compute the spectrograms once for the whole grid.
S = LogMelTransformer(n_mels=40 if not FULL else 64).fit_transform(corpus.data)
print(f"{len(y)} clips, spectrograms of shape {S.shape}")

# %%
# The grid
# --------
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold

from sklearn_tser import EmotionEmbeddingClassifier
from sklearn_tser.evaluation import paper_cv

architectures = ["fc", "cnn", "rnn", "lstm", "gru", "resnet"]
NAMES = {"fc": "FC", "cnn": "CNN", "rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
NAMES["resnet"] = "ResNet"
# One network of each family, as in the paper (the default is an ensemble of two).
if FULL:
    clf = EmotionEmbeddingClassifier(n_networks=1, random_state=0)
    param_grid = {"architecture": architectures, "n_layers": list(range(6, 16))}
    # The paper's protocol: stratified 10-fold CV, speakers mixed.
    cv = paper_cv(10)
else:
    clf = EmotionEmbeddingClassifier(
        n_networks=1,
        width=16,
        embedding_dim=32,
        pretrain_epochs=6,
        triplet_epochs=3,
        crop_frames=100,
        random_state=0,
    )
    param_grid = {"architecture": architectures, "n_layers": [6, 8]}
    cv = StratifiedGroupKFold(3, shuffle=True, random_state=0)

search = GridSearchCV(clf, param_grid, cv=cv, scoring="accuracy", n_jobs=1)
search.fit(S, y, groups=None if FULL else groups)
print("best:", search.best_params_, f"accuracy {search.best_score_:.3f}")

# %%
# Table 1
# -------
# Mean cross-validated accuracy of every candidate; the best depth of each
# architecture is marked with ``*``.
results = search.cv_results_
depths = param_grid["n_layers"]
scores = np.full((len(architectures), len(depths)), np.nan)
for params, score in zip(results["params"], results["mean_test_score"], strict=True):
    scores[
        architectures.index(params["architecture"]), depths.index(params["n_layers"])
    ] = score
print(f"{'architecture':<14}" + "".join(f"{f'x={d}':>9}" for d in depths))
for name, row in zip(architectures, scores, strict=True):
    best = int(np.nanargmax(row))
    cells = [f"{s:.3f}" + ("*" if k == best else " ") for k, s in enumerate(row)]
    print(f"{NAMES[name] + '-x':<14}" + "".join(f"{c:>9}" for c in cells))

# %%
# Accuracy against depth
# ----------------------
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
for name, row in zip(architectures, scores, strict=True):
    ax.plot(depths, row, marker="o", label=NAMES[name])
ax.set_xticks(depths)
ax.set_xlabel("number of weight layers x")
ax.set_ylabel("mean CV accuracy")
ax.set_title("Architecture ablation" + ("" if FULL else " (synthetic data)"))
ax.legend(title="architecture", loc="upper left", bbox_to_anchor=(1.02, 1.0))
plt.show()
