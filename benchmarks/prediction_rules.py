"""Prediction rules on the same fitted embeddings: centroids, neighbours, more.

The classifier assigns a clip the emotion of the centroid (mean training
embedding) that makes the smallest angle with its embedding, as the paper
does. One centroid per emotion models each emotion as one cluster on the
sphere; with speakers mixed, a test speaker's clips of an emotion may sit
closer to that speaker's training clips of it than to the emotion's mean.
This script asks which rule reads the embeddings best: every rule scores the
*same* fitted model of each fold, so the comparison is paired exactly.

The defaults (or the parameter set given by ``--params``) are fitted on the
protocols of ``benchmarks/ablate.py`` (same folds, seeds and features cache):
its screens, ``actor`` and ``mixed``, to choose a rule, and ``speaker``, the
benchmark's by-actor folds (the fits of ``bench_classifier.py`` with the same
seeds), to confirm one. The whole-clip embeddings of all clips are cached in
``<cache>/embeddings/``, so new rules are scored in seconds without refitting.

    python benchmarks/prediction_rules.py [--protocols actor mixed] [--seeds 1]
        [--params JSON] [--jobs 2] [--output table.md] [--ensembles 2]

With ``--ensembles k``, ensembles of ``k`` of the seeds' fits of each fold are
scored too (:func:`ensemble_rows`), as the classifier's ``n_networks=k``
joins its networks, against the same networks alone; with ``--baseline JSON``
as well, the same rows of that parameter set's fits (same folds and seeds)
come first, and the differences are to its networks alone: e.g. an ensemble
of two cheaper networks against one network of the defaults.
"""

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
from ablate import (
    DEFAULT_CACHE,
    DEFAULT_DATA,
    PROTOCOLS,
    features,
    fit_fold,
    fit_key,
    folds,
    report,
)
from joblib import Parallel, delayed
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from sklearn_tser._losses import class_centroids, group_centered, l2_normalize
from sklearn_tser._training import join_embeddings


