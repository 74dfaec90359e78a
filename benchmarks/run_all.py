"""Run every benchmark and write one markdown report.

Feature extraction (LogMelTransformer against a per-clip librosa loop) and the
classifier on RAVDESS under the paper's protocols and the speaker-independent one
(3 seeds per fold), beside the MFCC + SVM and openSMILE + SVM peers, measured in
the same run::

    python benchmarks/run_all.py                      # full run, hours on 2 cores
    python benchmarks/run_all.py --quick              # CI-sized, a few minutes
    python benchmarks/run_all.py --output docs/benchmark_results.md
    python benchmarks/run_all.py --features-only    # a minute or two
    python benchmarks/run_all.py --resume runs/full   # stopped? the same again

With ``--resume DIR`` each classifier fit is saved in ``DIR`` as it ends, and
the same command run again fits only what is missing (see
``bench_classifier.py``). ``DIR`` is keyed by the library's and
``bench_classifier.py``'s source: after an edit of either, resume from a
worktree of the run's commit (``git worktree add --detach ../run COMMIT``);
an edit of how reports are written or read (``fit_reports.py``) keeps it.

The report starts with the machine it ran on and the command that made it.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import sklearn
import skorch
import torch

import sklearn_tser

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_classifier  # noqa: E402
import bench_features  # noqa: E402
import fit_reports  # noqa: E402


def machine():
    cpu = bench_classifier.cpu_name()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, GPU: {gpu}; Python "
        f"{platform.python_version()}, torch {torch.__version__}, skorch "
        f"{skorch.__version__}, scikit-learn {sklearn.__version__}, sklearn-tser "
        f"{sklearn_tser.__version__}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=bench_classifier.DEFAULT_DATA, type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--params", default="{}", help="JSON classifier parameters")
    parser.add_argument(
        "--protocols", nargs="+", choices=bench_classifier.PROTOCOLS, default=None
    )
    parser.add_argument(
        "--seeds", type=int, default=1, help="classifier fits per fold (seeds)"
    )
    parser.add_argument(
        "--speaker-seeds",
        type=int,
        default=3,
        help="fits per fold of the speaker protocol (default: 3)",
    )
    parser.add_argument(
        "--jobs", type=int, default=2, help="classifier fits at a time (default: 2)"
    )
    parser.add_argument(
        "--features-only",
        action="store_true",
        help="only the feature-extraction benchmark (a minute or two)",
    )
    parser.add_argument("--output", type=Path, help="write the report here too")
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="save each classifier fit in DIR and reuse those saved there by an "
        "earlier run of the same code and parameters (a full run takes hours)",
    )
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        parser.error(f"RAVDESS not found at {args.data}; pass --data PATH.")

    start = time.perf_counter()
    feats = bench_features.run(args.data, args.quick)
    clf = (
        None
        if args.features_only
        else bench_classifier.run(
            args.data,
            args.quick,
            json.loads(args.params),
            args.protocols,
            log=lambda s: print(s, flush=True),
            seeds={
                **{p: args.seeds for p in bench_classifier.PROTOCOLS},
                "speaker": args.speaker_seeds,
            },
            jobs=args.jobs,
            resume=args.resume,
        )
    )
    minutes = (time.perf_counter() - start) / 60
    command = "python benchmarks/run_all.py " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:])
    )
    report = "\n".join(
        [
            f"- Run on {datetime.date.today().isoformat()}, {minutes:.0f} min; "
            f"command: `{command.strip()}`",
            f"- Machine: {machine()}",
            "",
            "### Feature extraction",
            "",
            bench_features.table(feats),
            "",
        ]
        + (
            []
            if clf is None
            else [
                "### Classification on RAVDESS (8 emotions, speech)",
                "",
                fit_reports.table(clf),
                "",
            ]
        )
    )
    print(report)
    if args.output:
        args.output.write_text(report)
    return report


if __name__ == "__main__":
    main()
