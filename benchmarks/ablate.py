"""Ablation screen: parameter sets of EmotionEmbeddingClassifier, side by side.

For each named parameter set, the classifier is fitted on a screening
protocol and scored on held-out clips:

- ``mixed``: one stratified 70/30 split, speakers mixed, accuracy (WA), with
  another seed (1) than the benchmark's 70/30 split (0);
- ``actor``: ``GroupKFold(4)`` by actor, balanced accuracy (UA);
- ``speaker``: not a screen but the benchmark's own by-actor protocol
  (``speaker_cv()``, 6 folds, UA), whose fits with the same seeds are those of
  ``bench_classifier.py``: to confirm on it what a screen chose;
- ``tenfold``: likewise the benchmark's own 10-fold protocol with speakers
  mixed (``paper_cv()``, WA), to screen on it what the benchmark will judge
  (with ``--folds``, on its first folds only).

All read the same 1440 RAVDESS clips as the benchmark, whose protocols test
every clip in some fold: a setting chosen here is chosen on clips that the
benchmark also tests, so the benchmark's figures for it are optimistic. Prefer
settings that are generic (schedule, regularisation) over corpus-specific ones,
and judge them on another corpus when one is available.

Features are computed once (default ``LogMelTransformer``) and cached in
``--cache``; every fit's scores are appended to ``<cache>/ablate.jsonl``, so
an interrupted screen resumes where it stopped and a larger one reuses the
fits it shares with a smaller one (a fit is known by all its parameters,
defaults included; delete the cache after changing the code). Fits run in
parallel (``--jobs``), one torch thread each (an ensemble's networks each in a
thread of its own, ``n_jobs``: beside other fits they share the cores, so
the cached fit times of ensembles are indicative only; with ``--jobs 1`` an
ensemble's fit is timed as the benchmark times it). Fits run fold by fold,
every set's fit of a fold after the other, so a screen stopped early has
paired fits. Screen with one seed, confirm the best few with more.

    python benchmarks/ablate.py configs.json [--seeds 3] [--protocols mixed actor]
        [--folds 4] [--jobs 2] [--output table.md]

``configs.json`` holds ``{"name": {parameters}, ...}``; ``{}`` is the default.
A parameter named ``mel__<name>`` sets the log-mel features instead, as
``default_pipeline().set_params`` would (``{"mel__n_mels": 80}``): each
feature setting is computed once and cached, and its fits are keyed by the
feature parameters that differ from the defaults.
The table lists, for each set, the mean and standard deviation over folds and
seeds of each protocol's score, and the mean fit time; with several sets, a
second table gives each set's difference to the first, paired by fold and seed.
"""

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import joblib
import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import GroupKFold

from sklearn_tser._classifier import PARAMS_BEFORE_ADDED
from sklearn_tser.datasets import load_ravdess
from sklearn_tser.evaluation import (
    default_pipeline,
    paper_cv,
    paper_split,
    speaker_cv,
)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess"
DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache"
PROTOCOLS = {
    "mixed": ("WA", accuracy_score),
    "actor": ("UA", balanced_accuracy_score),
    "speaker": ("UA", balanced_accuracy_score),
    "tenfold": ("WA", accuracy_score),
}


def split_params(params):
    """Split a parameter set into the classifier's and the features' (those
    named ``mel__<name>``, without the prefix)."""
    mel = {
        k.removeprefix("mel__"): v for k, v in params.items() if k.startswith("mel__")
    }
    clf = {k: v for k, v in params.items() if not k.startswith("mel__")}
    return clf, mel


def features(data, cache, mel_params=None):
    """Log-mel spectrograms, labels and actors of RAVDESS, cached on disk."""
    mel = default_pipeline().named_steps["mel"].set_params(**(mel_params or {}))
    key = hashlib.sha256(
        json.dumps([str(Path(data).resolve()), mel.get_params()], default=str).encode()
    ).hexdigest()[:16]
    path = Path(cache) / f"ravdess-{key}.npz"
    if not path.exists():
        bunch = load_ravdess(data)
        S = mel.transform(bunch.data)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, S=S, y=bunch.target, actor=bunch.actor)
    loaded = np.load(path)
    return loaded["S"], loaded["y"], loaded["actor"]


def folds(protocol, y, actor):
    if protocol == "mixed":
        return list(paper_split(random_state=1).split(y, y))
    if protocol == "speaker":
        return list(speaker_cv().split(y, y, actor))
    if protocol == "tenfold":
        return list(paper_cv().split(y, y))
    return list(GroupKFold(4).split(y, y, actor))


def screened_folds(protocol, y, actor, n_folds=None):
    """The indices of the folds of ``protocol`` a screen fits: all, or the
    first ``n_folds``."""
    n = len(folds(protocol, y, actor))
    return range(n if n_folds is None else min(n_folds, n))


