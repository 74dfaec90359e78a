"""Command line interface: ``python -m sklearn_tser`` and ``sklearn-tser``.

Sub-commands:

- ``demo``: the default pipeline on synthetic clips, cross-validated by
  speaker, with figures (confusion matrix, embeddings, centroid angles).
- ``evaluate``: cross-validate the pipeline on RAVDESS, IEMOCAP or a folder of
  clips sorted by emotion, with the paper's protocol (speakers mixed) or a
  speaker-independent one.
- ``train``: fit the pipeline on a corpus and save it.
- ``predict``: label audio files with a saved model.

The spectrograms are computed once per run: :class:`LogMelTransformer` is
stateless, so only the classifier is refitted in each fold, and the saved model
is the usual ``Pipeline([("mel", LogMelTransformer), ("clf", classifier)])``
that reads audio files.
"""

import argparse
import csv
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
)
from sklearn.model_selection import cross_validate
from sklearn.pipeline import Pipeline

from ._audio import check_audio
from ._classifier import needs_speakers, reads_speakers
from ._device import resolve_device
from .evaluation import (
    default_pipeline,
    expected_calibration_error,
    paper_cv,
    paper_split,
    speaker_cv,
)
from .exceptions import MissingGroupsWarning

__all__ = ["main"]

PROG = "sklearn-tser"
DATASETS = ("ravdess", "iemocap", "folder")
PROTOCOLS = ("paper", "speaker")
METRICS = (
    ("WA", "accuracy (weighted accuracy)", accuracy_score),
    ("UA", "balanced accuracy (unweighted accuracy)", balanced_accuracy_score),
    ("F1", "macro F1", lambda y, p: f1_score(y, p, average="macro")),
)
# The label metrics, then the expected calibration error of predict_proba.
_SCORE_NAMES = [name for name, _, _ in METRICS] + ["ECE"]

# The demo trains the default classifier (two networks, their whole schedule;
# docs/cli.rst gives its time); ``--param`` changes it.
DEMO_N_SAMPLES = 160
DEMO_N_CLASSES = 4
DEMO_N_SPLITS = 3


class CLIError(Exception):
    """A usage or input error, reported as one line without a traceback."""


# ------------------------------------------------------------------- models


def _save_model(model, path):
    """Write a fitted model to ``path`` (the one place that picks the format).

    Models are written with :func:`sklearn_tser.save`: safetensors weights and
    JSON metadata, which :func:`sklearn_tser.load` reads without running code
    from the file.
    """
    from ._persistence import save

    return save(model, _model_path(path))


def _model_path(path):
    """``path`` checked for :func:`_save_model` (its folder made), as a
    :class:`CLIError` if a model cannot be written there: checked before
    training, so that a wrong ``-o`` does not cost the fit."""
    from ._persistence import check_model_path

    try:
        return check_model_path(path, make_folder=True)
    except OSError as exc:
        raise CLIError(str(exc)[0].lower() + str(exc)[1:]) from exc


def _load_model(path):
    """Read a model written by :func:`_save_model`."""
    from ._persistence import load

    try:
        return load(path)
    except FileNotFoundError as exc:  # says whether it is missing or a folder
        raise CLIError(str(exc)[0].lower() + str(exc)[1:]) from exc
    except ValueError as exc:  # ModelFileError and its subclasses
        raise CLIError(
            f"could not read model file {str(path)!r}: {exc} Write models with "
            f"'{PROG} train'."
        ) from exc


# --------------------------------------------------------------- parameters


def check_speakers_known(clf, groups):
    """Refuse, before any work, a classifier that needs speakers the corpus
    does not give (see ``needs_speakers``)."""
    if groups is None and (needs := needs_speakers(clf)):
        setting, off = needs
        raise CLIError(
            f"{setting} needs the speaker of every clip, and this corpus does not "
            "give them (a --dataset folder has no speakers). Use a corpus with "
            f"speakers or set {off}."
        )


