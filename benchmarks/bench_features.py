"""Feature-extraction throughput: LogMelTransformer against a per-clip librosa loop.

Both compute the same log-mel spectrograms (64 mels, 25 ms window, 10 ms hop)
of the 1440 RAVDESS speech clips, decoded once beforehand, in the same run.

    python benchmarks/bench_features.py [--data ../shared/data/ravdess] [--quick]
"""

import argparse
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


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), float(np.median(times))


def fft_only(clips, tr):
    """The Fourier transforms alone, in the transformer's chunks: a lower bound."""
    # The same layout as the transformer's chunks: clips end to end, each
    # centre-padded and rounded up to whole hops.
    half = tr.n_fft // 2
    regions = tr._regions(np.array([len(c) for c in clips]))
    padded = [
        np.pad(c, (half, r - len(c) - half))
        for c, r in zip(clips, regions, strict=True)
    ]
    signal = np.concatenate(padded)
    n_fft, hop = tr.n_fft, tr.hop_length
    windows = torch.from_numpy(signal).unfold(0, n_fft, hop).contiguous()
    _, chunk = tr._chunk_limits(torch.device("cpu"))  # frames per chunk of "auto"

    def run():
        with torch.inference_mode():
            for a in range(0, len(windows), chunk):
                torch.fft.rfft(windows[a : a + chunk])

    return run


def run(data, quick=False):
    files = sorted(Path(data).glob("Actor_*/*.flac"))
    if quick:
        files = files[:120]
    clips = [sf.read(f, dtype="float32")[0] for f in files]
    tr = LogMelTransformer()
    tr.transform(clips[:8])  # warm-up: import, allocator, filter bank
    librosa_loop(clips[:8], tr)
    repeats = 1 if quick else 3
    ours = best_of(lambda: tr.transform(clips), repeats)
    ref = best_of(lambda: librosa_loop(clips, tr), repeats)
    floor = best_of(fft_only(clips, tr), repeats)
    seconds = sum(len(c) for c in clips) / tr.sr
    return {
        "n_clips": len(clips),
        "audio_seconds": seconds,
        "threads": torch.get_num_threads(),
        "repeats": repeats,
        "ours_s": ours[0],
        "librosa_s": ref[0],
        "fft_only_s": floor[0],
    }


def table(r):
    rows = [
        ("per-clip librosa loop", r["librosa_s"]),
        ("LogMelTransformer (torch, batched)", r["ours_s"]),
        ("lower bound: the FFTs alone (torch, same chunks)", r["fft_only_s"]),
    ]
    lines = [
        f"Log-mel features of {r['n_clips']} RAVDESS clips "
        f"({r['audio_seconds']:.0f} s of audio), torch threads: {r['threads']}, "
        f"best of {r['repeats']} runs each",
        "",
        "| method | seconds | clips/s | speed-up |",
        "|---|---:|---:|---:|",
    ]
    for name, s in rows:
        lines.append(
            f"| {name} | {s:.2f} | {r['n_clips'] / s:.0f} | {r['librosa_s'] / s:.1f}x |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, type=Path)
    parser.add_argument("--quick", action="store_true", help="120 clips, 1 repeat")
    args = parser.parse_args(argv)
    result = run(args.data, args.quick)
    print(table(result))
    return result


if __name__ == "__main__":
    main()
