"""Accuracy, calibration and speed of EmotionEmbeddingClassifier on RAVDESS,
beside two classic peers, on the same folds.

Protocols, from :mod:`sklearn_tser.evaluation` (the command line uses the
same ones):

- ``paper-10fold``: stratified 10-fold cross-validation, speakers mixed between
  training and test (the paper's protocol, 91.67% reported);
- ``paper-70/30``: one stratified 70/30 split, speakers mixed (also the paper's);
- ``speaker``: 6 folds grouped by actor (4 unseen actors per test fold).

Peers, each standardised and classified by an RBF SVM (C=10):

- MFCC+SVM: 40 MFCCs (mean and standard deviation over time, librosa);
- openSMILE+SVM: the 6373 ComParE_2016 functionals of the ``opensmile``
  package (audEERING), the usual strong classic baseline of SER; skipped with a
  note when ``opensmile`` is not installed (``pip install -e ".[bench]"``).

With ``--params '{"standardize": "group"}'`` the classifier standardises each
actor's clips with their own statistics (with ``'{"center_embeddings":
"group"}'``, it centres each actor's embeddings), and the peers' features are
standardised per actor too (", per-speaker"), so that every method knows the
same about the speakers.

Log-mel features are extracted once for all clips with the default
``LogMelTransformer``. The classifier gets the actors as ``groups`` in every
protocol, as in the CLI: ``fit`` those of the training clips (used only when
``validation_fraction > 0``, ``speaker_adversarial > 0``,
``standardize="group"`` or ``center_embeddings="group"``), the predictions
those of the test clips (used only by the last two).

Training is chaotic: a change of the seed moves a single fit's accuracy by a few
points. ``--seeds K`` fits the classifier K times per fold (seeds
``fold + 100 * s``) and reports the mean and standard deviation over all fits;
``--speaker-seeds`` sets K for the speaker protocol alone. The expected
calibration error (ECE) of ``predict_proba`` is computed on each test fold.

    python benchmarks/bench_classifier.py [--data ../shared/data/ravdess] [--quick]
        [--protocols paper-70/30] [--seeds 1] [--speaker-seeds 3] [--resume DIR]

A full run takes hours on 2 cores. With ``--resume DIR`` every fit of the
classifier is saved in ``DIR`` when it ends, and a run stopped part way (or
run again) fits only what ``DIR`` lacks: the same command finishes the run.
``DIR`` is keyed by the code that trains (the library's source and this
script's, not ``fit_reports.py``'s, which writes and reads the report), the
parameters and the library versions, and a run with another key refuses it.
The peers are computed again on every run (a minute or two).
The report says how many fits came from earlier runs, and on which machines:
a seeded fit may round differently on another CPU, and a fit time is that of
its own machine. The report ends with every fit of the classifier (protocol,
fold, seed, WA, UA and fit time), so that ``compare_runs.py`` pairs a run kept
only as its report with another run, fit by fit.
"""

import argparse
import datetime
import hashlib
import itertools
import json
import os
import platform
import resource
import time
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
from fit_reports import fit_threads, table, where_it_ran
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from sklearn_tser._classifier import reads_speakers
from sklearn_tser._device import resolve_device
from sklearn_tser._training import networks_at_once
from sklearn_tser.datasets import load_ravdess
from sklearn_tser.evaluation import (
    default_pipeline,
    expected_calibration_error,
    paper_cv,
    paper_split,
    speaker_cv,
)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess"
PROTOCOLS = ("paper-10fold", "paper-70/30", "speaker")
PEERS = ("MFCC+SVM", "openSMILE+SVM")
#: The heading of a report's list of every fit, which compare_runs.py reads.


def cpu_name(cpuinfo="/proc/cpuinfo"):
    """The CPU's model name, with its family and model numbers where
    ``cpuinfo`` has them: a name such as "AMD EPYC" covers CPUs of other
    generations, whose fit times differ by half (a fit time is read against
    its CPU's)."""
    try:
        with open(cpuinfo) as f:
            first = f.read().split("\n\n", 1)[0]  # the first processor's
    except OSError:
        first = ""
    fields = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in first.splitlines())
    )
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (CPU family {fields['cpu family']}, model {fields['model']})"
    return name