def build_pipeline(params=None, *, random_state=0, verbose=0):
    """:func:`~sklearn_tser.evaluation.default_pipeline`, with ``params`` set.

    Parameters
    ----------
    params : dict or None, default=None
        Parameters of the pipeline; a key without a step prefix is a classifier
        parameter (``n_layers`` means ``clf__n_layers``).
    random_state : int or None, default=0
        Seed of the classifier (overridden by ``params``).
    verbose : int, default=0
        Verbosity of the classifier (a progress bar over the epochs when 1).

    Returns
    -------
    pipe : Pipeline
        Unfitted ``LogMelTransformer`` then ``EmotionEmbeddingClassifier``.
    """
    pipe = default_pipeline(random_state=random_state, verbose=verbose)
    params = {_qualify(key): value for key, value in (params or {}).items()}
    valid = sorted(pipe.get_params(deep=True))
    unknown = [key for key in params if key not in valid]
    if unknown:
        names = [key for key in valid if key.startswith(("clf__", "mel__"))]
        raise CLIError(
            f"unknown parameter {unknown[0].split('__', 1)[1]!r} (as {unknown[0]!r})."
            f" Classifier parameters: "
            f"{', '.join(k[5:] for k in names if k.startswith('clf__'))}; "
            f"log-mel parameters, prefixed with 'mel__': "
            f"{', '.join(k[5:] for k in names if k.startswith('mel__'))}."
        )
    pipe.set_params(**params)
    for _, step in pipe.steps:
        try:
            step._validate_params()
            resolve_device(step.device)  # before any work, as the mel step's
        except ValueError as exc:
            raise CLIError(f"invalid parameter: {exc}") from exc
    return pipe


def _qualify(key):
    return key if key.startswith(("clf__", "mel__")) else f"clf__{key}"


