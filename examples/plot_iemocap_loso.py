"""
=========================================
IEMOCAP: leave-one-session-out evaluation
=========================================

IEMOCAP has five sessions of two actors each. The usual speaker-independent
protocol trains on four sessions and tests on the fifth, five times; the usual
label set has four classes, neutral, happy (with excited merged in), sad and
angry (5531 utterances). The paper reports 64.44% accuracy (its Table 3).

IEMOCAP is licence-gated: request it from USC SAIL
(https://sail.usc.edu/iemocap/), then give the ``IEMOCAP_full_release`` folder
as the first argument or in ``SKLEARN_TSER_IEMOCAP``. Without it the example
says so and stops. The network below is reduced for a CPU; set ``FULL = True``
for the default ResNet-11 (best on a GPU). The command line equivalent::

    sklearn-tser evaluate --dataset iemocap --data PATH --protocol speaker
"""

# %%
# Find the corpus
# ---------------
import os
import sys
from pathlib import Path

FULL = False

if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
    path = Path(sys.argv[1])
else:
    path = Path(os.environ.get("SKLEARN_TSER_IEMOCAP", "IEMOCAP_full_release"))
if not path.is_dir():
    print(
        f"IEMOCAP not found at {str(path)!r}. It is licence-gated: request it "
        "from https://sail.usc.edu/iemocap/, then pass the IEMOCAP_full_release "
        "folder as the first argument or set SKLEARN_TSER_IEMOCAP."
    )
    sys.exit(0)

# %%
# Load the four-class set and compute the spectrograms
# ----------------------------------------------------
# Utterances last up to about 35 s; ``max_frames`` keeps the centre 10 s of the
# longer ones, which bounds memory (the classifier trains on 2 s crops anyway).
import numpy as np

from sklearn_tser import EmotionEmbeddingClassifier, LogMelTransformer
from sklearn_tser.datasets import load_iemocap

iemocap = load_iemocap(path, emotions="4class")
y, session = iemocap.target, iemocap.session
names, counts = np.unique(y, return_counts=True)
print(f"{len(y)} utterances:", dict(zip(names, counts, strict=True)))
S = LogMelTransformer(max_frames=1000).fit_transform(iemocap.data)

# %%
# Leave one session out
# ---------------------
# ``groups`` of ``fit`` would make early stopping (``validation_fraction > 0``)
# validate on held-out sessions too.
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import cross_val_predict, cross_validate

from sklearn_tser.evaluation import speaker_cv

if FULL:
    clf = EmotionEmbeddingClassifier(random_state=0)
else:
    clf = EmotionEmbeddingClassifier(
        n_networks=1,  # default: 2, an ensemble of two
        n_layers=8,
        width=32,
        pretrain_epochs=10,
        triplet_epochs=5,
        random_state=0,
    )
scoring = ["accuracy", "balanced_accuracy", "f1_macro"]
cv = speaker_cv(5)  # one test fold per session
scores = cross_validate(
    clf, S, y, groups=session, cv=cv, scoring=scoring, params={"groups": session}
)
for k in range(5):
    line = "  ".join(f"{m} {scores[f'test_{m}'][k]:.3f}" for m in scoring)
    print(f"test session {k + 1}: {line}")
for m in scoring:
    print(
        f"{m:>18}: {scores[f'test_{m}'].mean():.3f} ± {scores[f'test_{m}'].std():.3f}"
    )

# %%
# Confusion matrix over the five test sessions
# --------------------------------------------
y_pred = cross_val_predict(clf, S, y, groups=session, cv=cv, params={"groups": session})
ConfusionMatrixDisplay.from_predictions(
    y, y_pred, normalize="true", values_format=".2f"
)