def code_digest():
    """A digest of the code a fit depends on: the library's sources and this
    script's, and the versions of the libraries that train."""
    import sklearn
    import skorch
    import torch

    import sklearn_tser

    h = hashlib.sha256()
    package = Path(sklearn_tser.__file__).parent
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode())
        h.update(path.read_bytes())
    h.update(Path(__file__).read_bytes())
    for version in (torch.__version__, skorch.__version__, sklearn.__version__):
        h.update(version.encode())
    return h.hexdigest()[:16]


class FitStore:
    """Finished fits of one run, one JSON file each in ``directory``, so that
    a stopped run resumes where it stopped (``--resume``).

    ``key`` (the code digest, the parameters, ``--quick`` and the clips'
    names and sizes) is kept in ``directory/run.json``; a store made for
    another key is refused, as mixing fits of other code, parameters or clips
    would make the report wrong. Any edit of the library or of this script
    changes the digest: resume a run from a worktree of its own commit. The
    machine and the device are not in the key but in each fit's record (a run
    may end on another machine, as two runs of the same code differ by their
    machine's rounding anyway); the report names them. Without ``key`` an
    existing store is opened to read its fits (:meth:`saved`), whatever its
    key.
    """

    def __init__(self, directory, key=None):
        self.directory = Path(directory)
        index = self.directory / "run.json"
        if key is None:  # read a run's fits, as compare_runs.py does
            if not index.is_file():
                raise SystemExit(
                    f"{directory} holds no saved run (no run.json): give the "
                    "directory a run was started with --resume."
                )
            self.key = json.loads(index.read_text())
            return
        self.key = key
        self.directory.mkdir(parents=True, exist_ok=True)
        if index.exists():
            held = json.loads(index.read_text())
            if held != key:
                changed = sorted(k for k in {*held, *key} if held.get(k) != key.get(k))
                raise SystemExit(
                    f"--resume {directory} holds the fits of another run (its "
                    f"{', '.join(changed)} differ from this one's: {held} against "
                    f"{key}); give an empty or new directory."
                )
        else:
            index.write_text(json.dumps(key, indent=1, sort_keys=True))

    @staticmethod
    def _tag(protocol):  # a protocol's name in the fits' file names
        return protocol.replace("/", "_")

    def _path(self, protocol, fold, seed):
        return self.directory / f"{self._tag(protocol)}-{fold}-{seed}.json"

    def get(self, protocol, fold, seed):
        """The saved outcome of a fit, or None."""
        path = self._path(protocol, fold, seed)
        return json.loads(path.read_text()) if path.exists() else None

    def saved(self):
        """Every saved fit, as ``{(protocol, fold, seed): outcome}``."""
        tags = {self._tag(p): p for p in PROTOCOLS}
        fits = {}
        for path in sorted(self.directory.glob("*-*-*.json")):
            tag, fold, seed = path.stem.rsplit("-", 2)
            if tag in tags and fold.isdigit() and seed.isdigit():
                fits[tags[tag], int(fold), int(seed)] = json.loads(path.read_text())
        return fits

    def put(self, protocol, fold, seed, outcome):
        """Save a fit's outcome with the machine and the date it ran on."""
        outcome = {
            **outcome,
            "machine": cpu_name(),
            "date": datetime.date.today().isoformat(),
        }
        path = self._path(protocol, fold, seed)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(outcome, sort_keys=True))
        tmp.replace(path)  # whole or absent, even if the run is killed
        return outcome


def splits(protocol, y, actor, quick=False):
    """The (train, test) index pairs of a protocol on these clips."""
    cv = {
        "paper-10fold": paper_cv(3 if quick else 10),
        "paper-70/30": paper_split(),
        "speaker": speaker_cv(3 if quick else 6),
    }[protocol]
    groups = actor if protocol == "speaker" else None
    return list(cv.split(np.zeros(len(y)), y, groups))