def _parse_value(text):
    """``6`` -> 6, ``0.5`` -> 0.5, ``null`` -> None, ``true`` -> True, else str."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_params(pairs, params_json):
    """Merge ``--params JSON`` and the repeated ``--param key=value`` options.

    ``--param`` wins over ``--params`` for a key given by both.
    """
    params = {}
    if params_json is not None:
        try:
            loaded = json.loads(params_json)
        except json.JSONDecodeError as exc:
            raise CLIError(
                f"--params must be a JSON object such as "
                f'\'{{"n_layers": 6, "width": 16}}\'; could not parse '
                f"{params_json!r}: {exc.msg}."
            ) from exc
        if not isinstance(loaded, dict):
            raise CLIError(
                f"--params must be a JSON object, got {type(loaded).__name__} "
                f"{params_json!r}."
            )
        params.update(loaded)
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CLIError(
                f"--param expects key=value (for example --param n_layers=6), "
                f"got {pair!r}."
            )
        params[key.strip()] = _parse_value(value.strip())
    return params


# ----------------------------------------------------------------- datasets


def load_dataset(name, path, speakers=None):
    """Paths, labels and speaker groups (or None) of a corpus; with
    ``speakers``, of those RAVDESS actors or IEMOCAP sessions only.

    Returns
    -------
    X : list of str
        Audio file paths.
    y : ndarray of str
        Emotion labels.
    groups : ndarray or None
        RAVDESS actors, IEMOCAP sessions, or None for a folder.
    group_name : str or None
        ``"actor"``, ``"session"`` or None.
    """
    from .datasets import load_emotion_folder, load_iemocap, load_ravdess

    try:
        if name == "ravdess":
            bunch = load_ravdess(path, actors=speakers)
            groups, group_name = bunch.actor, "actor"
        elif name == "iemocap":
            bunch = load_iemocap(path, sessions=speakers)
            groups, group_name = bunch.session, "session"
        else:
            if speakers is not None:
                raise CLIError(
                    "--speakers needs a corpus that names its speakers "
                    "(--dataset ravdess or iemocap); a folder corpus does not."
                )
            bunch = load_emotion_folder(path)
            groups, group_name = None, None
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from exc
    y = np.asarray(bunch.target)
    emotions = np.unique(y)
    if len(emotions) < 2:  # checked before any spectrogram is computed
        raise CLIError(
            f"{str(path)!r} holds a single emotion ({str(emotions[0])!r}, {len(y)} "
            "clips); training needs clips of at least two emotions."
        )
    return list(bunch.data), y, groups, group_name


# --------------------------------------------------------------- protocols


def make_evaluations(protocol, dataset, *, y, groups, n_splits, random_state):
    """The evaluations of a protocol: a list of ``(name, splitter, use_groups)``.

    ``paper``: :func:`~sklearn_tser.evaluation.paper_cv` (``n_splits`` folds, 10
    by default) and :func:`~sklearn_tser.evaluation.paper_split`, speakers
    mixed, as in the paper. ``speaker``:
    :func:`~sklearn_tser.evaluation.speaker_cv`, folds grouped by actor
    (RAVDESS, ``n_splits`` folds, 6 by default) or one fold per session
    (IEMOCAP); the same folds as the benchmarks.
    """
    n_min = int(np.unique(y, return_counts=True)[1].min())
    if protocol == "paper":
        k = 10 if n_splits is None else n_splits
        if k < 2:
            raise CLIError(f"--n-splits must be 2 or more, got {k}.")
        if k > n_min:
            raise CLIError(
                f"--n-splits {k} is more than the {n_min} clips of the smallest "
                f"emotion; use --n-splits {max(2, n_min)} or fewer."
            )
        split = paper_split(random_state=random_state)
        try:  # scikit-learn's own check of a stratified split of these clips
            next(split.split(np.zeros((len(y), 1)), y))
        except ValueError as exc:
            raise CLIError(
                f"the 70/30 split of --protocol paper cannot hold every emotion "
                f"on both sides with {len(y)} clips of {len(np.unique(y))} "
                f"emotions ({exc}); evaluate on more clips."
            ) from exc
        return [
            (f"{k}-fold CV", paper_cv(k, random_state=random_state), False),
            ("70/30 split", split, False),
        ]
    if groups is None:
        raise CLIError(
            f"--protocol speaker needs the speaker of every clip, which a "
            f"{dataset!r} dataset does not provide. Use --protocol paper, or "
            "arrange your clips by speaker and split them yourself (see the "
            "example plot_own_folder.py)."
        )
    n_groups = len(np.unique(groups))
    if dataset == "iemocap":
        if n_splits is not None and n_splits != n_groups:
            raise CLIError(
                f"IEMOCAP's speaker protocol is leave-one-session-out: "
                f"{n_groups} folds for the {n_groups} sessions; --n-splits "
                f"{n_splits} does not apply."
            )
        return [("leave-one-session-out", speaker_cv(n_groups), True)]
    if n_groups < 2:
        raise CLIError(
            f"--protocol speaker needs clips of at least 2 speakers; these are all "
            f"of one ({groups[0]})."
        )
    # By default 6 folds (the benchmark's), or one per speaker when fewer.
    k = min(6, n_groups) if n_splits is None else n_splits
    if not 2 <= k <= n_groups:
        raise CLIError(
            f"--n-splits must be from 2 to the number of speakers ({n_groups}), "
            f"got {k}."
        )
    name = f"{k}-fold CV by {'actor' if dataset == 'ravdess' else 'speaker'}"
    return [(name, speaker_cv(k), True)]


# -------------------------------------------------------------- evaluation


def _progress(message):
    print(message, flush=True)


def run_evaluation(name, splitter, clf, S, y, groups, *, use_groups):
    """Cross-validate ``clf`` with scikit-learn's ``cross_validate``.

    Parameters
    ----------
    name : str
        Name of the evaluation, printed.
    splitter : cross-validation splitter
        Yields the train and test indices.
    clf : EmotionEmbeddingClassifier
        Unfitted classifier, cloned in every fold.
    S : ndarray of shape (n_clips, n_mels, n_frames)
        Spectrograms of all the clips.
    y : ndarray of shape (n_clips,)
        Labels.
    groups : ndarray of shape (n_clips,) or None
        Speakers (sessions), for the grouped splitters.
    use_groups : bool
        Whether the splitter groups the clips by ``groups``. ``fit`` gets the
        training clips' groups whenever they are known: early stopping (with
        ``validation_fraction > 0``) then validates on held-out speakers, and
        ``speaker_adversarial`` needs them; predictions get the test clips'
        groups (read by the settings of ``reads_speakers``).

    Returns
    -------
    result : dict
        ``name``, ``classes`` and ``folds`` (a list of dicts: ``train``,
        ``test`` indices, ``pred``, ``proba``, ``scores``, ``seconds``,
        ``model``).
    """
    split_groups = groups if use_groups else None  # splitters that ignore them warn
    n_folds = splitter.get_n_splits(S, y, split_groups)
    _progress(f"\n{name} ({len(y)} clips):")
    with warnings.catch_warnings():
        # cross_validate's scorer predicts without the speakers, which
        # standardize="group" warns of; the folds are scored below, with them.
        warnings.simplefilter("ignore", MissingGroupsWarning)
        cv = cross_validate(
            clf,
            S,
            y,
            groups=split_groups,
            cv=splitter,
            params=None if groups is None else {"groups": groups},
            return_estimator=True,
            return_indices=True,
            error_score="raise",
        )
    folds = []
    for k, model in enumerate(cv["estimator"]):
        train, test = cv["indices"]["train"][k], cv["indices"]["test"][k]
        # argmax of predict_proba is predict: a positive scale of the cosines.
        test_groups = None if groups is None else groups[test]
        proba = model.predict_proba(S[test], groups=test_groups)
        pred = model.classes_[np.argmax(proba, axis=1)]
        scores = _scores(y[test], pred, proba, model.classes_)
        seconds = float(cv["fit_time"][k] + cv["score_time"][k])
        folds.append(
            {
                "train": train,
                "test": test,
                "pred": pred,
                "proba": proba,
                "scores": scores,
                "seconds": seconds,
                "model": model,
            }
        )
        line = "  ".join(f"{m} {scores[m]:.3f}" for m in _SCORE_NAMES)
        _progress(
            f"  [{k + 1}/{n_folds}] {line}  (train {len(train)}, test {len(test)}, "
            f"{seconds:.1f} s)"
        )
    return {"name": name, "folds": folds, "classes": folds[0]["model"].classes_}


def _scores(y_true, y_pred, proba, classes):
    scores = {name: float(fn(y_true, y_pred)) for name, _, fn in METRICS}
    scores["ECE"] = expected_calibration_error(y_true, proba, classes=classes)
    return scores


def _summary_table(results):
    header = f"{'evaluation':<28}" + "".join(f"{m:>18}" for m in _SCORE_NAMES)
    lines = [header, "-" * len(header)]
    for result in results:
        row = f"{result['name']:<28}"
        for m in _SCORE_NAMES:
            values = np.array([f["scores"][m] for f in result["folds"]])
            cell = (
                f"{values.mean():.3f} ± {values.std():.3f}"
                if len(values) > 1
                else f"{values[0]:.3f}"
            )
            row += f"{cell:>18}"
        lines.append(row)
    return "\n".join(lines)


def _pooled(result, y):
    """True and predicted labels of every test clip of every fold."""
    true = np.concatenate([y[f["test"]] for f in result["folds"]])
    pred = np.concatenate([f["pred"] for f in result["folds"]])
    return true, pred


def _confusion_table(y_true, y_pred, labels):
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    names = [str(label) for label in labels]
    width = max(8, *(len(n) for n in names)) + 1
    lines = [
        "rows: true emotion, columns: predicted emotion",
        " " * width + "".join(f"{n:>{width}}" for n in names),
    ]
    for name, row in zip(names, cm, strict=True):
        lines.append(f"{name:>{width}}" + "".join(f"{v:>{width}d}" for v in row))
    return "\n".join(lines)


def report(results, y):
    """Print the summary table and each evaluation's pooled confusion matrix."""
    print("\nScores (mean ± std over folds):")
    print(_summary_table(results))
    print(
        "WA: accuracy; UA: balanced accuracy (mean recall); F1: macro F1; ECE: "
        "expected calibration error of predict_proba (0 is calibrated)."
    )
    for result in results:
        true, pred = _pooled(result, y)
        print(f"\nConfusion matrix, {result['name']} (all test clips):")
        print(_confusion_table(true, pred, result["classes"]))


