"""Robustness to rooms: the same fitted models scored on clean and on
reverberant test clips.

RAVDESS was recorded in one studio; a corpus recorded elsewhere brings its
rooms along. This script asks what a room does to a model trained on the
studio's clips, and whether training with ``reverberation`` (random rooms in
the mel power domain) helps there: each parameter set is fitted on a fold of
the protocols of ``benchmarks/ablate.py`` (the same folds, seeds and features
cache, so its clean scores are the screen's), then scored on the fold's test
clips as recorded and as heard in simulated rooms.

A room is simulated on the waveform, independently of the training's model
in the mel domain: each test clip is convolved with an impulse response of
its own, a unit direct sound followed, from the next sample on, by Gaussian
white noise under an exponential envelope whose power falls 60 dB in the
room's reverberation time (T60), scaled to the room's direct-to-reverberant
ratio (the energy of the direct sound over that of the tail), truncated at
1.5 T60 (the diffuse-tail model of synthetic room impulse responses, without
early reflections). The impulse responses are drawn from a generator seeded
by the clip's index, so every model hears the same rooms.

    python benchmarks/room_robustness.py [--configs JSON] [--protocols mixed]
        [--seeds 1] [--rooms 0.3:5 0.6:0 1.0:-3] [--output table.md]

``--configs`` is a file of ``{"name": {parameters}}`` as ablate.py reads
(default: ``reverberation=0``, then the defaults, which hear half of each
batch's crops in rooms of up to 0.5 s); the first set is the baseline that the
table's differences are taken from. Each room is ``T60_seconds:DRR_dB``. The
fitted models are kept in ``<cache>/rooms/`` (joblib), so new rooms are
scored without refitting.
"""

import argparse
import functools
import hashlib
import json
from pathlib import Path

import joblib
import numpy as np
from ablate import (
    DEFAULT_CACHE,
    DEFAULT_DATA,
    PROTOCOLS,
    cached_fits,
    features,
    fit_fold,
    fit_key,
    folds,
)
from scipy.signal import fftconvolve

from sklearn_tser._audio import load_audio
from sklearn_tser.datasets import load_ravdess
from sklearn_tser.evaluation import default_pipeline

SR = 16000
# Bumped when the room model changes, so that cached features are not reused.
ROOM_MODEL = 1
# The first set is the baseline that the table subtracts from the others.
DEFAULT_CONFIGS = {"no reverberation": {"reverberation": 0.0}, "defaults": {}}
DEFAULT_ROOMS = ("0.3:5", "0.6:0", "1.0:-3")


def impulse_response(t60, drr_db, rng, sr=SR):
    """A room's impulse response: 1, then a tail of white noise whose power
    decays 60 dB in ``t60`` seconds, with ``sum(tail ** 2) = 10 ** (-drr_db
    / 10)``; ``1 + round(1.5 * t60 * sr)`` samples."""
    t = np.arange(1, 1 + round(1.5 * t60 * sr)) / sr
    tail = rng.standard_normal(len(t)) * 10.0 ** (-3.0 * t / t60)  # amplitude
    tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / np.sum(tail**2))
    return np.concatenate([[1.0], tail])


def in_room(clip, t60, drr_db, seed):
    """``clip`` convolved with its room's impulse response, cut to its length."""
    h = impulse_response(t60, drr_db, np.random.default_rng(seed))
    return fftconvolve(clip, h)[: len(clip)].astype(np.float32)


def room_features(data, cache, clips, t60, drr_db, waves):
    """Default log-mel spectrograms of the clips ``clips`` in one room, cached
    (every clip's room drawn with its index as seed); ``waves()`` gives the
    clips' recordings, called only when the cache lacks the room."""
    mel = default_pipeline().named_steps["mel"]
    key = [str(Path(data).resolve()), [int(i) for i in clips], t60, drr_db]
    key += [SR, ROOM_MODEL, mel.get_params()]
    key = hashlib.sha256(json.dumps(key, default=str).encode()).hexdigest()[:16]
    path = Path(cache) / "rooms" / f"features-{key}.npy"
    if not path.exists():
        heard = [
            in_room(clip, t60, drr_db, seed=int(i))
            for i, clip in zip(clips, waves(), strict=True)
        ]
        S = mel.transform(heard)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, S)
    return np.load(path)


