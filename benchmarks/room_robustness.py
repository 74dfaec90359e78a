"""Robustness to rooms and noise: the same fitted models scored on clean,
reverberant and noisy test clips.

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

Noise is added on the waveform too, independently of the training's
``noise_snr`` (stationary noise, shaped like each crop's own spectrum or of a
random tilt over the bands, in the mel domain): ``white`` is Gaussian white
noise, ``babble`` the sum of ``BABBLE_TALKERS`` recordings of the fold's test
clips spoken by other actors than the clip's (each looped from a random sample
to the clip's length, at equal active power). The signal-to-noise ratio is
that of the clip's active power, the mean power of its non-silent intervals
(``librosa.effects.split`` at 40 dB under its peak, so that the pauses do not
count), to the noise's mean power. A clip's noise is drawn from a generator
seeded by its index.

    python benchmarks/room_robustness.py [--configs JSON] [--protocols mixed]
        [--seeds 1] [--rooms 0.3:5 0.6:0 1.0:-3] [--noises white:10 babble:5]
        [--output table.md]

``--configs`` is a file of ``{"name": {parameters}}`` as ablate.py reads
(default: ``reverberation=0``, then the defaults, which hear half of each
batch's crops in rooms of up to 0.5 s); the first set is the baseline that the
table's differences are taken from. Each room is ``T60_seconds:DRR_dB``, each
noise ``kind:SNR_dB`` (no noise unless asked). The fitted models are kept in
``<cache>/rooms/`` (joblib), so new rooms and noises are scored without
refitting.
"""

import argparse
import functools
import hashlib
import json
import math
from pathlib import Path

import joblib
import librosa
import numpy as np
from ablate import (
    DEFAULT_CACHE,
    DEFAULT_DATA,
    PROTOCOLS,
    cached_fits,
    features,
    fit_key,
    folds,
    kept_fit,
)
from scipy.signal import fftconvolve

from sklearn_tser._audio import load_audio
from sklearn_tser.datasets import load_ravdess
from sklearn_tser.evaluation import default_pipeline

SR = 16000
# Bumped when the room or the noise model changes, so that cached features
# are not reused.
ROOM_MODEL = 1
NOISE_MODEL = 1
NOISES = ("white", "babble")
BABBLE_TALKERS = 4
# The first set is the baseline that the table subtracts from the others.
DEFAULT_CONFIGS = {"no reverberation": {"reverberation": 0.0}, "defaults": {}}
DEFAULT_ROOMS = ("0.3:5", "0.6:0", "1.0:-3")


def read_condition(text):
    """A room ``"T60_seconds:DRR_dB"`` as ``("room", t60, drr_db)``, or a
    noise ``"kind:SNR_dB"`` as ``(kind, None, snr_db)``: the one reading of
    ``--rooms`` and ``--noises``. ``ValueError`` names what it cannot read (a
    T60 must be positive, every figure finite)."""
    first, sep, second = text.partition(":")
    try:
        second = float(second) if sep else math.nan
        if first in NOISES and math.isfinite(second):
            return first, None, second
        t60 = float(first)
        if 0 < t60 < math.inf and math.isfinite(second):
            return "room", t60, second
    except ValueError:
        pass
    raise ValueError(
        f"{text!r} is neither a room T60_SECONDS:DRR_DB (e.g. 0.6:0, a T60 "
        "over 0) nor a "
        f"noise KIND:SNR_DB with KIND one of {NOISES} (e.g. white:10)."
    )


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


def active_power(clip, top_db=40.0):
    """Mean power of ``clip``'s non-silent intervals (``librosa.effects.split``
    at ``top_db`` under its peak); of the whole clip when none is found."""
    intervals = librosa.effects.split(clip, top_db=top_db)
    if len(intervals):
        clip = np.concatenate([clip[start:stop] for start, stop in intervals])
    return float(np.mean(np.square(clip, dtype=np.float64)))


def babble(n_samples, talkers, rng):
    """The sum of ``talkers`` (recordings), each looped from a random sample to
    ``n_samples`` and brought to unit active power."""
    noise = np.zeros(n_samples)
    for talker in talkers:
        looped = np.resize(np.roll(talker, -int(rng.integers(len(talker)))), n_samples)
        noise += looped / np.sqrt(max(active_power(talker), np.finfo(float).tiny))
    return noise


