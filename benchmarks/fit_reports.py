"""The report of a run of ``bench_classifier.py``: its tables, and the list
of every fit of the classifier, written (:func:`fits_table`) and read back
(:func:`read_fits`, for ``compare_runs.py``).

Nothing here makes a fit, so this module is not in the code digest that keys
a ``--resume`` directory (``bench_classifier.code_digest``): a change to how
reports are written or read leaves the fits of a stopped run resumable.
"""

import json

import numpy as np

FITS_HEADING = "#### Every fit of the classifier"


def fit_threads(n, networks=1):
    """How a fit ran: its torch threads, and an ensemble's networks at once."""
    torch_threads = f"{n} torch thread{'' if n == 1 else 's'}"
    if networks == 1:
        return torch_threads
    return f"{networks} networks at once, {torch_threads} each"


def where_it_ran(outcome):
    """The machine of a saved fit, and its device when not the CPU."""
    device = outcome.get("device", "cpu")
    return outcome["machine"] + ("" if device == "cpu" else f", {device}")


def _mean_std(rows, key, scale=100, digits=2):
    v = np.array([r[key] for r in rows])
    if len(v) > 1:
        return f"{scale * v.mean():.{digits}f} ± {scale * v.std():.{digits}f}"
    return f"{scale * v[0]:.{digits}f}"


def table(r):
    lines = [
        f"{r['n_clips']} clips; classifier parameters: "
        f"`{json.dumps(r['params']) if r['params'] else 'defaults'}`; mean ± "
        "standard deviation over folds (and seeds)",
        "",
        "| protocol | method | accuracy (WA) % | balanced accuracy (UA) % | "
        "macro F1 % | ECE of predict_proba | fits |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for protocol, rows in r["results"].items():
        for method, m in rows.items():
            name = "EmotionEmbeddingClassifier" if method == "ours" else method
            ece = _mean_std(m, "ece", 1, 3) if method == "ours" else "n/a"
            lines.append(
                f"| {protocol} | {name} | {_mean_std(m, 'acc')} "
                f"| {_mean_std(m, 'uar')} | {_mean_std(m, 'f1')} | {ece} | {len(m)} |"
            )
    first = r["first_fit"]
    which = "70% split" if r["first_protocol"] == "paper-70/30" else "first fold"
    how = fit_threads(first["threads"], first.get("networks_at_once", 1))
    lines += [
        "",
        f"| speed and memory ({first.get('device', 'cpu')}) | value |",
        "|---|---:|",
        f"| one fit ({which}), alone, {how} | {first['fit_s']:.0f} s |",
        "| prediction throughput from spectrograms "
        f"| {first['clips_per_s']:.0f} clips/s |",
    ]
    others = [
        f["fit_s"]
        for rows in r["results"].values()
        for f in rows["ours"]
        if not f.get("alone") and not f.get("resumed")
    ]
    if r["jobs"] > 1 and others:  # this run's fits, side by side
        lines.append(
            f"| mean fit time of the other fits of this run, {r['jobs']} at a time "
            f"| {np.mean(others):.0f} s |"
        )
    for name, seconds in r["peer_feature_s"].items():
        lines.append(f"| {name}: features of all clips | {seconds:.0f} s |")
    lines.append(f"| peak resident memory of the run | {r['peak_mb']:.0f} MB |")
    for name in r["missing_peers"]:
        lines.append(f"\n{name} was not run: `pip install -e '.[bench]'`.")
    if resumed := r.get("resumed"):
        n_fits = sum(len(rows["ours"]) for rows in r["results"].values())
        where = ", ".join(
            f"{n} on {machine} ({date})"
            for (machine, date), n in sorted(
                {each: resumed.count(each) for each in resumed}.items()
            )
        )
        others = (
            f"; the others ran now on {r['machine']}"
            if len(resumed) < n_fits
            else "; none ran now"
        )
        lines.append(
            f"\n{len(resumed)} of the classifier's {n_fits} fits were saved by "
            f"earlier runs of the same code and parameters (--resume): {where}"
            f"{others}."
        )
        if first.get("resumed"):
            lines.append(
                f"The first fit (its fit time and prediction throughput above) "
                f"ran on {where_it_ran(first)} ({first['date']})."
            )
    return "\n".join(lines) + "\n\n" + fits_table(r)


def listed_percent(score):
    """A score (a fraction) as the list of fits writes it: a percentage to a
    thousandth of a point, the precision :func:`read_fits` reads back."""
    return f"{100 * score:.3f}"


def fits_table(r):
    """Every fit of the classifier, one row each, and the clips they split.

    ``compare_runs.py`` pairs two runs fit by fit from their ``--resume``
    directories or from these lists in their reports (:func:`read_fits`): a
    report kept in the docs outlives the directory its run saved its fits in.
    """
    lines = [
        FITS_HEADING,
        "",
        f"Clips split: `{json.dumps(r['split'], sort_keys=True)}` (runs of the "
        "same clips, split the same way, pair fit by fit: "
        "`benchmarks/compare_runs.py`)",
        "",
        "| protocol | fold | seed | accuracy (WA) % | balanced accuracy (UA) % "
        "| fit s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for protocol, rows in r["results"].items():
        for f in rows["ours"]:
            lines.append(
                f"| {protocol} | {f['fold'] + 1} | {f['seed']} | "
                f"{listed_percent(f['acc'])} | {listed_percent(f['uar'])} | "
                f"{f['fit_s']:.0f} |"
            )
    return "\n".join(lines)


def _read_list(listed, source):
    """The clips split and the fits of one list of :func:`fits_table`: the
    text after its heading, up to the next heading."""
    split, fits = None, {}
    for line in listed.splitlines():
        if line.startswith("Clips split: `"):
            split = json.loads(line.split("`")[1])
        elif line.startswith("#") and split is not None:
            break  # the next section
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[1].isdigit():  # a fit's row
            acc, uar, fit_s = (float(c) for c in cells[3:])
            key = cells[0], int(cells[1]) - 1, int(cells[2])
            fits[key] = {"acc": acc / 100, "uar": uar / 100, "fit_s": fit_s}
    if split is None:
        raise SystemExit(f"{source} does not say which clips its fits split.")
    return split, fits


def read_fits(text, source="the report"):
    """The clips split and the fits listed by :func:`fits_table` in a report:
    ``(split, {(protocol, fold, seed): {"acc": ..., "uar": ..., "fit_s":
    ...}})``, fold from 0 as in :class:`FitStore` (the table counts from 1).

    A file may keep the reports of several commands of one run one after the
    other (the protocols of a run split across commands, as in the docs): the
    fits of every list are read, once they split the same clips the same way.
    """
    lists = [_read_list(t, source) for t in text.split(FITS_HEADING)[1:]]
    if not lists:
        raise SystemExit(
            f"{source} lists no fit (no {FITS_HEADING!r} section: older "
            "reports have none); give a --resume directory or a newer report."
        )
    split, fits = lists[0][0], {}
    for other, listed in lists:
        if other != split:
            raise SystemExit(
                f"{source} lists fits of other splits ({split} and {other}): "
                "keep one run's fits in it."
            )
        for (protocol, fold, seed), outcome in listed.items():
            if fits.setdefault((protocol, fold, seed), outcome) != outcome:
                raise SystemExit(
                    f"{source} lists fold {fold + 1}, seed {seed} of {protocol} "
                    "twice, with other outcomes: keep one run's fits in it."
                )
    return split, fits
