"""What the softmax phase's batch size, or another setting, does to the time
of a fit on the CPU.

The network's forward and backward passes are most of a fit's time, and a
convolution over more clips at once makes better use of a core. This times the
default classifier (two networks at once, one torch thread each) on 70% of the
RAVDESS spectrograms (the paper's 70/30 split) for a few softmax epochs and no
triplet epochs, for each ``batch_size``, and gives the seconds per softmax
epoch beside those of the default batch size. The triplet phase's batches (P
emotions x K clips) do not depend on ``batch_size``.

With ``--configs FILE`` (a JSON object ``{"name": {parameters}}``, as
``ablate.py`` reads), the rows are the defaults and those parameter sets
instead, at the default batch size: what an augmentation costs per epoch, say.

Each figure is the median of ``--repeats`` fits in this process, the rows
taken in turn (so a drift of the machine's speed touches each alike). It says
nothing of accuracy: a setting is screened for that with ``ablate.py``.

    python benchmarks/bench_batch.py [--data ../shared/data/ravdess]
        [--batch-sizes 32 64 128 | --configs FILE] [--epochs 6] [--repeats 3]
        [--output FILE]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from ablate import DEFAULT_CACHE, DEFAULT_DATA, features

from sklearn_tser.evaluation import default_pipeline, paper_split


def softmax_epoch_seconds(S, y, params, epochs):
    """Seconds per softmax epoch of a default fit with ``params`` set: the
    fit of ``epochs`` epochs less that of one, over ``epochs - 1`` (what the
    fit does once, its statistics and centroids, cancels out)."""
    times = []
    for n in (1, epochs):
        clf = default_pipeline().named_steps["clf"]
        clf.set_params(**params, pretrain_epochs=n, triplet_epochs=0)
        start = time.perf_counter()
        clf.fit(S, y)
        times.append(time.perf_counter() - start)
    return (times[1] - times[0]) / (epochs - 1)


def rows(batch_sizes, configs):
    """The timed rows, ``{name: parameters}``: the batch sizes, or with
    ``configs`` the defaults and those sets; and the name of the defaults'
    row (None when no row is of the defaults)."""
    default = default_pipeline().named_steps["clf"].batch_size
    if configs is None:
        named = {f"batch_size {b}": {"batch_size": b} for b in batch_sizes}
        return named, (f"batch_size {default}" if default in batch_sizes else None)
    return {"defaults": {}} | configs, "defaults"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, type=Path)
    parser.add_argument("--cache", default=DEFAULT_CACHE, type=Path)
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[32, 64, 128])
    parser.add_argument(
        "--configs", type=Path, help="JSON {name: {parameters}}: rows instead"
    )
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, help="write the table here too")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (one epoch's time is a difference)")
    configs = json.loads(args.configs.read_text()) if args.configs else None
    named, base_name = rows(args.batch_sizes, configs)
    torch.set_num_threads(1)
    S, y, _ = features(args.data, args.cache)
    train, _ = next(paper_split(random_state=0).split(y, y))
    S, y = S[train], y[train]
    seconds = {name: [] for name in named}
    for _ in range(args.repeats):
        for name, params in named.items():
            seconds[name].append(softmax_epoch_seconds(S, y, params, args.epochs))
    base = np.median(seconds[base_name]) if base_name else None
    default_batch = default_pipeline().named_steps["clf"].batch_size
    what = "`batch_size`" if configs is None else "the parameters of each row"
    lines = [
        f"Default classifier but {what}, {len(y)} training clips (70/30 "
        f"split), two networks at once, one torch thread each; median of "
        f"{args.repeats} fits of {args.epochs} softmax epochs less one epoch.",
        "",
        "| row | steps per epoch | s per softmax epoch | ms per clip "
        "| time / default |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, params in named.items():
        t = float(np.median(seconds[name]))
        ratio = f"{t / base:.3f}" if base else "n/a"
        b = params.get("batch_size", default_batch)
        lines.append(
            f"| {name} | {-(-len(y) // b)} | {t:.3f} | {1e3 * t / len(y):.3f} "
            f"| {ratio} |"
        )
    text = "\n".join(lines)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