def babble_talkers(index, actors, actor):
    """Positions in ``actors`` of the talkers of clip ``index``'s babble:
    ``BABBLE_TALKERS`` (or all there are) of the clips of another actor than
    ``actor``, drawn with the clip's index as seed."""
    others = np.flatnonzero(np.asarray(actors) != actor)
    if not len(others):
        raise ValueError(
            f"clip {index} has no clip of another actor to make babble of: "
            "give clips of two actors or more."
        )
    rng = np.random.default_rng([index, 1])
    return rng.choice(others, min(BABBLE_TALKERS, len(others)), replace=False)


def in_noise(clip, kind, snr_db, seed, talkers=()):
    """``clip`` plus noise of ``kind`` (``"white"``, or ``"babble"`` of the
    recordings ``talkers``) at ``snr_db`` of its active power
    (:func:`active_power`) over the noise's mean power."""
    rng = np.random.default_rng(seed)
    if kind == "white":
        noise = rng.standard_normal(len(clip))
    elif kind == "babble":
        noise = babble(len(clip), talkers, rng)
    else:
        raise ValueError(f"noise kind {kind!r} is not one of {NOISES}.")
    power = np.mean(np.square(noise))
    if power > 0:
        noise *= np.sqrt(active_power(clip) * 10.0 ** (-snr_db / 10.0) / power)
    return (clip + noise).astype(np.float32)


def _cached_features(cache, key, heard):
    """Default log-mel spectrograms of the recordings ``heard()`` returns,
    kept in ``<cache>/rooms/`` under a digest of ``key`` (with the feature
    parameters); ``heard`` is called only when the cache lacks them."""
    mel = default_pipeline().named_steps["mel"]
    key = hashlib.sha256(
        json.dumps(key + [mel.get_params()], default=str).encode()
    ).hexdigest()[:16]
    path = Path(cache) / "rooms" / f"features-{key}.npy"
    if not path.exists():
        S = mel.transform(heard())
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, S)
    return np.load(path)


def room_features(data, cache, clips, t60, drr_db, waves):
    """Default log-mel spectrograms of the clips ``clips`` in one room, cached
    (every clip's room drawn with its index as seed); ``waves()`` gives the
    clips' recordings, called only when the cache lacks the room."""
    key = [str(Path(data).resolve()), [int(i) for i in clips], t60, drr_db]
    return _cached_features(
        cache,
        key + [SR, ROOM_MODEL],
        lambda: [
            in_room(clip, t60, drr_db, seed=int(i))
            for i, clip in zip(clips, waves(), strict=True)
        ],
    )


def noise_features(data, cache, clips, actors, kind, snr_db, waves):
    """Default log-mel spectrograms of the clips ``clips`` (of ``actors``) in
    noise of ``kind`` at ``snr_db``, cached (every clip's noise drawn with its
    index as seed, a babble's talkers among the clips of other actors);
    ``waves()`` gives the clips' recordings, called only when the cache lacks
    them."""
    actors = np.asarray(actors)

    def heard():
        recordings = waves()
        out = []
        for clip, i, actor in zip(recordings, clips, actors, strict=True):
            talkers = ()
            if kind == "babble":
                picks = babble_talkers(int(i), actors, actor)
                talkers = [recordings[k] for k in picks]
            out.append(in_noise(clip, kind, snr_db, seed=int(i), talkers=talkers))
        return out

    key = [str(Path(data).resolve()), [int(i) for i in clips], kind, snr_db]
    key += [[int(a) for a in actors], SR, NOISE_MODEL, BABBLE_TALKERS]
    return _cached_features(cache, key, heard)


def fitted(S, y, actor, params, protocol, fold, seed, cache, log=print):
    """The model of a fold (as ablate.py fits it), kept in
    ``<cache>/rooms/``; a fit's time is logged."""
    directory = Path(cache) / "rooms"
    return joblib.load(
        kept_fit(S, y, actor, params, protocol, fold, seed, directory, log)
    )


