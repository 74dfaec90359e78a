"""How a fit and LogMelTransformer scale with torch's intra-op threads.

Each measurement runs in a fresh process with ``torch.set_num_threads(n)``
(what ``n_jobs`` workers and ``OMP_NUM_THREADS`` change), on an idle machine
and while as many competing busy processes run as there are cores minus one
(another job on a shared 2-core machine). Measured:

- ``fit``: the default classifier on 70% of the RAVDESS spectrograms (the
  paper's 70/30 split), with a short schedule (5 softmax + 2 triplet epochs);
  a default fit has 330 epochs, so it takes about 47 times as long;
- ``features``: ``LogMelTransformer`` on the 1440 RAVDESS clips (warm);
- ``ensemble``: the same fit with ``n_networks=2``, its two networks trained
  ``n`` at a time (``n_jobs=n``), each with one torch thread: there, the
  threads column counts the networks' threads.

Each figure is the median of ``--repeats`` runs; the table gives them side by
side, with the ratio of each thread count to one thread.

    python benchmarks/bench_threads.py [--data ../shared/data/ravdess]
        [--threads 1 2] [--repeats 3] [--tasks fit features ensemble]
"""

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess"

_CHILD = r"""
import json, sys, time
import numpy as np, torch
torch.set_num_threads({threads})
data = np.load({cache!r})
task = {task!r}
if task in ("fit", "ensemble"):
    from sklearn_tser.evaluation import default_pipeline, paper_split
    S, y = data["S"], data["y"]
    train, _ = next(paper_split(random_state=0).split(y, y))
    # n_threads=None: the classifier keeps the process's setting, set above;
    # an ensemble's networks train n_jobs at a time, with one thread each.
    threads = dict(n_threads=None)
    if task == "ensemble":
        threads = dict(n_networks=2, n_jobs={threads}, n_threads=1)
    clf = default_pipeline().named_steps["clf"].set_params(
        pretrain_epochs=5, triplet_epochs=2, **threads
    )
    start = time.perf_counter()
    clf.fit(S[train], y[train])
else:
    import soundfile as sf
    from sklearn_tser import LogMelTransformer
    files = [str(f) for f in data["files"]]
    clips = [sf.read(f, dtype="float32")[0] for f in files]
    tr = LogMelTransformer()
    tr.transform(clips)  # warm-up
    start = time.perf_counter()
    tr.transform(clips)
print(json.dumps(time.perf_counter() - start))
"""


TASKS = ("fit", "features", "ensemble")


def _busy():
    while True:
        pass


def _cache(data, path):
    """Spectrograms, labels and file names of RAVDESS, computed once."""
    if not Path(path).exists():
        from sklearn_tser.datasets import load_ravdess
        from sklearn_tser.evaluation import default_pipeline

        bunch = load_ravdess(data)
        S = default_pipeline().named_steps["mel"].transform(bunch.data)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, S=S, y=bunch.target, files=np.asarray(bunch.data))
    return path


def _timed(task, threads, cache):
    code = _CHILD.format(threads=threads, cache=str(cache), task=task)
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(data, threads=(1, 2), repeats=3, cache=None, tasks=TASKS):
    cache = _cache(data, cache or Path(__file__).parent / ".cache" / "threads.npz")
    n_busy = max(1, (os.cpu_count() or 2) - 1)
    rows = []
    for load in ("idle", f"{n_busy} busy process(es)"):
        busy = []
        if load != "idle":
            busy = [multiprocessing.Process(target=_busy) for _ in range(n_busy)]
            for p in busy:
                p.start()
        try:
            for task in tasks:
                for n in threads:
                    times = [_timed(task, n, cache) for _ in range(repeats)]
                    rows.append((task, load, n, float(np.median(times))))
        finally:
            for p in busy:
                p.terminate()
                p.join()
    return {"rows": rows, "repeats": repeats, "cpus": os.cpu_count()}


def table(r):
    one = {(t, load): s for t, load, n, s in r["rows"] if n == 1}
    lines = [
        f"Median of {r['repeats']} runs, each in a fresh process; {r['cpus']} "
        "logical CPUs. fit: default classifier, 70% of RAVDESS, 5 + 2 epochs; "
        "features: LogMelTransformer, 1440 clips, warm; ensemble: the fit with "
        "n_networks=2, its networks trained n_jobs (the threads column) at a "
        "time, one torch thread each.",
        "",
        "| task | machine | threads | seconds | time / 1 thread |",
        "|---|---|---:|---:|---:|",
    ]
    for task, load, n, s in r["rows"]:
        ratio = s / one[(task, load)] if (task, load) in one else float("nan")
        lines.append(f"| {task} | {load} | {n} | {s:.2f} | {ratio:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, type=Path)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--output", type=Path, help="write the table here too")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = run(args.data, tuple(args.threads), args.repeats, tasks=args.tasks)
    report = table(result)
    report += f"\n\nRun in {(time.perf_counter() - start) / 60:.0f} min: `python "
    report += "benchmarks/bench_threads.py " + " ".join(argv or sys.argv[1:]) + "`"
    print(report)
    if args.output:
        args.output.write_text(report + "\n")
    return result


if __name__ == "__main__":
    main()