def mel_changes(params):
    """The feature parameters of a set that differ from the defaults."""
    default = default_pipeline().named_steps["mel"]
    mel = clone(default).set_params(**split_params(params)[1])
    base = default.get_params()
    return {k: v for k, v in mel.get_params().items() if v != base[k]}


def fit_key(params, protocol, fold, seed):
    """The cache key of a fit: every classifier parameter, defaults included
    (a changed default is a new fit), and the feature parameters that differ
    from the defaults (with none, the key is what it was before feature
    parameters existed, so older cached fits stay valid). ``verbose`` is left
    out, and ``n_jobs`` when it is None or the fit has one network (it has no
    effect there; fits cached before ``n_jobs`` existed keep their keys);
    another ``n_jobs`` gives the same ensemble, but is kept in the key because
    the cached fit time depends on it. The options added after fits were
    cached (``PARAMS_BEFORE_ADDED``) are left out at the value that gives the
    fits from before they existed, for the same reason, and
    ``reverberation_fraction`` when ``reverberation`` is off, and the noise's
    spectrum and fraction when ``noise_snr`` is None (they have no effect
    then)."""
    clf = default_pipeline().named_steps["clf"].set_params(**split_params(params)[0])
    unused = {"verbose"}
    if clf.n_jobs is None or clf.n_networks == 1:
        unused.add("n_jobs")
    if clf.reverberation == 0:
        unused.add("reverberation_fraction")
    if clf.noise_snr is None:
        unused.update({"noise_spectrum", "noise_fraction"})
    resolved = {
        k: v
        for k, v in clf.get_params().items()
        if k not in unused
        and not (k in PARAMS_BEFORE_ADDED and v == PARAMS_BEFORE_ADDED[k])
    }
    fit = [resolved, protocol, fold, seed]
    changed = mel_changes(params)
    if changed:
        fit.append({"mel": changed})
    return json.dumps(fit, sort_keys=True, default=str)


def cached_fits(cache, store="ablate.jsonl"):
    """The fits recorded in ``<cache>/<store>``, by key (the last record of a
    key wins); empty when there is none."""
    path = Path(cache) / store
    if not path.exists():
        return {}
    records = (json.loads(line) for line in path.read_text().splitlines())
    return {record["key"]: record for record in records}


def record_fit(cache, record, store="ablate.jsonl"):
    """Append a fit's ``record`` (a dict with its ``"key"``) to
    ``<cache>/<store>``, where :func:`cached_fits` reads it back."""
    with open(Path(cache) / store, "a") as f:
        f.write(json.dumps(record) + "\n")


def fit_fold(S, y, actor, params, protocol, fold, seed):
    """Fit the classifier of a parameter set on a fold of a protocol, with one
    torch thread; return it, the fold's train and test indices and the fit
    time in seconds."""
    import torch

    torch.set_num_threads(1)
    train, test = folds(protocol, y, actor)[fold]
    clf = clone(default_pipeline().named_steps["clf"]).set_params(
        **split_params(params)[0], random_state=fold + 100 * seed
    )
    start = time.perf_counter()
    # fit and predict know the actors, as in the benchmark and the CLI.
    clf.fit(S[train], y[train], groups=actor[train])
    return clf, train, test, time.perf_counter() - start


def kept_fit(S, y, actor, params, protocol, fold, seed, directory, log=print):
    """The path of the model of a fold (as :func:`fit_fold` fits it), kept in
    ``directory`` under a name of its :func:`fit_key`: fitted, and its time
    logged, only when the file is not there yet. The file is written
    whole or not at all, so that a run stopped while writing it resumes."""
    key = fit_key(params, protocol, fold, seed)
    name = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = Path(directory) / f"model-{protocol}-{fold}-{seed}-{name}.joblib"
    if not path.exists():
        clf, _, _, fit_s = fit_fold(S, y, actor, params, protocol, fold, seed)
        log(f"fitted {params} on {protocol} fold {fold} seed {seed}: {fit_s:.0f} s")
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part")
        joblib.dump(clf, part)
        os.replace(part, path)
    return path


def fit_one(S, y, actor, params, protocol, fold, seed):
    clf, _, test, fit_s = fit_fold(S, y, actor, params, protocol, fold, seed)
    pred = clf.predict(S[test], groups=actor[test])
    score = PROTOCOLS[protocol][1](y[test], pred)
    return {"score": float(score), "fit_s": fit_s}


