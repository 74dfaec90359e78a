"""Test-time augmentation, on the same fits.

The networks are trained on clips whose mel bands were warped at random, by
up to ``frequency_warping`` (5%) up or down, as a longer or shorter vocal
tract moves the formants; they embed each clip once, as it is. Averaging a
clip's embeddings over a few fixed warps within that range (test-time
augmentation; a soft vocal tract length normalisation) may place it nearer
its emotion's centroid. The centroids are computed from the training clips
the same way, so that both sides of each angle are alike. A second question
is asked of the same fits: the centroids are means of training clips the
networks have fitted almost exactly; computed from augmented views of those
clips instead (as training saw them), they may sit where unseen clips fall.

Each fit of ``benchmarks/bench_classifier.py`` (the same folds and seeds) is
scored as fitted, then:

- ``warps 3%``: embeddings averaged over band warps of 0.97, 1 and 1.03
  (each network's unit embeddings averaged, then normalised, then joined as
  the ensemble joins them), test and training clips alike (three passes at
  prediction);
- ``warps 5%``: the same at 0.95, 1 and 1.05, the edges of training's range;
- ``view centroids``: test clips as they are; centroids from the mean of
  four augmented views of each training clip (crops, rooms, warps and masks
  as :meth:`EmbeddingNet.augment` draws them, seeds 0 to 3).

    python benchmarks/test_time_augmentation.py --protocols paper-10fold
        --jobs 1 [--save-fits DIR] [bench_classifier.py's other options]

Each fold's scores, accuracy (WA) and balanced accuracy (UA, in brackets),
are printed when its fit ends, and the paired differences of each at the
end; the pairs are exact (one fit per fold), so they differ by the
prediction alone. With ``--save-fits DIR``, each fitted classifier is kept
(``joblib``) with its fold's clip indices, to score other rules later
without fitting again; ``--rescore DIR`` scores those fits again without
fitting (of every clip of ``--data``: a fit saved with other spectrograms is
refused), ``--first-view K`` drawing the training views from seeds K to
K + 3 (whether the view centroids hang on the views drawn):

    python benchmarks/test_time_augmentation.py --rescore DIR --first-view 4
"""

import argparse
import copy
import hashlib
import itertools
import sys
from pathlib import Path

import bench_classifier
import joblib
import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score

from sklearn_tser._losses import class_centroids, l2_normalize
from sklearn_tser._training import (
    SpectrogramDataset,
    _warp,
    join_embeddings,
    member_nets,
    speech_regions,
)
from sklearn_tser._validation import check_spectrograms
from sklearn_tser.datasets import load_ravdess

WARPS = {"warps 3%": (0.97, 1.0, 1.03), "warps 5%": (0.95, 1.0, 1.05)}
N_VIEWS = 4
RULES = ("as fitted", *WARPS, "view centroids")


class _Warped:
    """``module`` whose ``embed`` reads its input with the mel bands warped
    at ``rate`` (whole clips, padded: a warp keeps zeros zero)."""

    def __init__(self, module, rate):
        self.module, self.rate = module, rate

    def eval(self):
        self.module.eval()
        return self

    def embed(self, x, lengths):
        rate = torch.full((len(x),), self.rate, device=x.device)
        return self.module.embed(_warp(x, rate), lengths)


def member_embeddings(net, dataset, *, rate=1.0, view_seed=None):
    """Unit embeddings of every clip of ``dataset`` by one network, through
    its own :meth:`EmbeddingNet.embed`: whole clips with their bands warped
    at ``rate``, or, with ``view_seed``, one augmented view of each (as
    training draws them, from that seed)."""
    view = copy.copy(net)  # shares the module; its own seed and reader
    if view_seed is not None:
        view.random_state = view_seed
        return view.embed(dataset, augmented=True)
    if rate != 1.0:
        view.module_ = _Warped(net.module_, rate)
    return view.embed(dataset)


def averaged(parts):
    """The unit mean of unit embeddings of the same clips."""
    return l2_normalize(np.mean(parts, axis=0))


def clip_set(clf, S):
    """The clips ``S`` as ``clf`` reads them: standardised as fitted (the
    default ``standardize="global"``), with the scales the views' rooms
    need."""
    X = check_spectrograms(S, n_mels=clf.n_features_in_)
    return SpectrogramDataset(
        X,
        *speech_regions(X, clf.trim_db),
        mean=clf.feature_mean_,
        std=clf.feature_std_,
        scales=True,
    )


def warped(clf, dataset, rates):
    """``{rate: [each network's unit embeddings]}`` of the clips of
    ``dataset``, their bands warped at each of ``rates``, one pass each."""
    nets = member_nets(clf.net_)
    return {r: [member_embeddings(net, dataset, rate=r) for net in nets] for r in rates}


def over_warps(embedded, rates):
    """The ensemble's joined embeddings, each network's averaged over the
    warps ``rates`` (keys of ``embedded``, as :func:`warped` returns)."""
    members = zip(*(embedded[r] for r in rates), strict=True)
    return join_embeddings([averaged(each) for each in members])


def over_views(clf, dataset, views, first_view=0):
    """The ensemble's joined embeddings, each network's averaged over
    ``views`` augmented views of each clip (seeds ``first_view`` on)."""
    seeds = range(first_view, first_view + views)
    return join_embeddings(
        [
            averaged([member_embeddings(net, dataset, view_seed=k) for k in seeds])
            for net in member_nets(clf.net_)
        ]
    )