# ------------------------------------------------------------------ outputs


def _use_agg():
    """Draw off-screen; returns pyplot or None when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        print(
            "matplotlib is not installed: no figures written "
            "(pip install 'sklearn-tser[plots]').",
            file=sys.stderr,
        )
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _slug(text):
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")


def write_figures(
    results, S, y, out, *, groups=None, random_state=0, embeddings=("pca",)
):
    """Confusion matrices, centroid angles and embedding plots as PNG files.

    The embedding and angle plots show the model of the last fold of the last
    evaluation, and the embeddings of that fold's test clips (clips the model
    never saw), embedded with their speakers ``groups`` as they were scored.
    """
    plt = _use_agg()
    if plt is None:
        return []
    from sklearn.metrics import ConfusionMatrixDisplay

    from .plotting import CentroidAnglesDisplay, EmbeddingDisplay

    written = []

    def save(disp, filename):
        path = out / filename
        disp.figure_.savefig(path, dpi=120)
        plt.close(disp.figure_)
        written.append(path)

    for result in results:
        true, pred = _pooled(result, y)
        fig, ax = plt.subplots(figsize=(7, 6), layout="constrained")
        disp = ConfusionMatrixDisplay.from_predictions(
            true, pred, labels=result["classes"], ax=ax, xticks_rotation=45
        )
        ax.set_title(f"Confusion matrix, {result['name']} (all test clips)")
        disp.im_.colorbar.set_label("number of test clips")
        save(disp, f"confusion_matrix_{_slug(result['name'])}.png")

    last = results[-1]
    fold = last["folds"][-1]
    n_folds = len(last["folds"])
    where = f"{last['name']}, fold {n_folds}/{n_folds}"
    test = fold["test"]
    for projection in embeddings:
        name = {"pca": "PCA", "tsne": "t-SNE"}[projection]
        disp = EmbeddingDisplay.from_estimator(
            fold["model"],
            S[test],
            y[test],
            groups=None if groups is None else groups[test],
            projection=projection,
            random_state=random_state,
            title=f"Embeddings of held-out clips ({name})\n{where}",
        )
        save(disp, f"embeddings_{projection}.png")
    disp = CentroidAnglesDisplay.from_estimator(
        fold["model"], title=f"Angles between emotion centroids (degrees)\n{where}"
    )
    save(disp, "centroid_angles.png")
    return written


def write_predictions(results, y, filenames, path):
    """One CSV row per test clip and fold: labels and class probabilities."""
    classes = [str(c) for c in results[0]["classes"]]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["evaluation", "fold", "file", "true", "predicted"]
            + [f"proba_{c}" for c in classes]
        )
        for result in results:
            for k, fold in enumerate(result["folds"], start=1):
                for i, pred, proba in zip(
                    fold["test"], fold["pred"], fold["proba"], strict=True
                ):
                    writer.writerow(
                        [result["name"], k, filenames[i], y[i], pred]
                        + [f"{p:.6f}" for p in proba]
                    )
    return path


def write_scores(results, path):
    """One CSV row per fold: sizes, scores and time."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["evaluation", "fold", "n_train", "n_test"] + _SCORE_NAMES + ["seconds"]
        )
        for result in results:
            for k, fold in enumerate(result["folds"], start=1):
                writer.writerow(
                    [result["name"], k, len(fold["train"]), len(fold["test"])]
                    + [f"{fold['scores'][m]:.6f}" for m in _SCORE_NAMES]
                    + [f"{fold['seconds']:.2f}"]
                )
    return path