def fitted(S, y, actor, params, protocol, fold, seed, cache, log=print):
    """The model of a fold (as ablate.py fits it), kept on disk; a fit's
    time is logged."""
    key = fit_key(params, protocol, fold, seed)
    name = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = Path(cache) / "rooms" / f"model-{protocol}-{fold}-{seed}-{name}.joblib"
    if not path.exists():
        clf, _, _, fit_s = fit_fold(S, y, actor, params, protocol, fold, seed)
        log(f"fitted {params} on {protocol} fold {fold} seed {seed}: {fit_s:.0f} s")
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(clf, path)
    return joblib.load(path)


def run(configs, rooms, data, cache, protocols, seeds, log=print):
    """Scores (%) by set, then room (``"clean"`` first), each a list over
    protocols, folds and seeds in one order. A clean score is shown beside
    ablate.py's for the same fit where its cache has it."""
    S, y, actor = features(data, cache)
    paths = load_ravdess(data).data
    screened = cached_fits(cache)
    scores = {name: {"clean": []} for name in configs}
    for protocol in protocols:
        score_of = PROTOCOLS[protocol][1]
        for fold, (_, test) in enumerate(folds(protocol, y, actor)):

            @functools.cache
            def recordings(test=test):  # decoded once a fold, if at all
                return [load_audio(paths[i], sr=SR) for i in test]

            heard = {"clean": S[test]}
            for room in rooms:
                t60, drr_db = (float(v) for v in room.split(":"))
                heard[room] = room_features(data, cache, test, t60, drr_db, recordings)
            for seed in range(seeds):
                for name, params in configs.items():
                    clf = fitted(S, y, actor, params, protocol, fold, seed, cache, log)
                    for room, S_test in heard.items():
                        pred = clf.predict(S_test, groups=actor[test])
                        score = 100 * score_of(y[test], pred)
                        scores[name].setdefault(room, []).append(score)
                        log(
                            f"{name}, {protocol} fold {fold} seed {seed}, {room}: "
                            f"{score:.2f}"
                        )
                    record = screened.get(fit_key(params, protocol, fold, seed))
                    if record is not None:
                        score = 100 * record["score"]
                        log(f"  (ablate.py's score of this fit: {score:.2f})")
    return scores


def table(scores, protocols):
    rooms = list(next(iter(scores.values())))
    metrics = "/".join(sorted({PROTOCOLS[p][0] for p in protocols}))
    lines = [
        f"{metrics} % on the test clips of {', '.join(protocols)}, as recorded "
        "and in simulated rooms (T60 s : direct-to-reverberant ratio dB); mean "
        "over folds and seeds. A set's training rooms last at most its "
        "reverberation frames (0.01 s each at the default hop) at ratios of 0 "
        "to 10 dB: longer or more distant rooms lie outside them.",
        "",
        "| set | " + " | ".join(rooms) + " |",
        "|---|" + "---:|" * len(rooms),
    ]
    for name, by_room in scores.items():
        cells = " | ".join(f"{np.mean(by_room[r]):.2f}" for r in rooms)
        lines.append(f"| {name} | {cells} |")
    names = list(scores)
    for name in names[1:]:
        cells = []
        for r in rooms:
            d = np.array(scores[name][r]) - scores[names[0]][r]
            cells.append(f"{d.mean():+.2f} ({(d > 0).sum()} of {len(d)} ahead)")
        lines.append(f"| {name} - {names[0]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=Path, help="JSON: {name: {parameters}}")
    parser.add_argument("--rooms", nargs="+", default=list(DEFAULT_ROOMS))
    parser.add_argument("--data", default=DEFAULT_DATA, type=Path)
    parser.add_argument("--cache", default=DEFAULT_CACHE, type=Path)
    parser.add_argument(
        "--protocols", nargs="+", choices=["mixed", "actor"], default=["mixed"]
    )
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--output", type=Path, help="write the table here too")
    args = parser.parse_args(argv)
    configs = json.loads(args.configs.read_text()) if args.configs else DEFAULT_CONFIGS
    scores = run(configs, args.rooms, args.data, args.cache, args.protocols, args.seeds)
    text = table(scores, args.protocols)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
