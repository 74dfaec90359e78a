"""Memory and time of the pipeline at scale: on-disk store, ragged and padded.

A synthetic corpus with IEMOCAP's length distribution (log-normal, mean about
4.5 s, one clip of 35 s, the longest IEMOCAP turns) is written as 16 kHz FLAC
files to a temporary folder. For each corpus size N, the pipeline runs from
the file paths, in fresh processes, three ways:

- ``store``: ``LogMelTransformer.transform_to_store`` writes the spectrograms
  to disk a chunk at a time; the classifier fits (a few epochs) and predicts
  from the store. Each stage is its own process (as one would run them), and
  its peak RSS is its own.
- ``ragged``: ``LogMelTransformer(output="ragged")`` in memory, then fit and
  predict, in one process: its peaks are high-water marks, so the fit and
  predict peaks include the spectrograms held since the features.
- ``padded``: the same with the NaN-padded array, the reference. It is skipped
  where the padded array alone would exceed a quarter of this machine's memory.

For each: peak RSS (``ru_maxrss``) of each stage, the spectrograms' bytes per
clip (store file, ragged arrays, padded array) and wall time per clip. The
first row is the RSS of a process that only imported the library and torch.

    python benchmarks/bench_scale.py [--sizes 1000 5000 20000] [--epochs 2]
        [--output docs/scale_results.md] [--quick]
"""

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SR = 16000
EMOTIONS = ("angry", "happy", "neutral", "sad")
MEAN_SECONDS, SIGMA, LONGEST_SECONDS = 4.5, 0.6, 35.0


# ------------------------------------------------------------------ corpus


