"""GPU check: the default pipeline on CUDA, beside the CPU, in one script.

Run it once on a machine with a CUDA GPU (it takes a few minutes on one GPU):

1. log-mel features of the RAVDESS clips on CUDA and on the CPU: time, and the
   largest difference;
2. a few epochs of the default ``EmotionEmbeddingClassifier`` on CUDA (the
   time of a whole fit at that pace), then a whole default fit on the paper's
   70/30 split on CUDA (bfloat16 autocast): time, accuracy, and whether
   training converged (finite losses, the last epochs' loss well below the
   first);
3. the same fit on the CPU for a few epochs, to give the CPU time of a whole
   fit (per-epoch time x epochs), unless ``--cpu-fit-seconds`` gives a measured
   one (the 2-core figure of ``docs/benchmark_results.md``);
4. the CUDA-trained model saved with :func:`sklearn_tser.save`, loaded on the
   CPU with :func:`sklearn_tser.load`: its predictions against the CUDA ones.

It prints a markdown table, each row as soon as it is measured: a run stopped
at a time limit still says what it measured. ``--device cpu --quick`` runs
the same steps on a machine without a GPU, to check the script itself.

    python benchmarks/gpu_check.py [--data ../shared/data/ravdess]
        [--cpu-fit-seconds SECONDS] [--device cuda] [--quick]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from sklearn.base import clone

from sklearn_tser import load, save
from sklearn_tser._training import autocast_dtype, member_nets, networks_at_once
from sklearn_tser.datasets import load_ravdess
from sklearn_tser.evaluation import default_pipeline, paper_split

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess"


def _timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def _per_epoch(clf, device, X, y):
    """Seconds per epoch of ``clf`` on ``device``, from a fit of a few epochs
    (3 softmax, 1 triplet), and the seconds of a whole fit at that pace."""
    probe = clone(clf).set_params(
        device=device,
        pretrain_epochs=min(3, clf.pretrain_epochs),
        triplet_epochs=min(1, clf.triplet_epochs),
    )
    probe.fit(X, y)
    per_epoch = float(np.mean(probe.net_.history[:, "dur"]))
    # An ensemble's networks train networks_at_once at a time.
    at_once = networks_at_once(clf.n_jobs, clf.n_networks)
    rounds = -(-clf.n_networks // at_once)
    n_epochs = clf.pretrain_epochs + clf.triplet_epochs
    how = (
        f"{per_epoch:.2f} s per epoch x {n_epochs} epochs x {rounds}, "
        f"{clf.n_networks} network(s), {at_once} at a time"
    )
    return per_epoch * n_epochs * rounds, how


def run(data, device="cuda", cpu_fit_seconds=None, quick=False, report=print):
    """The checks, each row ``(check, value, notes)`` given to ``report`` as
    soon as it is measured (a run stopped early still says what it
    measured)."""

    def add(*row):
        report(row)

    bunch = load_ravdess(data, actors=range(1, 5) if quick else None)
    clips = [sf.read(f, dtype="float32")[0] for f in bunch.data]
    y = bunch.target
    mel, clf = default_pipeline(random_state=0).named_steps.values()
    if quick:
        clf.set_params(pretrain_epochs=4, triplet_epochs=2)

    # 1. Features.
    mel_dev = clone(mel).set_params(device=device)
    mel_dev.transform(clips[:8])  # warm-up: CUDA context, FFT plans
    S_dev, t_dev = _timed(lambda: mel_dev.transform(clips))
    S_cpu, t_cpu = _timed(lambda: mel.transform(clips))
    diff = float(np.nanmax(np.abs(S_dev - S_cpu)))
    add("log-mel features, CPU", f"{t_cpu:.3f} s", f"{len(clips)} clips")
    add(f"log-mel features, {device}", f"{t_dev:.3f} s", f"max |diff| {diff:.1e} dB")

    # 2. A few epochs on the device, then a whole default fit on the 70/30
    # split.
    train, test = next(paper_split().split(S_cpu, y))
    seconds, how = _per_epoch(clf, device, S_cpu[train], y[train])
    add(f"default fit, {device}, from a few epochs", f"{seconds:.1f} s", how)
    fitted, t_fit = _timed(
        lambda: clone(clf).set_params(device=device).fit(S_cpu[train], y[train])
    )
    accuracy = float(np.mean(fitted.predict(S_cpu[test]) == y[test]))
    losses = np.array(fitted.net_.history[:, "train_loss"], dtype=float)
    first, last = (
        losses[: max(1, len(losses) // 10)],
        losses[-max(1, len(losses) // 10) :],
    )
    converged = bool(np.isfinite(losses).all())
    for net in member_nets(fitted.net_):  # each of an ensemble
        softmax = [
            row["train_loss"] for row in net.history if row["phase"] == "softmax"
        ]
        converged &= bool(np.mean(softmax[-5:]) < 0.5 * np.mean(softmax[:5]))
    dtype = autocast_dtype(fitted.precision, device)
    precision = "float32" if dtype is None else f"{dtype} autocast"
    add(
        f"default fit, 70% of the clips, {device} ({precision})",
        f"{t_fit:.1f} s",
        f"accuracy {100 * accuracy:.2f} % on the 30%; converged: {converged} "
        f"(loss {np.mean(first):.3f} -> {np.mean(last):.3f})",
    )

    # 3. The CPU figure of the same fit.
    if cpu_fit_seconds is None:
        cpu_fit_seconds, how = _per_epoch(clf, "cpu", S_cpu[train], y[train])
        how += ", measured here"
    else:
        how = "given (--cpu-fit-seconds)"
    add("default fit, CPU", f"{cpu_fit_seconds:.1f} s", how)
    add("speed-up of the fit on the device", f"{cpu_fit_seconds / t_fit:.1f}x", "")

    # 4. The device-trained model, saved and loaded on the CPU.
    with tempfile.TemporaryDirectory() as tmp:
        path = save(fitted, Path(tmp) / "model.safetensors")
        loaded = load(path, device="cpu")
    p_dev = fitted.predict_proba(S_cpu[test])
    p_cpu = loaded.predict_proba(S_cpu[test])
    agree = float(np.mean(p_dev.argmax(1) == p_cpu.argmax(1)))
    add(
        f"{device}-trained model loaded on the CPU",
        f"{100 * agree:.2f} % same labels",
        f"max |proba diff| {np.abs(p_dev - p_cpu).max():.1e}",
    )


def _gpu_name():
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"


def _row(row):
    return "| " + " | ".join(row) + " |"


def _header(name):
    return "\n".join(
        [f"GPU: {name}; torch {torch.__version__}", "", "| check | value | notes |"]
        + ["|---|---:|---|"]
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, type=Path)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--cpu-fit-seconds", type=float)
    parser.add_argument("--quick", action="store_true", help="4 actors, few epochs")
    args = parser.parse_args(argv)
    # The table row by row, each as soon as it is measured.
    print(_header(_gpu_name()), flush=True)
    run(
        args.data,
        args.device,
        args.cpu_fit_seconds,
        args.quick,
        report=lambda row: print(_row(row), flush=True),
    )


if __name__ == "__main__":
    main()