# ----------------------------------------------------------------- commands


def _spectrograms(mel, X):
    start = time.perf_counter()
    _progress(f"Computing log-mel spectrograms of {len(X)} clips ...")
    try:
        S = mel.fit_transform(X)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from exc
    if isinstance(S, list):  # mel__output="ragged": indexed as clips below
        ragged, S = S, np.empty(len(S), dtype=object)
        for i, clip in enumerate(ragged):
            S[i] = clip
        n_mels, n_frames = ragged[0].shape[0], max(c.shape[1] for c in ragged)
    else:
        n_mels, n_frames = S.shape[1:]
    _progress(
        f"  {n_mels} mel bands, up to {n_frames} frames per clip; computed "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return S


def cmd_demo(args):
    from .datasets import make_emotional_speech

    params = parse_params(args.param, args.params)
    pipe = build_pipeline(
        params, random_state=args.random_state, verbose=int(args.verbose)
    )
    clf = pipe.named_steps["clf"]
    n_splits = DEMO_N_SPLITS if args.n_splits is None else args.n_splits
    if not 2 <= n_splits <= 8:
        raise CLIError(f"--n-splits must be from 2 to 8 speakers, got {n_splits}.")
    networks = f" x {clf.n_networks} networks" if clf.n_networks > 1 else ""
    print(
        "sklearn-tser demo: SYNTHETIC speech-like clips (make_emotional_speech), "
        "not real speech.\n"
        f"{args.n_samples} clips of {DEMO_N_CLASSES} emotions from 8 synthetic "
        f"speakers; classifier: {clf.architecture}-{clf.n_layers}, width "
        f"{clf.width}, embedding {clf.embedding_dim}{networks}, up to "
        f"{clf.pretrain_epochs} "
        f"softmax + {clf.triplet_epochs} triplet epochs "
        f"({'the defaults' if not params else 'changed by --param'}).\n"
        f"Evaluation: {n_splits}-fold cross-validation by speaker (the test "
        "speakers are never heard in training).",
        flush=True,
    )
    start = time.perf_counter()
    bunch = make_emotional_speech(
        n_samples=args.n_samples,
        n_classes=DEMO_N_CLASSES,
        n_speakers=8,
        random_state=args.random_state,
    )
    y, groups = bunch.target, bunch.speaker
    n_speakers = len(np.unique(groups))  # the clips go to speakers in turn
    if n_speakers < n_splits:
        fewer = f", or --n-splits {n_speakers}" if n_speakers >= 2 else ""
        raise CLIError(
            f"--n-samples {args.n_samples} makes clips of {n_speakers} "
            f"speaker(s), fewer than the {n_splits} folds by speaker; use "
            f"--n-samples {DEMO_N_CLASSES * n_splits} or more{fewer}."
        )
    S = _spectrograms(pipe.named_steps["mel"], bunch.data)
    result = run_evaluation(
        f"{n_splits}-fold CV by speaker",
        speaker_cv(n_splits),
        clf,
        S,
        y,
        groups,
        use_groups=True,
    )
    report([result], y)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    written = write_figures(
        [result],
        S,
        y,
        out,
        groups=groups,
        random_state=args.random_state,
        embeddings=("pca",),
    )
    if written:
        print(f"\nWrote {', '.join(str(p) for p in written)}")
    print(f"Done in {time.perf_counter() - start:.0f} s.")
    return 0


def cmd_evaluate(args):
    if args.refit and args.output is None:
        raise CLIError("--refit saves a model, so it needs --output DIR.")
    params = parse_params(args.param, args.params)
    pipe = build_pipeline(
        params, random_state=args.random_state, verbose=int(args.verbose)
    )
    X, y, groups, group_name = load_dataset(args.dataset, args.data, args.speakers)
    check_speakers_known(pipe.named_steps["clf"], groups)
    evaluations = make_evaluations(
        args.protocol,
        args.dataset,
        y=y,
        groups=groups,
        n_splits=args.n_splits,
        random_state=args.random_state,
    )
    names, sizes = np.unique(y, return_counts=True)
    counts = ", ".join(f"{c} {n}" for c, n in zip(names, sizes, strict=True))
    speakers = f", {len(np.unique(groups))} {group_name}s" if groups is not None else ""
    print(f"{args.dataset}: {len(y)} clips{speakers} ({counts})", flush=True)
    out = None if args.output is None else Path(args.output)
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file of that name, say
            raise CLIError(
                f"cannot make the output folder {str(out)!r}: {exc}"
            ) from exc
        _model_path(out / "model.safetensors")  # checked before the folds
    start = time.perf_counter()
    S = _spectrograms(pipe.named_steps["mel"], X)
    clf = pipe.named_steps["clf"]
    results = [
        run_evaluation(name, splitter, clf, S, y, groups, use_groups=use)
        for name, splitter, use in evaluations
    ]
    report(results, y)
    if out is not None:
        written = [
            write_predictions(results, y, X, out / "predictions.csv"),
            write_scores(results, out / "scores.csv"),
        ]
        written += write_figures(
            results,
            S,
            y,
            out,
            groups=groups,
            random_state=args.random_state,
            embeddings=("pca", "tsne"),
        )
        if args.refit:
            print("\nRefitting on all clips for the saved model ...", flush=True)
            model = clone(clf).fit(S, y, groups=groups)
        else:
            model = results[-1]["folds"][-1]["model"]
        fitted = Pipeline([("mel", pipe.named_steps["mel"]), ("clf", model)])
        written.append(_save_model(fitted, out / "model.safetensors"))
        print("\nWrote " + ", ".join(str(p) for p in written))
    print(f"Done in {time.perf_counter() - start:.0f} s.")
    return 0


def cmd_train(args):
    params = parse_params(args.param, args.params)
    pipe = build_pipeline(
        params, random_state=args.random_state, verbose=int(args.verbose)
    )
    output = _model_path(args.output)
    X, y, groups, group_name = load_dataset(args.dataset, args.data, args.speakers)
    print(
        f"{args.dataset}: {len(y)} clips, {len(np.unique(y))} emotions "
        f"({', '.join(map(str, np.unique(y)))})",
        flush=True,
    )
    check_speakers_known(pipe.named_steps["clf"], groups)
    start = time.perf_counter()
    S = _spectrograms(pipe.named_steps["mel"], X)
    print("Training ...", flush=True)
    # Early stopping validates on held-out speakers when they are known.
    pipe.named_steps["clf"].fit(S, y, groups=groups)
    path = _save_model(pipe, output)
    print(f"Saved the model to {path} ({time.perf_counter() - start:.0f} s).")
    return 0


def _audio_paths(paths):
    """The audio files named: files as given, folders by the audio files
    anywhere below them (sorted); a missing path is an error."""
    from .datasets._folder import audio_files

    files = []
    for p in map(Path, paths):
        if p.is_dir():
            try:
                found = audio_files(p)
            except ValueError as exc:  # a broken link in the folder
                raise CLIError(str(exc)) from exc
            if not found:
                raise CLIError(f"folder {str(p)!r} holds no audio file.")
            files += [str(f) for f in found]
        elif p.exists():
            files.append(str(p))
        else:
            raise CLIError(f"audio file {str(p)!r} does not exist.")
    return files


def cmd_predict(args):
    model = _load_model(args.model)
    if not (hasattr(model, "predict_proba") and hasattr(model, "classes_")):
        raise CLIError(
            f"{args.model!r} does not hold a fitted classifier; write one with "
            f"'{PROG} train'."
        )
    if not isinstance(model, Pipeline):
        raise CLIError(
            f"{args.model!r} holds a bare {type(model).__name__}, which reads "
            "spectrograms, not audio files; save a Pipeline of LogMelTransformer "
            f"and the classifier (as '{PROG} train' does)."
        )
    files = _audio_paths(args.files)
    # Each file is decoded alone first, so that one unreadable file is reported
    # and the others are still labelled (the model reads the paths again, and
    # so names them in its warnings).
    sr = getattr(model.steps[0][1], "sr", 16000)
    readable = []
    for f in files:
        try:  # decoded and checked as the model will (NaN samples, say)
            check_audio([f], sr=sr)
            readable.append(f)
        except ValueError as exc:  # FileNotFoundError included
            # The file is named here; "Clip 0" would count the wrong list.
            why = str(exc)
            for prefix in (f"Clip 0 ({str(f)!r}) ", "Clip 0: "):
                why = why.removeprefix(prefix)
            print(f"{PROG} predict: could not read {f}: {why}", file=sys.stderr)
    if not readable:
        raise CLIError("none of the audio files could be read.")
    failed, files = len(files) - len(readable), readable
    if reads_speakers(model[-1]):
        print(
            f"{PROG} predict: this model normalises each speaker's clips "
            f"together; the {len(files)} files are taken as one speaker (run "
            "predict once per speaker).",
            file=sys.stderr,
        )
    try:
        with warnings.catch_warnings():  # said above, in the command's terms
            warnings.simplefilter("ignore", MissingGroupsWarning)
            proba = model.predict_proba(files)
    except ValueError as exc:
        raise CLIError(str(exc)) from exc
    classes = [str(c) for c in model.classes_]
    labels = [classes[k] for k in np.argmax(proba, axis=1)]
    if args.json:
        rows = [
            {
                "file": str(f),
                "label": label,
                "probabilities": {
                    c: round(float(p), 6) for c, p in zip(classes, row, strict=True)
                },
            }
            for f, label, row in zip(files, labels, proba, strict=True)
        ]
        print(json.dumps(rows, indent=2))
        return 1 if failed else 0
    file_width = max(4, *(len(str(f)) for f in files))
    label_width = max(7, *(len(c) for c in classes))
    col = max(6, *(len(c) for c in classes)) + 2
    print(
        f"{'file':<{file_width}}  {'emotion':<{label_width}}"
        + "".join(f"{c:>{col}}" for c in classes)
    )
    for f, label, row in zip(files, labels, proba, strict=True):
        print(
            f"{str(f):<{file_width}}  {label:<{label_width}}"
            + "".join(f"{p:>{col}.3f}" for p in row)
        )
    if failed:
        print(
            f"{PROG} predict: {failed} of {failed + len(files)} files "
            "could not be read (above); the others are labelled.",
            file=sys.stderr,
        )
    return 1 if failed else 0


# ------------------------------------------------------------------- parser


def _add_model_options(parser):
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a classifier parameter, e.g. --param n_layers=6 (repeatable; "
        "values are read as JSON, else as text); prefix log-mel parameters with "
        "'mel__', e.g. --param mel__n_mels=40",
    )
    parser.add_argument(
        "--params",
        metavar="JSON",
        help="classifier parameters as a JSON object, e.g. '{\"width\": 16}'",
    )
    parser.add_argument(
        "--random-state",
        type=int,
        default=0,
        metavar="SEED",
        help="seed of the splits and of the classifier (default: 0)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=1,
        help="progress bars over the training epochs of each fit are drawn by "
        "default; -v adds a line per epoch with the losses",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_const",
        const=0,
        dest="verbose",
        help="no progress bars",
    )


def _add_data_options(parser):
    parser.add_argument(
        "--dataset",
        required=True,
        choices=DATASETS,
        help="corpus layout: RAVDESS (Actor_XX folders), IEMOCAP "
        "(IEMOCAP_full_release), or a folder with one sub-folder of clips per "
        "emotion",
    )
    parser.add_argument(
        "--data", required=True, metavar="PATH", help="folder of the corpus"
    )
    parser.add_argument(
        "--speakers",
        "--actors",
        nargs="+",
        type=_positive_int,
        metavar="N",
        help="use only these RAVDESS actors (1-24) or IEMOCAP sessions (1-5), "
        "e.g. to try the command on a few speakers",
    )


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def build_parser():
    """The argument parser of ``sklearn-tser``."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Speech emotion recognition with triplet-loss emotion "
        "embeddings (Kumar et al., ICPR 2020).",
        epilog=f"Run '{PROG} COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        help="train and cross-validate the default pipeline on synthetic clips",
        description="Cross-validate the default pipeline by speaker on synthetic "
        "speech-like clips, print the scores and write three figures (PNG): the "
        "confusion matrix, the embeddings and the angles between the emotion "
        "centroids.",
    )
    demo.add_argument(
        "--output",
        default="sklearn_tser_output/demo",
        metavar="DIR",
        help="folder of the figures (default: ./sklearn_tser_output/demo)",
    )
    demo.add_argument(
        "--n-samples",
        type=_positive_int,
        default=DEMO_N_SAMPLES,
        metavar="N",
        help=f"number of synthetic clips (default: {DEMO_N_SAMPLES})",
    )
    demo.add_argument(
        "--n-splits",
        type=_positive_int,
        metavar="K",
        help=f"number of folds (default: {DEMO_N_SPLITS})",
    )
    _add_model_options(demo)
    demo.set_defaults(func=cmd_demo)

    evaluate = sub.add_parser(
        "evaluate",
        help="cross-validate on RAVDESS, IEMOCAP or a folder of clips",
        description="Cross-validate the pipeline on a corpus and print WA, UA "
        "and macro F1 per fold and overall, and the confusion matrix.",
    )
    _add_data_options(evaluate)
    evaluate.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="speaker",
        help="'paper': stratified 10-fold CV and a 70/30 split, speakers mixed "
        "(as in the paper; optimistic); 'speaker': folds grouped by actor "
        "(RAVDESS) or leave-one-session-out (IEMOCAP) (default: speaker)",
    )
    evaluate.add_argument(
        "--n-splits",
        type=_positive_int,
        metavar="K",
        help="number of folds (default: 10 for paper, 6 for RAVDESS by actor)",
    )
    evaluate.add_argument(
        "--output",
        metavar="DIR",
        help="write predictions.csv, scores.csv, the figures (PNG) and the "
        "model of the last fold (model.safetensors) to DIR",
    )
    evaluate.add_argument(
        "--refit",
        action="store_true",
        help="with --output, save a model refitted on all clips instead",
    )
    _add_model_options(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    train = sub.add_parser(
        "train",
        help="fit the pipeline on a corpus and save it",
        description="Fit the pipeline on every clip of a corpus and save it.",
    )
    _add_data_options(train)
    train.add_argument(
        "-o",
        "--output",
        default="model.safetensors",
        metavar="MODEL",
        help="model file to write, read by sklearn_tser.load (default: "
        "model.safetensors)",
    )
    _add_model_options(train)
    train.set_defaults(func=cmd_train)

    predict = sub.add_parser(
        "predict",
        help="label audio files with a saved model",
        description="Print the emotion and the class probabilities of each audio file.",
    )
    predict.add_argument("model", metavar="MODEL", help="model file from 'train'")
    predict.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="audio files, or folders of them (searched recursively)",
    )
    predict.add_argument(
        "--json", action="store_true", help="print JSON instead of a table"
    )
    predict.set_defaults(func=cmd_predict)
    return parser


def main(argv=None):
    """Run ``sklearn-tser`` with ``argv`` (``sys.argv[1:]`` when None).

    Returns
    -------
    status : int
        0 on success, 2 on a usage or input error (also the status of argparse's
        own errors, which exit through ``SystemExit``), 130 when interrupted
        (Ctrl-C): then no score is reported and no model is written.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"\n{PROG} {args.command}: interrupted; no scores reported and no "
            "model written.",
            file=sys.stderr,
        )
        return 130