def accuracies(clf, S_train, y_train, S_test, y_test, first_view=0):
    """Test accuracy and balanced accuracy, ``(WA, UA)``, of the fitted
    ``clf`` under each rule of ``RULES`` (the default
    ``standardize="global"``, no ``center_embeddings``); the views of the
    training clips are drawn from seeds ``first_view`` on."""
    if clf.standardize != "global" or clf.center_embeddings is not None:
        raise ValueError("the rules are written for the default standardisation")
    codes = np.searchsorted(clf.classes_, y_train)  # as fit encodes them
    n_classes = len(clf.classes_)

    def accuracy(train, test):  # (WA, UA)
        centroids = class_centroids(train, codes, n_classes)
        pred = clf.classes_[(test @ centroids.T).argmax(axis=1)]
        return (
            float((pred == y_test).mean()),
            float(balanced_accuracy_score(y_test, pred)),
        )

    rates = {1.0, *itertools.chain(*WARPS.values())}  # each warp's pass once
    train_set = clip_set(clf, S_train)
    train, test = (warped(clf, d, rates) for d in (train_set, clip_set(clf, S_test)))
    out = {"as fitted": accuracy(over_warps(train, [1.0]), over_warps(test, [1.0]))}
    for name, each in WARPS.items():
        out[name] = accuracy(over_warps(train, each), over_warps(test, each))
    views = over_views(clf, train_set, N_VIEWS, first_view)
    out["view centroids"] = accuracy(views, over_warps(test, [1.0]))
    return out


def print_scores(label, rules):
    """One fit's line: each rule's WA and, in brackets, UA, in %."""
    scores = (f"{r} {100 * wa:.2f} ({100 * ua:.2f})" for r, (wa, ua) in rules.items())
    print(f"{label}: " + ", ".join(scores), flush=True)


def patch(save_fits=None):
    """Make bench_classifier.py score each fit under every rule too, print
    the scores, and keep them (the returned list, one dict per fit)."""
    fit_and_score = bench_classifier.fit_and_score
    fold = itertools.count(1)
    scored = []
    if save_fits is not None:
        Path(save_fits).mkdir(parents=True, exist_ok=True)

    def fit_and_score_every_rule(clf, S, y, tr, te, groups, threads=None):
        outcome = fit_and_score(clf, S, y, tr, te, groups, threads)
        k = next(fold)
        rules = accuracies(clf, S[tr], y[tr], S[te], y[te])
        if abs(rules["as fitted"][0] - outcome["acc"]) > 1e-9:
            raise AssertionError(
                f"fit {k}: the rules' own embeddings score "
                f"{rules['as fitted'][0]:.4f}, predict {outcome['acc']:.4f}"
            )
        if save_fits is not None:
            save_fit(Path(save_fits) / f"fit{k}.joblib", clf, tr, te, S)
        scored.append(rules)
        print_scores(f"fit {k}", rules)
        return outcome

    bench_classifier.fit_and_score = fit_and_score_every_rule
    return scored


def summary(scored, metric="WA"):
    """Each rule's paired difference to the rule as fitted, in points, of
    ``metric`` (``"WA"``, accuracy, or ``"UA"``, balanced accuracy)."""
    column = {"WA": 0, "UA": 1}[metric]
    lines = [
        f"| rule | mean {metric} % | paired difference | std | fits ahead / behind |"
    ]
    lines.append("|---|---:|---:|---:|---:|")
    base = 100 * np.array([s["as fitted"][column] for s in scored])
    for rule in RULES:
        acc = 100 * np.array([s[rule][column] for s in scored])
        d = acc - base
        cells = [f"{acc.mean():.2f}", "", "", ""]
        if rule != "as fitted":
            cells[1:] = [
                f"{d.mean():+.2f}",
                f"{d.std():.2f}",
                f"{(d > 1e-9).sum()} / {(d < -1e-9).sum()}",
            ]
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def digest(S):
    """A short digest of the spectrograms ``S`` (NaN padding included)."""
    return hashlib.sha256(np.ascontiguousarray(S).tobytes()).hexdigest()[:16]


def save_fit(path, clf, train, test, S):
    """Keep a fitted ``clf`` with its fold's clip indices and the digest of
    the spectrograms ``S`` the indices point into."""
    joblib.dump({"clf": clf, "train": train, "test": test, "S": digest(S)}, path)


def rescore(directory, S, y, first_view):
    """Score the fits saved in ``directory`` (by ``--save-fits``, of the
    spectrograms ``S`` with labels ``y``) under every rule again, the views
    drawn from seeds ``first_view`` on; print as a run does, and return the
    scores. A fit saved with other spectrograms is refused."""
    scored = []
    paths = sorted(Path(directory).glob("fit*.joblib"), key=lambda f: int(f.stem[3:]))
    for path in paths:
        fit = joblib.load(path)
        if fit.get("S") != digest(S):
            raise ValueError(
                f"{path} was fitted on other spectrograms than these "
                f"{len(S)} clips' (another corpus, a --quick run or another "
                "feature code): rescore the run's own clips."
            )
        tr, te = fit["train"], fit["test"]
        rules = accuracies(fit["clf"], S[tr], y[tr], S[te], y[te], first_view)
        scored.append(rules)
        print_scores(path.stem, rules)
    return scored


if __name__ == "__main__":
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--save-fits", default=None)
    parser.add_argument("--rescore", default=None, metavar="DIR")
    parser.add_argument("--first-view", type=int, default=0)
    parser.add_argument("--data", default=bench_classifier.DEFAULT_DATA)
    ours, rest = parser.parse_known_args(sys.argv[1:])
    if ours.rescore is not None:
        bunch = load_ravdess(ours.data)
        S = bench_classifier.clips_and_spectrograms(bunch.data)[1]
        scored = rescore(ours.rescore, S, bunch.target, ours.first_view)
    else:
        scored = patch(ours.save_fits)
        bench_classifier.main([*rest, "--data", str(ours.data)])
    if scored:
        for metric in ("WA", "UA"):
            print("\n" + summary(scored, metric), flush=True)
