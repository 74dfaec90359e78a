"""
=====================================================
RAVDESS: the paper's protocol and speaker-independent
=====================================================

Kumar et al. report 91.67% accuracy on RAVDESS (the paper's Table 2) with
stratified 10-fold cross-validation and a 70/30 split. Both put clips of every
actor on the training *and* the test side, so the model may recognise the voice
as much as the emotion. A speaker-independent protocol, with folds grouped by
actor, measures what matters for new speakers, and scores lower.

This example runs both protocols. It needs RAVDESS on disk (1440 speech clips
of 24 actors, ``Actor_01`` ... ``Actor_24``;
:func:`~sklearn_tser.datasets.fetch_ravdess`
downloads it). Give the folder as the first argument or in the environment
variable ``SKLEARN_TSER_RAVDESS``; the default is ``../shared/data/ravdess``
beside the repository. Without the corpus the example says so and stops.

By default it is reduced: the default classifier (an ensemble of two networks)
on 8 actors, 5 and 4 folds and the 70/30 split, 10 fits on 336 to 384 clips;
it took 28 minutes on an idle 2-core CPU. Set ``FULL = True`` for the paper's
setting (all 24 actors, 10 folds and 6 folds by actor): 17 fits on 1008 to
1296 clips, of which the 70/30 one (1008 clips) took 346 s alone in the
benchmark run, so hours on a 2-core CPU (the benchmark table runs these
folds). The command line does the same::

    sklearn-tser evaluate --dataset ravdess --data PATH --protocol paper
    sklearn-tser evaluate --dataset ravdess --data PATH --protocol speaker
"""

# %%
# Where is the corpus?
# --------------------
import os
import sys
from pathlib import Path

FULL = False


def ravdess_path():
    """First argument, $SKLEARN_TSER_RAVDESS, or ../shared/data/ravdess."""
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        return Path(sys.argv[1])
    if os.environ.get("SKLEARN_TSER_RAVDESS"):
        return Path(os.environ["SKLEARN_TSER_RAVDESS"])
    try:
        repo = Path(__file__).resolve().parents[1]
    except NameError:  # in a notebook
        repo = Path.cwd()
    return repo.parent / "shared" / "data" / "ravdess"


path = ravdess_path()
if not path.is_dir():
    print(
        f"RAVDESS not found at {path}. Pass its folder as the first argument or "
        "set SKLEARN_TSER_RAVDESS; sklearn_tser.datasets.fetch_ravdess() "
        "downloads it (CC BY-NC-SA 4.0)."
    )
    sys.exit(0)

# %%
# Load the clips and compute the spectrograms once
# ------------------------------------------------
# :class:`~sklearn_tser.LogMelTransformer` is stateless, so the spectrograms can
# be computed once and only the classifier fitted in each fold.
import numpy as np

from sklearn_tser.datasets import load_ravdess
from sklearn_tser.evaluation import default_pipeline

actors = None if FULL else range(1, 9)
ravdess = load_ravdess(path, actors=actors)
mel, clf = default_pipeline(random_state=0).named_steps.values()
S = mel.fit_transform(ravdess.data)
y, actor = ravdess.target, ravdess.actor
print(f"{len(y)} clips of {len(np.unique(actor))} actors, spectrograms {S.shape}")

n_splits_paper, n_splits_speaker = (10, 6) if FULL else (5, 4)

# %%
# The paper's protocol: speakers mixed
# ------------------------------------
# Stratified k-fold cross-validation, and a stratified 70/30 split: the folds of
# :mod:`sklearn_tser.evaluation`, which the benchmarks and the command line use.
from sklearn.model_selection import cross_validate

from sklearn_tser.evaluation import paper_cv, paper_split, speaker_cv

scoring = ["accuracy", "balanced_accuracy", "f1_macro"]
results = {}
results[f"paper: {n_splits_paper}-fold CV"] = cross_validate(
    clf, S, y, cv=paper_cv(n_splits_paper), scoring=scoring
)
results["paper: 70/30 split"] = cross_validate(
    clf, S, y, cv=paper_split(), scoring=scoring
)

# %%
# Speaker-independent: folds grouped by actor
# -------------------------------------------
# ``clf__groups`` (here ``groups`` of ``fit``) would make early stopping
# (``validation_fraction > 0``) validate on held-out actors as well.
results[f"speaker: {n_splits_speaker}-fold by actor"] = cross_validate(
    clf,
    S,
    y,
    groups=actor,
    cv=speaker_cv(n_splits_speaker),
    scoring=scoring,
    params={"groups": actor},
)

# %%
# Table 2, and what it hides
# --------------------------
print(f"{'protocol':<28}{'WA':>17}{'UA':>17}{'macro F1':>17}")
for name, res in results.items():
    cells = [res[f"test_{m}"] for m in scoring]
    print(f"{name:<28}" + "".join(f"{c.mean():>9.3f} ± {c.std():.3f}" for c in cells))
print("Paper (Table 2, 10-fold CV and 70/30 split, speakers mixed): 0.9167")
