"""Whole clips or averaged windows at prediction, on the same fitted models.

The classifier trains on random 2 s crops and, at prediction, reads each whole
clip (the statistics pooling averages over all its frames). This script asks
whether prediction should rather see what training saw: each clip cut into
windows of ``--window`` frames every ``--hop`` frames (the last one ending at
the clip's end), their unit-norm embeddings averaged and normalised again, and
the emotion centroids computed the same way from the training clips. Both
modes score the *same* fitted model of each fold, so the comparison is paired
exactly; the defaults are fitted on the screening protocols of
``benchmarks/ablate.py`` (same folds, seeds and features cache).

    python benchmarks/crop_inference.py [--seeds 1] [--jobs 2] [--output table.md]
"""

import argparse
from pathlib import Path

import numpy as np
from ablate import (
    DEFAULT_CACHE,
    DEFAULT_DATA,
    PROTOCOLS,
    features,
    fit_fold,
    folds,
    report,
)
from joblib import Parallel, delayed

from sklearn_tser._losses import class_centroids, l2_normalize
from sklearn_tser._validation import check_spectrograms


def windows(S, window, hop):
    """Cut every NaN-padded clip of ``S`` into windows of ``window`` frames.

    Returns the windows, NaN-padded to ``window`` frames (a clip shorter than
    a window is one window), and the index of the clip of each window.
    """
    lengths = check_spectrograms(S).lengths
    cuts, owner = [], []
    for i, length in enumerate(lengths):
        starts = list(range(0, max(length - window, 0) + 1, hop))
        if starts[-1] + window < length:
            starts.append(length - window)  # the last window ends at the clip's end
        for start in starts:
            cut = np.full((S.shape[1], window), np.nan, dtype=S.dtype)
            frames = S[i, :, start : min(start + window, length)]
            cut[:, : frames.shape[1]] = frames
            cuts.append(cut)
            owner.append(i)
    return np.stack(cuts), np.array(owner)


def averaged_embeddings(clf, S, window, hop):
    """Unit-norm mean of the unit-norm embeddings of each clip's windows."""
    cuts, owner = windows(S, window, hop)
    emb = clf.transform(cuts)
    sums = np.zeros((len(S), emb.shape[1]))
    np.add.at(sums, owner, emb)
    return l2_normalize(sums)


def fit_one(S, y, actor, protocol, fold, seed, window, hop):
    # The fit of benchmarks/ablate.py for the defaults: same seed, same groups.
    clf, train, test, fit_s = fit_fold(S, y, actor, {}, protocol, fold, seed)
    metric = PROTOCOLS[protocol][1]
    whole = metric(y[test], clf.predict(S[test], groups=actor[test]))

    codes = np.searchsorted(clf.classes_, y[train])
    emb = averaged_embeddings(clf, S[train], window, hop)
    centroids = class_centroids(emb, codes, len(clf.classes_))  # as the classifier's
    cosines = averaged_embeddings(clf, S[test], window, hop) @ centroids.T
    windowed = metric(y[test], clf.classes_[cosines.argmax(axis=1)])
    return {"whole": float(whole), "windows": float(windowed), "fit_s": fit_s}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, type=Path)
    parser.add_argument("--cache", default=DEFAULT_CACHE, type=Path)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument(
        "--protocols", nargs="+", choices=list(PROTOCOLS), default=["actor", "mixed"]
    )
    parser.add_argument("--window", type=int, default=200, help="frames (2 s)")
    parser.add_argument("--hop", type=int, default=100, help="frames (1 s)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--output", type=Path, help="write the table here too")
    args = parser.parse_args(argv)

    S, y, actor = features(args.data, args.cache)
    tasks = [
        (protocol, fold, seed)
        for protocol in args.protocols
        for fold in range(len(folds(protocol, y, actor)))
        for seed in range(args.seeds)
    ]
    results = Parallel(n_jobs=args.jobs)(
        delayed(fit_one)(S, y, actor, *task, args.window, args.hop) for task in tasks
    )
    names = {
        "whole": "whole clips (the default)",
        "windows": f"windows of {args.window} frames every {args.hop}, averaged",
    }
    rows = {}
    for mode, name in names.items():
        rows[name] = {"params": {}, "fit_s": [r["fit_s"] for r in results]}
        for protocol in args.protocols:
            rows[name][protocol] = [
                r[mode]
                for task, r in zip(tasks, results, strict=True)
                if task[0] == protocol
            ]
    report(rows, args.protocols, args.seeds, args.output)


if __name__ == "__main__":
    main()
