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

from sklearn_tser import LogMelTransformer, _kernels

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
    """(first call, best, median) seconds of ``fn`` over warm-up + timed runs."""
    times, result = [], None
    for _ in range(warmup + repeats):
        start = time.perf_counter()
        result = fn()  # kept until the next call returns, as a user keeps it
        times.append(time.perf_counter() - start)
    del result
    timed_runs = times[warmup:]
    return times[0], min(timed_runs), float(np.median(timed_runs))


def fft_only(clips, tr):
    """The Fourier transforms alone, in the transformer's chunks, of frames read
    from memory. Not a lower bound: inside the transformer, the fused kernels
    hand the FFT frames that are still in the caches, and it runs faster."""
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


def without_kernels(fn):
    """``fn`` on LogMelTransformer's pure-torch path (the fused C kernels off)."""

    def run():
        _kernels.ENABLED = False
        try:
            return fn()
        finally:
            _kernels.ENABLED = True

    return run


def run(data, quick=False):
    files = sorted(Path(data).glob("Actor_*/*.flac"))
    if quick:
        files = files[:120]
    clips = [sf.read(f, dtype="float32")[0] for f in files]
    tr = LogMelTransformer()
    tr.transform(clips[:8])  # import, filter bank, kernels' library
    librosa_loop(clips[:8], tr)
    # Warm-up runs on all clips: the first calls of a process map fresh memory
    # for the 195 MB output array, which on this VM costs 0.2-0.5 s a call for
    # the first 4-5 calls. The first call's time is reported as well.
    warmup, repeats = (1, 1) if quick else (5, 5)
    results = {
        "librosa": timed(lambda: librosa_loop(clips, tr), 1, repeats),
        "ours": timed(lambda: tr.transform(clips), warmup, repeats),
        "torch_only": timed(
            without_kernels(lambda: tr.transform(clips)), warmup, repeats
        ),
        "fft_only": timed(fft_only(clips, tr), 1, repeats),
    }
    return {
        "n_clips": len(clips),
        "audio_seconds": sum(len(c) for c in clips) / tr.sr,
        "threads": torch.get_num_threads(),
        "warmup": warmup,
        "repeats": repeats,
        "kernels": _kernels.load() is not None,
        **results,
    }


def table(r):
    fused = "fused C kernels + torch FFT" if r["kernels"] else "kernels NOT BUILT"
    rows = [
        ("per-clip librosa loop", "librosa"),
        (f"LogMelTransformer ({fused})", "ours"),
        ("LogMelTransformer, pure-torch path", "torch_only"),
        ("the FFTs alone (torch, same chunks, frames from memory)", "fft_only"),
    ]
    base_best, base_median = r["librosa"][1], r["librosa"][2]
    lines = [
        f"Log-mel features of {r['n_clips']} RAVDESS clips "
        f"({r['audio_seconds']:.0f} s of audio), torch threads: {r['threads']}; "
        f"{r['repeats']} timed runs each, after {r['warmup']} warm-up runs "
        "(1 for librosa and the FFTs)",
        "",
        "| method | first call s | best s | median s | clips/s | speed-up (best) "
        "| speed-up (median) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, key in rows:
        first, best, median = r[key]
        lines.append(
            f"| {name} | {first:.2f} | {best:.3f} | {median:.3f} "
            f"| {r['n_clips'] / best:.0f} | {base_best / best:.1f}x "
            f"| {base_median / median:.1f}x |"
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