def run(configs, data, cache, seeds, protocols, jobs, n_folds=None, log=print):
    S, y, actor = features(data, cache)
    spectrograms = {"{}": S}  # by the feature parameters that differ from the defaults

    def features_of(params):
        changed = mel_changes(params)
        name = json.dumps(changed, sort_keys=True, default=str)
        if name not in spectrograms:
            spectrograms[name] = features(data, cache, changed)[0]
        return spectrograms[name]

    done = cached_fits(cache)

    tasks = []  # fold by fold, each set's fit of a fold next to the others'
    for protocol in protocols:
        for fold in screened_folds(protocol, y, actor, n_folds):
            for seed in range(seeds):
                for name, params in configs.items():
                    k = fit_key(params, protocol, fold, seed)
                    if k not in done:
                        tasks.append((name, params, protocol, fold, seed, k))
    log(f"{len(tasks)} fits to run ({len(done)} cached)")

    def task(name, params, protocol, fold, seed, key, S_set):
        result = fit_one(S_set, y, actor, params, protocol, fold, seed)
        return {"key": key, "name": name, **result}

    # Each task is handed its own features only (the worker is not sent the
    # features of the other sets).
    for record in Parallel(n_jobs=jobs, return_as="generator")(
        delayed(task)(*t, features_of(t[1])) for t in tasks
    ):
        record_fit(cache, record)
        done[record["key"]] = record
        log(f"{record['name']}: {record['score']:.4f} ({record['fit_s']:.0f} s)")

    rows = {}
    for name, params in configs.items():
        rows[name] = {"params": params}
        for protocol in protocols:
            records = [
                done[fit_key(params, protocol, fold, seed)]
                for fold in screened_folds(protocol, y, actor, n_folds)
                for seed in range(seeds)
            ]
            rows[name][protocol] = [r["score"] for r in records]
            rows[name].setdefault("fit_s", []).extend(r["fit_s"] for r in records)
    return rows


def table(rows, protocols, seeds, timed="a fit"):
    header = "| set | parameters |"
    rule = "|---|---|"
    for protocol in protocols:
        metric = PROTOCOLS[protocol][0]
        header += f" {protocol} {metric} % |"
        rule += "---:|"
    lines = [
        f"Mean ± standard deviation over folds and {seeds} seed(s); mean time of "
        f"{timed} (one torch thread per network).",
        "",
        header + " fit s |",
        rule + "---:|",
    ]
    for name, row in rows.items():
        cells = ""
        for protocol in protocols:
            v = 100 * np.array(row[protocol])
            cells += f" {v.mean():.2f} ± {v.std():.2f} |"
        params = json.dumps(row["params"]) if row["params"] else "defaults"
        lines.append(f"| {name} | `{params}` |{cells} {np.mean(row['fit_s']):.0f} |")
    return "\n".join(lines)


def paired_table(rows, protocols, lead=None):
    """The difference of every set to the first, paired by fold and seed
    (the same folds, seeds and initialisation draws), in points, under a
    ``lead`` sentence (by default one that refers to the table of means
    above it). ``rows[name][protocol]`` lists a set's scores (fractions) in
    the same order of folds and seeds for every set."""
    names = list(rows)
    lead = lead or (
        f"Paired by fold and seed, the difference to {names[0]!r} (std over "
        "the pairs, as in the table above):"
    )
    lines = [
        lead,
        "",
        "| change | screen | pairs (fold, seed) | mean difference, points | std "
        "| range | ahead in |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for name in names[1:]:
        for protocol in protocols:
            d = 100 * (np.array(rows[name][protocol]) - rows[names[0]][protocol])
            # Two rules can reach the same score by different sums: a tie.
            d = np.round(d, 9)
            lines.append(
                f"| {name} | {protocol} | {len(d)} | {d.mean():+.2f} | "
                f"{d.std():.2f} | {d.min():+.2f} to {d.max():+.2f} | "
                f"{(d > 0).sum()} of {len(d)} |"
            )
    return "\n".join(lines)


def report(rows, protocols, seeds, output=None, timed="a fit"):
    """Print the table of ``rows`` (and, with several sets, the paired
    differences to the first); write it to ``output`` too when given.
    ``timed`` says what the time column timed."""
    text = table(rows, protocols, seeds, timed)
    if len(rows) > 1:
        text += "\n\n" + paired_table(rows, protocols)
    print(text)
    if output:
        output.write_text(text + "\n")


def screen_parser(description, default_protocols):
    """The command line of a screen of parameter sets: the sets, the data,
    the cache, the seeds, the protocols, the folds and the output."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("configs", type=Path, help="JSON: {name: {parameters}}")
    parser.add_argument("--data", default=DEFAULT_DATA, type=Path)
    parser.add_argument("--cache", default=DEFAULT_CACHE, type=Path)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument(
        "--protocols", nargs="+", choices=list(PROTOCOLS), default=default_protocols
    )
    parser.add_argument(
        "--folds", type=int, help="screen on the first FOLDS folds of each protocol"
    )
    parser.add_argument("--output", type=Path, help="write the table here too")
    return parser


def main(argv=None):
    parser = screen_parser(__doc__.splitlines()[0], list(PROTOCOLS))
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    configs = json.loads(args.configs.read_text())
    rows = run(
        configs,
        args.data,
        args.cache,
        args.seeds,
        args.protocols,
        args.jobs,
        n_folds=args.folds,
    )
    report(rows, args.protocols, args.seeds, args.output)


if __name__ == "__main__":
    main()