def mfcc_stats(clips, sr=16000):
    feats = []
    for y in clips:
        m = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40)
        feats.append(np.concatenate([m.mean(axis=1), m.std(axis=1)]))
    return np.array(feats)


def compare_functionals(clips, sr=16000):
    """openSMILE ComParE_2016 functionals (6373 per clip), or None without
    the ``opensmile`` package."""
    try:
        import opensmile
    except ImportError:
        return None
    smile = opensmile.Smile(
        feature_set=opensmile.FeatureSet.ComParE_2016,
        feature_level=opensmile.FeatureLevel.Functionals,
    )
    return np.vstack([smile.process_signal(y, sr).to_numpy() for y in clips])


def per_speaker(F, speakers):
    """Features standardised with each speaker's own clips (speaker
    normalisation, the classic form for functionals), the standard deviation
    floored at 1e-3 as the classifier's. Called on the training clips and on
    the test clips of a fold apart, as the classifier with
    ``standardize="group"`` does, so that both know the same about the
    speakers."""
    out = np.empty_like(F, dtype=np.float64)
    for s in np.unique(speakers):
        rows = speakers == s
        out[rows] = (F[rows] - F[rows].mean(axis=0)) / np.maximum(
            F[rows].std(axis=0), 1e-3
        )
    return out


def svm():
    return make_pipeline(StandardScaler(), SVC(kernel="rbf", C=10, gamma="scale"))


def scores(y_true, y_pred):
    return {
        "acc": accuracy_score(y_true, y_pred),
        "uar": balanced_accuracy_score(y_true, y_pred),
        "f1": f1_score(y_true, y_pred, average="macro"),
    }


def device_name(device):
    """The device a fit ran on, as the report names it: ``cpu``, or
    ``cuda:0 (NVIDIA ...)``."""
    import torch

    resolved = resolve_device(device)
    if resolved.type != "cuda":
        return str(resolved)
    return f"{resolved} ({torch.cuda.get_device_name(resolved)})"


def clips_key(files):
    """The clips of a run, for the key of :class:`FitStore`: each file's name
    and size, in order (their content read once more would take minutes)."""
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{Path(f).name}:{Path(f).stat().st_size};".encode())
    return {"n_clips": len(files), "clips": digest.hexdigest()[:16]}


def clips_and_spectrograms(files):
    """The samples of every file (float32, as every method here reads them)
    and their log-mel spectrograms by the default ``LogMelTransformer``."""
    clips = [sf.read(f, dtype="float32")[0] for f in files]
    return clips, default_pipeline().named_steps["mel"].transform(clips)


