"""Accuracy and speed of EmotionEmbeddingClassifier on RAVDESS, beside a baseline.

Protocols, each run on the same folds for both methods:

- ``paper-10fold``: stratified 10-fold cross-validation, speakers mixed between
  training and test (the paper's protocol, 91.67% reported);
- ``paper-70/30``: one stratified 70/30 split, speakers mixed (also the paper's);
- ``speaker``: 6 folds grouped by actor (4 unseen actors per test fold).

The baseline is 40 MFCCs (mean and standard deviation over time, librosa) +
standardisation + an RBF SVM. Log-mel features are extracted once for all clips.
In the speaker protocol the classifier gets the actors as ``groups``, so that
with ``validation_fraction > 0`` its early stopping validates on held-out
speakers; in the paper's protocols its validation split is stratified with
speakers mixed, like the test folds.

Training is chaotic: a change of the seed, or of the features by float
rounding, moves a single fit's accuracy by a few points. ``--seeds K`` fits the
classifier K times per fold (seeds ``fold + 100 * s``) and reports the mean and
standard deviation over all fits, to show that spread.

    python benchmarks/bench_classifier.py [--data ../shared/data/ravdess] [--quick]
        [--protocols paper-70/30] [--seeds 5]
"""

import argparse
import json
import resource
import time
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from sklearn.model_selection import GroupKFold, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from sklearn_tser import EmotionEmbeddingClassifier, LogMelTransformer
from sklearn_tser.datasets import load_ravdess

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess"


def mfcc_stats(clips, sr=16000):
    feats = []
    for y in clips:
        m = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40)
        feats.append(np.concatenate([m.mean(axis=1), m.std(axis=1)]))
    return np.array(feats)


def baseline():
    return make_pipeline(StandardScaler(), SVC(kernel="rbf", C=10, gamma="scale"))


def scores(y_true, y_pred):
    return {
        "acc": accuracy_score(y_true, y_pred),
        "uar": balanced_accuracy_score(y_true, y_pred),
        "f1": f1_score(y_true, y_pred, average="macro"),
    }


def splits(protocol, y, actor, n_folds, n_group_folds=6):
    idx = np.arange(len(y))
    if protocol == "paper-10fold":
        return list(
            StratifiedKFold(n_folds, shuffle=True, random_state=0).split(idx, y)
        )
    if protocol == "paper-70/30":
        return [train_test_split(idx, test_size=0.3, stratify=y, random_state=0)]
    n_groups = len(np.unique(actor))
    return list(GroupKFold(min(n_group_folds, n_groups)).split(idx, y, actor))


def run(data, quick=False, params=None, protocols=None, log=print, seeds=1):
    params = params or {}
    bunch = load_ravdess(data)
    keep = np.arange(len(bunch.target))
    if quick:  # 6 actors, 3 folds, short training
        keep = np.flatnonzero(bunch.actor <= 6)
        params = {"pretrain_epochs": 4, "triplet_epochs": 2, **params}
    files = [bunch.data[i] for i in keep]
    y, actor = bunch.target[keep], bunch.actor[keep]
    clips = [sf.read(f, dtype="float32")[0] for f in files]
    S = LogMelTransformer().transform(clips)
    M = mfcc_stats(clips)
    n_folds = 3 if quick else 10
    results = {}
    for protocol in protocols or ("paper-10fold", "paper-70/30", "speaker"):
        rows = {"ours": [], "baseline": []}
        folds = splits(protocol, y, actor, n_folds, 3 if quick else 6)
        for k, s in ((k, s) for k in range(len(folds)) for s in range(seeds)):
            tr, te = folds[k]
            start = time.perf_counter()
            clf = EmotionEmbeddingClassifier(random_state=k + 100 * s, **params)
            # Early stopping validates like the protocol tests: on held-out
            # actors for the speaker protocol, on mixed clips for the paper's.
            groups = actor[tr] if protocol == "speaker" else None
            clf.fit(S[tr], y[tr], groups=groups)
            fit_s = time.perf_counter() - start
            start = time.perf_counter()
            pred = clf.predict(S[te])
            pred_s = time.perf_counter() - start
            rows["ours"].append(
                {**scores(y[te], pred), "fit_s": fit_s, "clips_per_s": len(te) / pred_s}
            )
            if s == 0:  # the baseline is deterministic
                base = baseline().fit(M[tr], y[tr])
                rows["baseline"].append(scores(y[te], base.predict(M[te])))
            log(
                f"{protocol} fold {k + 1} seed {s}: "
                f"ours acc={rows['ours'][-1]['acc']:.3f} "
                f"uar={rows['ours'][-1]['uar']:.3f} ({fit_s:.0f} s fit) | baseline "
                f"acc={rows['baseline'][-1]['acc']:.3f} "
                f"uar={rows['baseline'][-1]['uar']:.3f}"
            )
        results[protocol] = rows
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "n_clips": len(y),
        "params": params,
        "results": results,
        "peak_mb": peak_mb,
        "seeds": seeds,
    }


def _mean_std(rows, key):
    v = np.array([r[key] for r in rows])
    return (
        f"{100 * v.mean():.2f} ± {100 * v.std():.2f}"
        if len(v) > 1
        else f"{100 * v[0]:.2f}"
    )


def table(r):
    lines = [
        f"{r['n_clips']} clips; classifier parameters: "
        f"`{json.dumps(r['params']) if r['params'] else 'defaults'}`",
        "",
        "| protocol | method | accuracy (WA) % | balanced accuracy (UA) % | "
        "macro F1 % | fits |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for protocol, rows in r["results"].items():
        for method, name in (
            ("ours", "EmotionEmbeddingClassifier"),
            ("baseline", "MFCC+SVM"),
        ):
            m = rows[method]
            lines.append(
                f"| {protocol} | {name} | {_mean_std(m, 'acc')} "
                f"| {_mean_std(m, 'uar')} | {_mean_std(m, 'f1')} | {len(m)} |"
            )
    results = r["results"]
    first = results.get("paper-70/30", next(iter(results.values())))["ours"][0]
    which = "70% split" if "paper-70/30" in results else "first fold"
    all_fits = [f["fit_s"] for rows in results.values() for f in rows["ours"]]
    lines += [
        "",
        "| speed and memory (CPU) | value |",
        "|---|---:|",
        f"| fit time, one default fit ({which}) | {first['fit_s']:.0f} s |",
        f"| mean fit time over all folds | {np.mean(all_fits):.0f} s |",
        "| prediction throughput from spectrograms | "
        f"{first['clips_per_s']:.0f} clips/s |",
        f"| peak resident memory of the run | {r['peak_mb']:.0f} MB |",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, type=Path)
    parser.add_argument(
        "--quick", action="store_true", help="6 actors, 3 folds, few epochs"
    )
    parser.add_argument("--params", default="{}", help="JSON of classifier parameters")
    parser.add_argument(
        "--protocols", nargs="+", choices=["paper-10fold", "paper-70/30", "speaker"]
    )
    parser.add_argument(
        "--seeds", type=int, default=1, help="classifier fits per fold (seeds)"
    )
    args = parser.parse_args(argv)
    result = run(
        args.data,
        args.quick,
        json.loads(args.params),
        args.protocols,
        seeds=args.seeds,
    )
    print(table(result))
    return result


if __name__ == "__main__":
    main()