def run(configs, rooms, data, cache, protocols, seeds, log=print, noises=()):
    """Scores (%) by set, then condition (``"clean"`` first, then the rooms,
    then the noises), each a list over protocols, folds and seeds in one
    order. A clean score is shown beside ablate.py's for the same fit where
    its cache has it."""
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
                _, t60, drr_db = read_condition(room)
                heard[room] = room_features(data, cache, test, t60, drr_db, recordings)
            for noise in noises:
                kind, _, snr_db = read_condition(noise)
                heard[noise] = noise_features(
                    data, cache, test, actor[test], kind, snr_db, recordings
                )
            for seed in range(seeds):
                for name, params in configs.items():
                    clf = fitted(S, y, actor, params, protocol, fold, seed, cache, log)
                    for condition, S_test in heard.items():
                        pred = clf.predict(S_test, groups=actor[test])
                        score = 100 * score_of(y[test], pred)
                        scores[name].setdefault(condition, []).append(score)
                        log(
                            f"{name}, {protocol} fold {fold} seed {seed}, "
                            f"{condition}: {score:.2f}"
                        )
                    record = screened.get(fit_key(params, protocol, fold, seed))
                    if record is not None:
                        score = 100 * record["score"]
                        log(f"  (ablate.py's score of this fit: {score:.2f})")
    return scores


def table(scores, protocols):
    conditions = list(next(iter(scores.values())))
    metrics = "/".join(sorted({PROTOCOLS[p][0] for p in protocols}))
    noisy = any(read_condition(c)[0] != "room" for c in conditions[1:])
    lines = [
        f"{metrics} % on the test clips of {', '.join(protocols)}, as recorded "
        "and in simulated rooms (T60 s : direct-to-reverberant ratio dB)"
        + (" or in noise (kind : signal-to-noise ratio dB)" if noisy else "")
        + "; mean over folds and seeds. A set's training rooms last at most its "
        "reverberation frames (0.01 s each at the default hop) at ratios of 0 "
        "to 10 dB: longer or more distant rooms lie outside them."
        + (
            " A set's training noise (noise_snr = s) is stationary, shaped "
            "like each crop's spectrum or of a random tilt over the bands "
            "(noise_spectrum), at s to s + 20 dB."
            if noisy
            else ""
        ),
        "",
        "| set | " + " | ".join(conditions) + " |",
        "|---|" + "---:|" * len(conditions),
    ]
    for name, by_condition in scores.items():
        cells = " | ".join(f"{np.mean(by_condition[c]):.2f}" for c in conditions)
        lines.append(f"| {name} | {cells} |")
    names = list(scores)
    for name in names[1:]:
        cells = []
        for r in conditions:
            d = np.array(scores[name][r]) - scores[names[0]][r]
            cells.append(f"{d.mean():+.2f} ({(d > 0).sum()} of {len(d)} ahead)")
        lines.append(f"| {name} - {names[0]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=Path, help="JSON: {name: {parameters}}")
    parser.add_argument("--rooms", nargs="*", default=list(DEFAULT_ROOMS))
    parser.add_argument("--noises", nargs="*", default=[], metavar="KIND:SNR_DB")
    parser.add_argument("--data", default=DEFAULT_DATA, type=Path)
    parser.add_argument("--cache", default=DEFAULT_CACHE, type=Path)
    parser.add_argument(
        "--protocols", nargs="+", choices=["mixed", "actor"], default=["mixed"]
    )
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--output", type=Path, help="write the table here too")
    args = parser.parse_args(argv)
    for option, texts, room in (
        ("--rooms", args.rooms, True),
        ("--noises", args.noises, False),
    ):
        for text in texts:
            try:
                is_room = read_condition(text)[0] == "room"
            except ValueError as error:
                parser.error(f"{option}: {error}")
            if is_room != room:
                parser.error(f"{option} was given {text!r}, which is not of its kind.")
    configs = json.loads(args.configs.read_text()) if args.configs else DEFAULT_CONFIGS
    scores = run(
        configs,
        args.rooms,
        args.data,
        args.cache,
        args.protocols,
        args.seeds,
        noises=args.noises,
    )
    text = table(scores, args.protocols)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