def write_corpus(folder, n, seed=0):
    """``n`` FLAC files of log-normal lengths, a weak emotion cue each (a
    tone whose pitch depends on the label, in noise); returns paths, labels."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    mu = np.log(MEAN_SECONDS) - SIGMA**2 / 2  # mean of the log-normal: 4.5 s
    seconds = np.clip(rng.lognormal(mu, SIGMA, n), 0.5, LONGEST_SECONDS)
    seconds[0] = LONGEST_SECONDS  # in every size N
    labels = rng.integers(len(EMOTIONS), size=n)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (s, k) in enumerate(zip(seconds, labels, strict=True)):
        t = np.arange(int(s * SR)) / SR
        tone = 0.1 * np.sin(2 * np.pi * (150 + 60 * k) * t)
        clip = tone + 0.05 * rng.standard_normal(len(t))
        path = folder / f"clip{i:06d}.flac"
        sf.write(path, clip.astype(np.float32), SR, subtype="PCM_16")
        paths.append(str(path))
    return paths, [EMOTIONS[k] for k in labels], seconds


# ------------------------------------------------------------------ stages


def rss_mib():
    """Peak RSS of this process so far, MiB (ru_maxrss is KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def child(args):
    """One run in this (fresh) process; prints a JSON result."""
    import sklearn_tser
    from sklearn_tser import EmotionEmbeddingClassifier, LogMelTransformer

    corpus = json.loads(Path(args.corpus).read_text())
    paths, y = corpus["paths"][: args.n], np.array(corpus["labels"][: args.n])
    result = {"imports": rss_mib()}
    work = Path(args.workdir)
    params = {**json.loads(args.params), "verbose": 0}
    if args.method == "imports":
        print(json.dumps(result))
        return

    def stage(name, fn):
        start = time.perf_counter()
        out = fn()
        result[name] = {"s": time.perf_counter() - start, "rss": rss_mib()}
        return out

    if args.method == "store":
        store_dir = work / f"store{args.n}"
        if args.stage == "features":
            store = stage(
                "features",
                lambda: LogMelTransformer().transform_to_store(
                    paths, store_dir, overwrite=True, verbose=0
                ),
            )
            size = (store_dir / "spectrograms.f32").stat().st_size
            result["bytes"] = size + (store_dir / "index.json").stat().st_size
        elif args.stage == "fit":
            store = sklearn_tser.SpectrogramStore(store_dir)
            clf = stage(
                "fit", lambda: EmotionEmbeddingClassifier(**params).fit(store, y)
            )
            sklearn_tser.save(clf, work / model_name(args.n, params))
        else:
            store = sklearn_tser.SpectrogramStore(store_dir)
            clf = sklearn_tser.load(work / model_name(args.n, params))
            stage("predict", lambda: clf.predict(store))
    else:
        S = stage(
            "features", lambda: LogMelTransformer(output=args.method).transform(paths)
        )
        result["bytes"] = (
            S.nbytes if args.method == "padded" else sum(s.nbytes for s in S)
        )
        clf = stage("fit", lambda: EmotionEmbeddingClassifier(**params).fit(S, y))
        stage("predict", lambda: clf.predict(S))
    print(json.dumps(result))


def model_name(n, params):
    """The saved model of the store path, one per size and number of networks."""
    return f"model{n}-{params.get('n_networks', 'default')}"


def run_child(method, n, stage, args, corpus, params=None):
    cmd = [
        sys.executable,
        __file__,
        "--child",
        method,
        "--n",
        str(n),
        "--stage",
        stage,
        "--corpus",
        str(corpus),
        "--workdir",
        str(args.workdir),
        "--params",
        json.dumps({**classifier_params(args), **(params or {})}),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# The baseline beside the default ensemble: the paper's single network.
ONE = {"n_networks": 1}


def classifier_params(args):
    """The default classifier, trained for a few epochs only."""
    return {"pretrain_epochs": args.epochs, "triplet_epochs": 1}


def padded_bytes(seconds, n):
    """Bytes of the NaN-padded array of the first ``n`` clips (64 mel bands)."""
    frames = 1 + (seconds[:n] * SR).astype(int) // 160
    return n * 64 * int(frames.max()) * 4


# ------------------------------------------------------------------ report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--epochs", type=int, default=2, help="softmax epochs")
    parser.add_argument("--workdir", type=Path, help="default: a temporary folder")
    parser.add_argument("--output", type=Path, help="write the report here too")
    parser.add_argument("--quick", action="store_true", help="sizes 100 and 300")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.method = args.child
        return child(args)
    if args.quick:
        args.sizes = [100, 300]
    temporary = args.workdir is None
    args.workdir = Path(args.workdir or tempfile.mkdtemp(prefix="tser-scale-"))
    try:
        report = run(args)
    finally:
        if temporary:
            shutil.rmtree(args.workdir, ignore_errors=True)
    print(report)
    if args.output:
        args.output.write_text(report + "\n")


def run(args):
    import torch

    import sklearn_tser

    start = time.perf_counter()
    n_max = max(args.sizes)
    paths, labels, seconds = write_corpus(args.workdir / "audio", n_max)
    corpus = args.workdir / "corpus.json"
    corpus.write_text(json.dumps({"paths": paths, "labels": labels}))
    print(f"corpus of {n_max} files written in {time.perf_counter() - start:.0f} s")
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    imports = run_child("imports", 1, "-", args, corpus)["imports"]
    rows = []
    for n in sorted(args.sizes):
        for method in ("store", "ragged", "padded"):
            if method == "padded" and padded_bytes(seconds, n) > ram / 4:
                rows.append((n, method, None, padded_bytes(seconds, n)))
                continue
            if method == "store":
                result = {}
                for stage in ("features", "fit", "predict"):
                    result.update(run_child(method, n, stage, args, corpus))
                # The baseline: one network on the same store (its features).
                one = {"features": result["features"], "bytes": result["bytes"]}
                for stage in ("fit", "predict"):
                    one.update(run_child(method, n, stage, args, corpus, ONE))
                results = [(method, result), ("store, one network", one)]
            else:
                results = [(method, run_child(method, n, "-", args, corpus))]
            for label, result in results:
                rows.append((n, label, result, None))
                print(n, label, json.dumps(result), flush=True)
    total = seconds[:n_max].sum()
    lines = [
        "# Scale benchmark: memory and time from file paths",
        "",
        f"`python benchmarks/bench_scale.py --sizes {' '.join(map(str, args.sizes))}"
        f" --epochs {args.epochs}`",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, "
        f"{ram / 2**30:.0f} GiB RAM; Python {platform.python_version()}, torch "
        f"{torch.__version__}, sklearn-tser {sklearn_tser.__version__}. "
        f"Classifier: defaults with `{json.dumps(classifier_params(args))}`.",
        "",
        f"Corpus: {n_max} synthetic FLAC clips, log-normal lengths, mean "
        f"{seconds.mean():.2f} s, longest {seconds.max():.0f} s "
        f"({total / 3600:.1f} h); size N takes the first N clips. A process that "
        f"only imports sklearn_tser and torch peaks at {imports:.0f} MiB.",
        "",
        "Peak RSS in MiB; store: each stage in its own process; ragged and "
        "padded: one process, so fit and predict peaks include the "
        "spectrograms held since the features stage. Time per clip in ms. "
        f'"store, one network" fits and predicts with `{json.dumps(ONE)}` '
        "on the same store (the baseline; its features columns are the "
        "store's).",
        "",
        "| N | path | features peak | fit peak | predict peak | spectrogram "
        "bytes/clip | features ms/clip | fit ms/clip | predict ms/clip |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, method, r, skipped in rows:
        if r is None:
            lines.append(
                f"| {n} | {method} | skipped: the padded array alone would be "
                f"{skipped / 2**30:.1f} GiB | | | {skipped / n:.0f} | | | |"
            )
            continue
        lines.append(
            f"| {n} | {method} | {r['features']['rss']:.0f} | {r['fit']['rss']:.0f} "
            f"| {r['predict']['rss']:.0f} | {r['bytes'] / n:.0f} "
            f"| {1000 * r['features']['s'] / n:.2f} | {1000 * r['fit']['s'] / n:.2f} "
            f"| {1000 * r['predict']['s'] / n:.2f} |"
        )
    lines += ["", f"Total run: {(time.perf_counter() - start) / 60:.1f} min."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
