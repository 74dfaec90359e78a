"""Triplet-phase screen: every set's triplet phase from the same weights.

The softmax phase is most of a fit (360 of the default 390 epochs). To screen
settings of the triplet phase alone, this script fits the softmax phase once
per fold and seed (``triplet_epochs=0``, every other parameter at its default),
keeps that model in ``<cache>/branches/``, and trains each set's triplet phase
from it (``warm_start=True, pretrain_epochs=0``). Every set of a fold starts
from the same weights and draws the same batches where its settings allow, so
the differences between sets are those of the triplet phase alone: the
initialisation and the softmax phase's draws, which move whole fits
(``benchmarks/ablate.py``), are shared. A branch costs a fraction of a fit.

A set holds triplet-phase parameters only (``TRIPLET_PARAMS``); ``{}`` is the
default triplet phase. The first set is the baseline of the paired table. A
branch's triplet phase draws from the fit's seed afresh (its crops, masks and
dropout replay the generator's stream from its start, on the triplet phase's
batches), where a fit from scratch goes on with the draws of its softmax
phase: the baseline's branch is a fit of the defaults, but not the same fit
as ``ablate.py``'s. The folds, seeds and features cache are those of
``ablate.py``; each branch's score is appended to ``<cache>/branches.jsonl``,
keyed by the softmax model and the set's triplet parameters with the defaults
filled in, so a screen stopped early resumes where it stopped.

    python benchmarks/triplet_branches.py configs.json [--protocols tenfold]
        [--folds 5] [--seeds 1] [--output table.md]

The time column is that of a branch's fit (its triplet phase, then the
embeddings and centroids); a softmax phase's fit time is logged when it is
fitted.
"""

import json
import time
from pathlib import Path

import joblib
from ablate import (
    PROTOCOLS,
    cached_fits,
    features,
    folds,
    kept_fit,
    record_fit,
    report,
    screen_parser,
    screened_folds,
)

from sklearn_tser.evaluation import default_pipeline

TRIPLET_PARAMS = frozenset(
    {
        "triplet_epochs",
        "triplet_lr",
        "margin",
        "mining",
        "ce_weight",
        "n_classes_per_batch",
        "n_samples_per_class",
    }
)
SOFTMAX_ONLY = {"triplet_epochs": 0}
STORE = "branches.jsonl"  # the branches' records, in the cache


def check_configs(configs):
    """Raise ``ValueError`` if a set holds other than triplet-phase
    parameters."""
    for name, params in configs.items():
        other = sorted(set(params) - TRIPLET_PARAMS)
        if other:
            raise ValueError(
                f"Set {name!r} sets {other}, which are not triplet-phase "
                f"parameters; a branch can only change {sorted(TRIPLET_PARAMS)}. "
                "Screen the others with ablate.py."
            )


def triplet_params(params):
    """Every triplet-phase parameter of a set: its own, else the default's."""
    defaults = default_pipeline().named_steps["clf"].get_params()
    return {k: defaults[k] for k in sorted(TRIPLET_PARAMS)} | params


def branch(path, triplet, S, y, actor, protocol, fold, seed):
    """Score of the triplet phase of parameters ``triplet`` (all of them,
    :func:`triplet_params`) trained from the model at ``path``, and the
    branch's fit time in seconds."""
    import torch

    torch.set_num_threads(1)
    train, test = folds(protocol, y, actor)[fold]
    clf = joblib.load(path).set_params(warm_start=True, pretrain_epochs=0, **triplet)
    start = time.perf_counter()
    clf.fit(S[train], y[train], groups=actor[train])
    fit_s = time.perf_counter() - start
    pred = clf.predict(S[test], groups=actor[test])
    return float(PROTOCOLS[protocol][1](y[test], pred)), fit_s


def run(configs, data, cache, seeds, protocols, n_folds=None, log=print):
    """Rows of ``ablate.report``: each set's scores (fractions) and branch
    fit times, in one order of protocols, folds and seeds."""
    check_configs(configs)
    S, y, actor = features(data, cache)
    branches = Path(cache) / "branches"  # the softmax phases' models
    done = cached_fits(cache, STORE)
    triplets = {name: triplet_params(params) for name, params in configs.items()}
    rows = {
        name: {"params": params, **{p: [] for p in protocols}, "fit_s": []}
        for name, params in configs.items()
    }
    for protocol in protocols:
        for fold in screened_folds(protocol, y, actor, n_folds):
            for seed in range(seeds):
                path = kept_fit(
                    S, y, actor, SOFTMAX_ONLY, protocol, fold, seed, branches, log
                )
                for name, triplet in triplets.items():
                    key = json.dumps(
                        [path.name, triplet, protocol, fold, seed], sort_keys=True
                    )
                    if key not in done:
                        score, fit_s = branch(
                            path, triplet, S, y, actor, protocol, fold, seed
                        )
                        done[key] = {"key": key, "score": score, "fit_s": fit_s}
                        record_fit(cache, done[key], STORE)
                    record = done[key]
                    rows[name][protocol].append(record["score"])
                    rows[name]["fit_s"].append(record["fit_s"])
                    log(
                        f"{name}, {protocol} fold {fold} seed {seed}: "
                        f"{100 * record['score']:.2f} ({record['fit_s']:.0f} s)"
                    )
    return rows


def main(argv=None):
    parser = screen_parser(__doc__.splitlines()[0], ["tenfold"])
    args = parser.parse_args(argv)
    configs = json.loads(args.configs.read_text())
    rows = run(
        configs, args.data, args.cache, args.seeds, args.protocols, n_folds=args.folds
    )
    report(rows, args.protocols, args.seeds, args.output, timed="a branch's fit")


if __name__ == "__main__":
    main()
