"""Two full benchmark runs side by side, fit by fit.

Each run is the directory that ``run_all.py --resume DIR`` (or
``bench_classifier.py --resume DIR``) saved its fits in, or the run's report
(``run_all.py --output FILE``, as kept in ``docs/``; a file may hold the
reports of a run whose protocols ran as separate commands), which lists every
fit with its accuracy to a thousandth of a point. Fits of the same
protocol, fold and seed are paired, so the difference between two settings
is read without the spread between folds, which is larger than most
changes::

    python benchmarks/compare_runs.py NEW_RUN OLD_RUN [--names new old]

Accuracy (WA) is compared under the paper's protocols and balanced accuracy
(UA) by actor, the figures the report leads with. Only fits saved in both
runs are paired; the table says how many.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ablate import paired_table  # noqa: E402
from bench_classifier import PROTOCOLS, FitStore  # noqa: E402
from fit_reports import listed_percent, read_fits  # noqa: E402

#: The figure compared under each protocol (a key of a saved outcome).
METRIC = {"paper-10fold": "acc", "paper-70/30": "acc", "speaker": "uar"}


#: What two runs must share for their fold k to be the same split.
SAME_SPLITS = ("quick", "n_clips", "clips")


def run_fits(run):
    """``(key, {(protocol, fold, seed): outcome})`` of a run: its ``--resume``
    directory, or its report (a file). The scores of a directory are rounded
    as its report rounds them (a thousandth of a point), so that a run reads
    the same from either, and the same fits are not told apart by noise."""
    if Path(run).is_file():
        return read_fits(Path(run).read_text(), source=str(run))
    store = FitStore(run)
    fits = {
        key: {
            **outcome,
            **{m: float(listed_percent(outcome[m])) / 100 for m in ("acc", "uar")},
        }
        for key, outcome in store.saved().items()
    }
    return store.key, fits


def saved_fits(new, old):
    """The fits each run saved, ``{(protocol, fold, seed): outcome}``, once
    both runs are known to split the same clips the same way (their code and
    parameters may differ: that is what is compared)."""
    (new_key, new_fits), (old_key, old_fits) = run_fits(new), run_fits(old)
    differ = [k for k in SAME_SPLITS if new_key.get(k) != old_key.get(k)]
    if differ:
        raise SystemExit(
            f"{new} and {old} are runs of other folds ({', '.join(differ)} "
            "differ: other clips, or --quick in one of them); their fits do "
            "not pair."
        )
    return new_fits, old_fits


def paired_scores(new, old, names=("new", "old")):
    """The scores of the fits saved in both runs, in the same order of folds
    and seeds: ``{name: {protocol: [score, ...]}}``, old run first, as
    :func:`ablate.paired_table` reads them."""
    if names[0] == names[1]:
        raise ValueError(f"both runs are named {names[0]!r}: name them apart.")
    rows = {names[1]: {}, names[0]: {}}
    for protocol in PROTOCOLS:
        keys = sorted(k for k in new if k[0] == protocol and k in old)
        if keys:
            metric = METRIC[protocol]
            rows[names[1]][protocol] = [old[k][metric] for k in keys]
            rows[names[0]][protocol] = [new[k][metric] for k in keys]
    return rows


def table(rows):
    """Each run's mean over the paired fits, then their paired differences."""
    old, new = rows
    protocols = list(rows[old])
    lines = [
        f"| protocol | pairs (fold, seed) | {new} % | {old} % |",
        "|---|---:|---:|---:|",
    ]
    for protocol in protocols:
        a, b = rows[new][protocol], rows[old][protocol]
        metric = "UA" if METRIC[protocol] == "uar" else "WA"
        lines.append(
            f"| {protocol} ({metric}) | {len(a)} | {100 * np.mean(a):.2f} | "
            f"{100 * np.mean(b):.2f} |"
        )
    lead = (
        f"Paired by fold and seed, the difference of {new!r} to {old!r}, "
        "points (mean, std over the pairs, range):"
    )
    return "\n".join(lines) + "\n\n" + paired_table(rows, protocols, lead)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "new", type=Path, help="one run: its --resume directory or its report"
    )
    parser.add_argument("old", type=Path, help="the other run, the same way")
    parser.add_argument("--names", nargs=2, default=("new", "old"))
    args = parser.parse_args(argv)
    try:
        rows = paired_scores(*saved_fits(args.new, args.old), args.names)
    except ValueError as error:  # one name for both runs
        parser.error(str(error))
    if not any(rows.values()):
        raise SystemExit(
            f"{args.new} and {args.old} hold no fit of the same protocol, "
            "fold and seed."
        )
    print(table(rows))


if __name__ == "__main__":
    main()