def fit_and_score(clf, S, y, tr, te, groups, threads=None):
    """Fit ``clf`` on the training clips, score it on the test clips.

    ``groups`` (the actor of every clip) goes to ``fit`` with the training
    clips and to the predictions with the test clips: ``standardize="group"``
    standardises each actor's clips together.
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    clf.fit(S[tr], y[tr], groups=groups[tr])
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    proba = clf.predict_proba(S[te], groups=groups[te])
    pred_s = time.perf_counter() - start
    pred = clf.classes_[proba.argmax(axis=1)]
    return {
        **scores(y[te], pred),
        "ece": expected_calibration_error(y[te], proba, classes=clf.classes_),
        "fit_s": fit_s,
        "clips_per_s": len(te) / pred_s,
        # The classifier's own setting rules its fit (n_threads=None: torch's).
        "threads": clf.n_threads or torch.get_num_threads(),
        "networks_at_once": networks_at_once(clf.n_jobs, clf.n_networks),
        "device": device_name(clf.device),
    }


def fit_score_and_save(store, task, *args, **kwargs):
    """:func:`fit_and_score`, the outcome saved in ``store`` (if any) as soon
    as the fit ends, in the process that ran it: a run stopped later keeps
    it, whatever the order the fits end in."""
    outcome = fit_and_score(*args, **kwargs)
    return outcome if store is None else store.put(*task, outcome)


def run(
    data,
    quick=False,
    params=None,
    protocols=None,
    log=print,
    seeds=None,
    jobs=1,
    resume=None,
):
    """Fit every method on every fold; ``seeds`` maps a protocol to K.

    The first fit (of the 70/30 split when it is run) runs alone, with the
    classifier's ``n_threads`` (one by default): its time is the fit time
    reported. With ``jobs > 1`` the other fits run in that many processes; a
    classifier with ``n_threads=None`` gets its share of the cores there, and
    so does an ensemble's ``n_jobs`` unless ``params`` sets it (the networks
    are the same at any ``n_jobs``).
    With ``resume`` (a directory, :class:`FitStore`) the fits saved there by
    an earlier run of the same code and parameters are read, not refitted.
    """
    params = params or {}
    seeds = seeds or {}
    protocols = protocols or PROTOCOLS
    bunch = load_ravdess(data)
    keep = np.arange(len(bunch.target))
    if quick:  # 6 actors, 3 folds, short training
        keep = np.flatnonzero(bunch.actor <= 6)
        params = {"pretrain_epochs": 4, "triplet_epochs": 2, **params}
    files = [bunch.data[i] for i in keep]
    y, actor = bunch.target[keep], bunch.actor[keep]
    split = {"quick": quick, **clips_key(files)}  # what two runs must share to pair
    store = None
    if resume is not None:  # another run's store is refused before any work
        store = FitStore(resume, {"code": code_digest(), "params": params, **split})
    clips, S = clips_and_spectrograms(files)
    pipe = default_pipeline()
    pipe.set_params(**{f"clf__{k}": v for k, v in params.items()})
    start = time.perf_counter()
    peers = {"MFCC+SVM": mfcc_stats(clips)}
    peer_s = {"MFCC+SVM": time.perf_counter() - start}
    start = time.perf_counter()
    functionals = compare_functionals(clips)
    if functionals is not None:
        peers["openSMILE+SVM"] = functionals
        peer_s["openSMILE+SVM"] = time.perf_counter() - start
    # With a setting that reads the speakers at prediction, the peers know
    # them too: their features standardised per speaker.
    peers_per_speaker = reads_speakers(pipe.named_steps["clf"]) is not None
    if peers_per_speaker:  # the peers know the speakers too
        peers = {f"{name}, per-speaker": F for name, F in peers.items()}
        peer_s = {f"{name}, per-speaker": t for name, t in peer_s.items()}

    tasks = []  # (protocol, fold, seed, train, test)
    for protocol in sorted(protocols, key=lambda p: p != "paper-70/30"):
        folds = splits(protocol, y, actor, quick)
        for k in range(len(folds)):
            for seed in range(seeds.get(protocol, 1)):
                tasks.append((protocol, k, seed, *folds[k]))

    def job(protocol, k, seed, tr, te):
        clf = clone(pipe.named_steps["clf"]).set_params(random_state=k + 100 * seed)
        # fit and predict know the actors, as in the CLI: early stopping
        # (validation_fraction > 0) validates on held-out actors, and
        # speaker_adversarial and standardize="group" need them.
        return clf, S, y, tr, te, actor

    # The peers are deterministic: one fit per fold, all before the network's
    # fits, so that none runs beside a timed one.
    peer_scores = {}
    for protocol, k, seed, tr, te in tasks:
        if seed == 0:
            for name, F in peers.items():
                train, test = F[tr], F[te]
                if peers_per_speaker:  # the fold's clips apart
                    train, test = (
                        per_speaker(train, actor[tr]),
                        per_speaker(test, actor[te]),
                    )
                peer = svm().fit(train, y[tr])
                peer_scores[protocol, k, name] = scores(y[te], peer.predict(test))

    saved = None
    if store is not None:
        saved = {task[:3]: store.get(*task[:3]) for task in tasks}
        log(
            f"--resume {resume}: {sum(v is not None for v in saved.values())} of "
            f"{len(tasks)} fits saved by earlier runs"
        )
    todo = [task for task in tasks if not saved or saved[task[:3]] is None]
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None

    def side_by_side(clf, *args):  # fits run `jobs` at a time share the cores
        if threads and "n_jobs" not in params:
            clf.set_params(n_jobs=threads)
        return clf, *args

    # The first fit alone (its time is the one reported), then the others as
    # they finish, so that each is logged when it is done, not at the end.
    alone = []
    if todo and todo[0] is tasks[0]:
        task = todo.pop(0)
        alone = [{**fit_score_and_save(store, task[:3], *job(*task)), "alone": True}]
    fresh = itertools.chain(
        alone,
        Parallel(n_jobs=jobs, return_as="generator")(
            delayed(fit_score_and_save)(
                store, task[:3], *side_by_side(*job(*task)), threads=threads
            )
            for task in todo
        ),
    )

    def outcomes():
        for protocol, k, seed, *_ in tasks:
            if saved and saved[protocol, k, seed] is not None:
                yield {**saved[protocol, k, seed], "resumed": True}
            else:
                yield next(fresh)

    results = {p: {"ours": [], **{name: [] for name in peers}} for p in protocols}
    first = None
    for (protocol, k, seed, *_), ours in zip(tasks, outcomes(), strict=True):
        ours = {"fold": k, "seed": seed, **ours}  # for the report's list of fits
        first = first or ours
        rows = results[protocol]
        rows["ours"].append(ours)
        line = (
            f"{protocol} fold {k + 1} seed {seed}: ours acc={ours['acc']:.3f} "
            f"uar={ours['uar']:.3f} ece={ours['ece']:.3f} ({ours['fit_s']:.0f} s fit, "
            f"{fit_threads(ours['threads'], ours.get('networks_at_once', 1))}"
            + (
                f"; saved {ours['date']} on {ours['machine']})"
                if ours.get("resumed")
                else ")"
            )
        )
        if seed == 0:
            for name in peers:
                rows[name].append(peer_scores[protocol, k, name])
                line += f" | {name} acc={rows[name][-1]['acc']:.3f} "
                line += f"uar={rows[name][-1]['uar']:.3f}"
        log(line)
    peak_mb = max(
        resource.getrusage(who).ru_maxrss / 1024
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return {
        "n_clips": len(y),
        "params": params,
        "results": {p: results[p] for p in protocols},
        "split": split,
        "peak_mb": peak_mb,
        "seeds": seeds,
        "jobs": jobs,
        "first_fit": first,
        "first_protocol": tasks[0][0],
        "peer_feature_s": peer_s,
        "missing_peers": [p for p in PEERS if not any(n.startswith(p) for n in peers)],
        "resumed": [
            (where_it_ran(f), f["date"])
            for rows in results.values()
            for f in rows["ours"]
            if f.get("resumed")
        ],
        "machine": cpu_name(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, type=Path)
    parser.add_argument(
        "--quick", action="store_true", help="6 actors, 3 folds, few epochs"
    )
    parser.add_argument("--params", default="{}", help="JSON of classifier parameters")
    parser.add_argument("--protocols", nargs="+", choices=PROTOCOLS)
    parser.add_argument(
        "--seeds", type=int, default=1, help="classifier fits per fold (seeds)"
    )
    parser.add_argument(
        "--speaker-seeds",
        type=int,
        help="fits per fold of the speaker protocol (default: --seeds)",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="fits run at a time after the first"
    )
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="save each fit in DIR and reuse the fits saved there by an earlier "
        "run of the same code and parameters",
    )
    args = parser.parse_args(argv)
    seeds = {p: args.seeds for p in PROTOCOLS}
    if args.speaker_seeds:
        seeds["speaker"] = args.speaker_seeds
    result = run(
        args.data,
        args.quick,
        json.loads(args.params),
        args.protocols,
        seeds=seeds,
        jobs=args.jobs,
        resume=args.resume,
    )
    print(table(result))
    return result


if __name__ == "__main__":
    main()
