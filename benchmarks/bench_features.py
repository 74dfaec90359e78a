"""Feature-extraction throughput: LogMelTransformer against a per-clip librosa loop.

Both compute the same log-mel spectrograms (64 mels, 25 ms window, 10 ms hop)
of the 1440 RAVDESS speech clips, decoded once beforehand, in the same run.
Each is timed twice:

- warm: the best and the median of several calls in this process, after
  warm-up calls;
- first call: one call in a fresh Python process, after its imports and the
  decoding of the clips, which is what a user pays in a script.

    python benchmarks/bench_features.py [--data ../shared/data/ravdess] [--quick]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import torch

from sklearn_tser import LogMelTransformer

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess"


def librosa_loop(clips, tr):
    return [
        librosa.power_to_db(
            librosa.feature.melspectrogram(
                y=y,
                sr=tr.sr,
                n_fft=tr.n_fft,
                win_length=tr.win_length,
                hop_length=tr.hop_length,
                n_mels=tr.n_mels,
                fmin=tr.fmin,
            ),
            ref=1.0,
            top_db=tr.top_db,
        )
        for y in clips
    ]


def timed(fn, warmup, repeats):
    """(best, median) seconds of ``fn`` over ``repeats`` runs after ``warmup``."""
    times, result = [], None
    for _ in range(warmup + repeats):
        start = time.perf_counter()
        result = fn()  # kept until the next call returns, as a user keeps it
        times.append(time.perf_counter() - start)
    del result
    return min(times[warmup:]), float(np.median(times[warmup:]))


def load_clips(data, quick):
    files = sorted(Path(data).glob("Actor_*/*.flac"))
    return [sf.read(f, dtype="float32")[0] for f in files[: 120 if quick else None]]


def first_call(data, quick, method):
    """Seconds of the first call of ``method`` in a fresh process."""
    code = (
        f"import sys, time, json; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "import bench_features as b; "
        "from sklearn_tser import LogMelTransformer; "
        f"clips = b.load_clips({str(data)!r}, {quick}); tr = LogMelTransformer(); "
        f"fn = (lambda: tr.transform(clips)) if {method!r} == 'ours' else "
        "(lambda: b.librosa_loop(clips, tr)); "
        "t = time.perf_counter(); fn(); print(json.dumps(time.perf_counter() - t))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(data, quick=False):
    clips = load_clips(data, quick)
    tr = LogMelTransformer()
    warmup, repeats = (1, 1) if quick else (3, 5)
    results = {
        "librosa": timed(lambda: librosa_loop(clips, tr), 1, repeats),
        "ours": timed(lambda: tr.transform(clips), warmup, repeats),
        "librosa_first": first_call(data, quick, "librosa"),
        "ours_first": first_call(data, quick, "ours"),
    }
    return {
        "n_clips": len(clips),
        "audio_seconds": sum(len(c) for c in clips) / tr.sr,
        "threads": torch.get_num_threads(),
        "warmup": warmup,
        "repeats": repeats,
        **results,
    }


def table(r):
    lines = [
        f"Log-mel features of {r['n_clips']} RAVDESS clips "
        f"({r['audio_seconds']:.0f} s of audio), torch threads: {r['threads']}; "
        f"warm: {r['repeats']} timed calls after {r['warmup']} warm-up calls (1 for "
        "librosa); first call: one call in a fresh process, after its imports",
        "",
        "| method | first call s | warm best s | warm median s | clips/s (best) "
        "| speed-up, first call | speed-up, warm best | speed-up, warm median |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base_first = r["librosa_first"]
    base_best, base_median = r["librosa"]
    for name, key in (
        ("per-clip librosa loop (reference)", "librosa"),
        ("LogMelTransformer (torch)", "ours"),
    ):
        best, median = r[key]
        first = r[f"{key}_first"]
        lines.append(
            f"| {name} | {first:.2f} | {best:.3f} | {median:.3f} "
            f"| {r['n_clips'] / best:.0f} | {base_first / first:.1f}x "
            f"| {base_best / best:.1f}x | {base_median / median:.1f}x |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, type=Path)
    parser.add_argument(
        "--quick", action="store_true", help="120 clips, 1 warm-up and 1 timed run"
    )
    args = parser.parse_args(argv)
    result = run(args.data, args.quick)
    print(table(result))
    return result


if __name__ == "__main__":
    main()