def embeddings(S, y, actor, params, protocol, fold, seed, cache):
    """Whole-clip embeddings of every clip under the model fitted on a fold's
    training clips, cached; with the fit's own test score and fit time."""
    key = fit_key(params, protocol, fold, seed)
    name = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = Path(cache) / "embeddings" / f"{protocol}-{fold}-{seed}-{name}.npz"
    if not path.exists():
        clf, _, test, fit_s = fit_fold(S, y, actor, params, protocol, fold, seed)
        score = PROTOCOLS[protocol][1](
            y[test], clf.predict(S[test], groups=actor[test])
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        emb = clf.transform(S, groups=actor)
        np.savez(path, emb=emb, score=score, fit_s=fit_s, key=key)
    loaded = np.load(path)
    return loaded["emb"], float(loaded["score"]), float(loaded["fit_s"])


def centroid_rule(train_emb, train_y, test_emb, **_):
    """The classifier's rule: the nearest emotion centroid by cosine."""
    classes, codes = np.unique(train_y, return_inverse=True)
    centroids = class_centroids(train_emb, codes, len(classes))
    return classes[(test_emb @ centroids.T).argmax(axis=1)]


def knn_rule(k, weights="uniform"):
    """A vote of the ``k`` training clips nearest by cosine (the embeddings
    have unit norm, so Euclidean distance ranks them the same)."""

    def rule(train_emb, train_y, test_emb, **_):
        knn = KNeighborsClassifier(n_neighbors=k, weights=weights)
        return knn.fit(train_emb, train_y).predict(test_emb)

    return rule


def speaker_prototype_rule(train_emb, train_y, test_emb, train_groups, **_):
    """One centroid per emotion and training speaker; the nearest one's emotion."""
    pairs, codes = np.unique(
        np.stack([train_y.astype(str), train_groups.astype(str)], axis=1),
        axis=0,
        return_inverse=True,
    )
    prototypes = class_centroids(train_emb, codes.ravel(), len(pairs))
    return pairs[(test_emb @ prototypes.T).argmax(axis=1), 0].astype(train_y.dtype)


def sub_centroid_rule(n_clusters):
    """``n_clusters`` centroids per emotion (k-means of its training clips on
    the sphere); the nearest one's emotion."""

    def rule(train_emb, train_y, test_emb, **_):
        prototypes, labels = [], []
        for label in np.unique(train_y):
            emb = train_emb[train_y == label]
            km = KMeans(n_clusters, n_init=10, random_state=0).fit(emb)
            prototypes.append(l2_normalize(km.cluster_centers_))
            labels += [label] * n_clusters
        prototypes, labels = np.concatenate(prototypes), np.array(labels)
        return labels[(test_emb @ prototypes.T).argmax(axis=1)]

    return rule


def logistic_rule(train_emb, train_y, test_emb, **_):
    """A multinomial logistic regression on the embeddings."""
    return (
        LogisticRegression(C=1.0, max_iter=2000)
        .fit(train_emb, train_y)
        .predict(test_emb)
    )


def speaker_centred_rule(train_emb, train_y, test_emb, train_groups, test_groups, **_):
    """The classifier's ``center_embeddings="group"``: centroids after each
    speaker's mean embedding is taken from its clips (training speakers with
    their training clips, a test speaker with its own test clips, without
    their labels)."""
    prior = train_emb.mean(axis=0)
    return centroid_rule(
        group_centered(train_emb, train_groups, prior),
        train_y,
        group_centered(test_emb, test_groups, prior),
    )


RULES = {
    "centroids (the classifier's)": centroid_rule,
    "1 nearest clip": knn_rule(1),
    "10 nearest clips, vote": knn_rule(10),
    "10 nearest clips, distance-weighted": knn_rule(10, "distance"),
    "30 nearest clips, vote": knn_rule(30),
    "a centroid per emotion and speaker": speaker_prototype_rule,
    "3 centroids per emotion (k-means)": sub_centroid_rule(3),
    "logistic regression": logistic_rule,
    'centroids, speakers centred (center_embeddings="group")': speaker_centred_rule,
}


def _score(rule, emb, y, actor, train, test, metric):
    """The score of ``rule`` on a fold's test clips, from its training clips."""
    pred = rule(
        train_emb=emb[train],
        train_y=y[train],
        test_emb=emb[test],
        train_groups=actor[train],
        test_groups=actor[test],
    )
    return float(metric(y[test], pred))


def ensemble_rows(S, y, actor, params, protocols, seeds, size, cache):
    """Ensembles of ``size`` networks from the cached fits: the fits of seeds
    ``k * size`` to ``(k + 1) * size - 1`` of each fold joined as the
    classifier's ``n_networks=size`` joins its members (each member's unit
    embedding, concatenated, over ``sqrt(size)``), against the mean of the
    same members alone; all scored with the centroids, without and with
    speaker centring. The members' seeds differ from those ``n_networks``
    draws, not their distribution."""
    alone, centred = centroid_rule, speaker_centred_rule
    rows = {
        "one network (mean of the members)": {},
        f"ensemble of {size} (joined embeddings)": {},
        "one network, speakers centred (mean of the members)": {},
        f"ensemble of {size}, speakers centred": {},
    }
    fit_s = []
    for protocol in protocols:
        metric = PROTOCOLS[protocol][1]
        for row in rows.values():
            row[protocol] = []
        for fold, (train, test) in enumerate(folds(protocol, y, actor)):
            for first in range(0, seeds - size + 1, size):
                members = [
                    embeddings(S, y, actor, params, protocol, fold, seed, cache)
                    for seed in range(first, first + size)
                ]
                fit_s.append(sum(m[2] for m in members))
                joined = join_embeddings([m[0] for m in members])
                split = (y, actor, train, test, metric)
                for (name, row), rule in zip(
                    rows.items(), [alone, alone, centred, centred], strict=True
                ):
                    row[protocol].append(
                        _score(rule, joined, *split)
                        if name.startswith("ensemble")
                        else np.mean([_score(rule, m[0], *split) for m in members])
                    )
    for row in rows.values():
        row.update(params=params, fit_s=fit_s)
    return rows


def score_rules(S, y, actor, params, protocol, fold, seed, cache):
    emb, score, fit_s = embeddings(S, y, actor, params, protocol, fold, seed, cache)
    train, test = folds(protocol, y, actor)[fold]
    split = (y, actor, train, test, PROTOCOLS[protocol][1])
    scores = {name: _score(rule, emb, *split) for name, rule in RULES.items()}
    return {"scores": scores, "fit_score": score, "fit_s": fit_s}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, type=Path)
    parser.add_argument("--cache", default=DEFAULT_CACHE, type=Path)
    parser.add_argument("--params", default="{}", help="JSON parameters to fit")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument(
        "--protocols", nargs="+", choices=list(PROTOCOLS), default=["actor", "mixed"]
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--output", type=Path, help="write the table here too")
    parser.add_argument(
        "--ensembles",
        type=int,
        default=0,
        help="also score ensembles of this many of the seeds' fits",
    )
    parser.add_argument(
        "--baseline",
        help="JSON parameters whose networks and ensembles the ensembles are "
        "compared with (fitted when not cached)",
    )
    args = parser.parse_args(argv)
    params = json.loads(args.params)
    # Parsed here, not after hours of fits.
    baseline = None if args.baseline is None else json.loads(args.baseline)
    if baseline is not None and not args.ensembles:
        parser.error("--baseline compares ensembles: give --ensembles too")
    if args.ensembles and not 2 <= args.ensembles <= args.seeds:
        parser.error(
            f"--ensembles must be from 2 to --seeds ({args.seeds}), the seeds' fits "
            f"it joins; got {args.ensembles}"
        )
    if args.ensembles:
        # The ensembles join one network per seed, as n_networks joins its
        # members (the defaults are an ensemble of two).
        if any(each.get("n_networks", 1) != 1 for each in (params, baseline or {})):
            parser.error(
                "--ensembles joins the fits of one network each: --params and "
                "--baseline must not set n_networks (it is 1 there)"
            )
        params = {"n_networks": 1, **params}
        baseline = None if baseline is None else {"n_networks": 1, **baseline}
    if any(each.get("center_embeddings") for each in (params, baseline or {})):
        # The rules read the embeddings as the network gives them; the
        # speaker-centred rule is the option.
        parser.error(
            "--params and --baseline must not set center_embeddings: it is one "
            "of the rules"
        )

    S, y, actor = features(args.data, args.cache)
    # Seed after seed: a run stopped early leaves whole seeds in the cache.
    tasks = [
        (protocol, fold, seed)
        for seed in range(args.seeds)
        for protocol in args.protocols
        for fold in range(len(folds(protocol, y, actor)))
    ]
    results = Parallel(n_jobs=args.jobs)(
        delayed(score_rules)(S, y, actor, params, *task, args.cache) for task in tasks
    )
    if baseline is not None:  # its fits too, --jobs at a time, before the tables
        Parallel(n_jobs=args.jobs)(
            delayed(embeddings)(S, y, actor, baseline, *task, args.cache)
            for task in tasks
        )
    for task, r in zip(tasks, results, strict=True):
        # The centroid rule on cached embeddings is the fitted classifier's.
        assert (
            abs(r["scores"]["centroids (the classifier's)"] - r["fit_score"]) < 1e-9
        ), task
    rows = {}
    for name in RULES:
        rows[name] = {"params": params, "fit_s": [r["fit_s"] for r in results]}
        for protocol in args.protocols:
            rows[name][protocol] = [
                r["scores"][name]
                for task, r in zip(tasks, results, strict=True)
                if task[0] == protocol
            ]
    report(rows, args.protocols, args.seeds, args.output)
    if args.ensembles > 1:
        print()
        sets = [params]
        if baseline is not None:  # its rows first: the reference
            sets.insert(0, baseline)
        ensembles = {}
        for k, each in enumerate(sets):
            rows = ensemble_rows(
                S,
                y,
                actor,
                each,
                args.protocols,
                args.seeds,
                args.ensembles,
                args.cache,
            )
            label = "baseline: " if k == 0 and len(sets) > 1 else ""
            ensembles.update({label + name: row for name, row in rows.items()})
        report(
            ensembles,
            args.protocols,
            args.seeds // args.ensembles,
            args.output and args.output.with_name(f"ensembles-{args.output.name}"),
        )


if __name__ == "__main__":
    main()
