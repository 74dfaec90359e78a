"""Two full benchmark runs side by side, fit by fit.

Each run is the directory that ``run_all.py --resume DIR`` (or
``bench_classifier.py --resume DIR``) saved its fits in. Fits of the same
protocol, fold and seed are paired, so the difference between two settings
is read without the spread between folds, which is larger than most
changes::

    python benchmarks/compare_runs.py NEW_RUN_DIR OLD_RUN_DIR [--names new old]

Accuracy (WA) is compared under the paper's protocols and balanced accuracy
(UA) by actor, the figures the report leads with. Only fits saved in both
runs are paired; the table says how many.
"""

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_classifier import PROTOCOLS, FitStore  # noqa: E402

#: The figure compared under each protocol (a key of a saved outcome).
METRIC = {"paper-10fold": "acc", "paper-70/30": "acc", "speaker": "uar"}


def saved_fits(directory):
    """The fits a run saved in ``directory``, ``{(protocol, fold, seed): outcome}``."""
    return FitStore(directory).saved()


def paired_rows(new, old):
    """One row per protocol: the pairs of fits of both runs and their
    differences, in points (``new - old``)."""
    rows = []
    for protocol in PROTOCOLS:
        keys = sorted(k for k in new if k[0] == protocol and k in old)
        if not keys:
            continue
        metric = METRIC[protocol]
        a = [100 * new[k][metric] for k in keys]
        b = [100 * old[k][metric] for k in keys]
        diff = [x - y for x, y in zip(a, b, strict=True)]
        rows.append(
            {
                "protocol": protocol,
                "metric": "UA" if metric == "uar" else "WA",
                "pairs": len(keys),
                "new": statistics.mean(a),
                "old": statistics.mean(b),
                "diff": statistics.mean(diff),
                "low": min(diff),
                "high": max(diff),
                "ahead": sum(d > 0 for d in diff),
                "behind": sum(d < 0 for d in diff),
            }
        )
    return rows


def _signed(points):
    return f"{round(points, 2) + 0.0:+.2f}"  # + 0.0: no "-0.00" from rounding


def table(rows, names=("new", "old")):
    """The markdown table of :func:`paired_rows`."""
    new, old = names
    lines = [
        f"| protocol | pairs (fold, seed) | {new} % | {old} % | mean difference, "
        "points | range | ahead in | behind in |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['protocol']} ({r['metric']}) | {r['pairs']} | {r['new']:.2f} | "
            f"{r['old']:.2f} | {_signed(r['diff'])} | "
            f"{_signed(r['low'])} to {_signed(r['high'])} "
            f"| {r['ahead']} of {r['pairs']} | {r['behind']} of {r['pairs']} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("new", type=Path, help="--resume directory of one run")
    parser.add_argument("old", type=Path, help="--resume directory of the other")
    parser.add_argument("--names", nargs=2, default=("new", "old"))
    args = parser.parse_args(argv)
    rows = paired_rows(saved_fits(args.new), saved_fits(args.old))
    if not rows:
        raise SystemExit(
            f"{args.new} and {args.old} hold no fit of the same protocol, "
            "fold and seed."
        )
    print(table(rows, args.names))


if __name__ == "__main__":
    main()
