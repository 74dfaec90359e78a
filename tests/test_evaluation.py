import json
import sys
from pathlib import Path

import numpy as np
import pytest
from _params import TINY

from sklearn_tser import EmotionEmbeddingClassifier, LogMelTransformer
from sklearn_tser._cli import make_evaluations
from sklearn_tser.evaluation import default_pipeline, expected_calibration_error

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_classifier  # noqa: E402
import fit_reports  # noqa: E402

# RAVDESS's layout without its audio: 24 actors of 60 clips, 8 emotions.
ACTOR = np.repeat(np.arange(1, 25), 60)
Y = np.tile(np.repeat(np.arange(8), [4] + [8] * 7), 24)


def _folds(splitter, y, groups):
    return [(tr.tolist(), te.tolist()) for tr, te in splitter.split(y, y, groups)]


@pytest.mark.parametrize("random_state", [0, 7])
def test_cli_speaker_folds_equal_the_benchmark_folds(random_state):
    """`sklearn-tser evaluate --protocol speaker` reproduces the benchmark."""
    [(name, splitter, use_groups)] = make_evaluations(
        "speaker",
        "ravdess",
        y=Y,
        groups=ACTOR,
        n_splits=None,
        random_state=random_state,
    )
    assert name == "6-fold CV by actor" and use_groups
    cli = _folds(splitter, Y, ACTOR)
    bench = [
        (tr.tolist(), te.tolist())
        for tr, te in bench_classifier.splits("speaker", Y, ACTOR)
    ]
    assert cli == bench
    for _, test in cli:  # 4 unseen actors per fold
        assert len(set(ACTOR[test])) == 4
        assert set(ACTOR[test]).isdisjoint(set(ACTOR) - set(ACTOR[test]))


def test_cli_paper_folds_equal_the_benchmark_folds():
    evaluations = make_evaluations(
        "paper", "ravdess", y=Y, groups=ACTOR, n_splits=None, random_state=0
    )
    names = [name for name, _, _ in evaluations]
    assert names == ["10-fold CV", "70/30 split"]
    for (_, splitter, _), protocol in zip(
        evaluations, ["paper-10fold", "paper-70/30"], strict=True
    ):
        bench = [
            (tr.tolist(), te.tolist())
            for tr, te in bench_classifier.splits(protocol, Y, ACTOR)
        ]
        assert _folds(splitter, Y, None) == bench


def test_default_pipeline_is_the_default_estimators():
    pipe = default_pipeline(random_state=3, verbose=1)
    mel, clf = pipe.named_steps["mel"], pipe.named_steps["clf"]
    assert mel.get_params() == LogMelTransformer().get_params()
    expected = EmotionEmbeddingClassifier(random_state=3, verbose=1).get_params()
    assert clf.get_params() == expected


def _ece_loop(y, proba, classes, n_bins):
    """Slow reference: bins built one clip at a time."""
    bins = [[] for _ in range(n_bins)]
    for label, row in zip(y, proba, strict=True):
        confidence = max(row)
        b = min(int(confidence * n_bins), n_bins - 1)
        predicted = classes[list(row).index(confidence)]
        bins[b].append((predicted == label, confidence))
    total = 0.0
    for members in bins:
        if members:
            accuracy = sum(c for c, _ in members) / len(members)
            confidence = sum(p for _, p in members) / len(members)
            total += len(members) / len(y) * abs(accuracy - confidence)
    return total


@pytest.mark.parametrize("n_bins", [1, 5, 15])
@pytest.mark.parametrize("seed", [0, 1])
def test_expected_calibration_error_matches_a_loop(n_bins, seed):
    rng = np.random.default_rng(seed)
    classes = np.array(["angry", "calm", "sad"])
    proba = rng.dirichlet([0.5, 0.5, 0.5], size=50)
    y = classes[rng.integers(0, 3, 50)]
    expected = _ece_loop(y, proba, classes, n_bins)
    got = expected_calibration_error(y, proba, classes=classes, n_bins=n_bins)
    assert got == pytest.approx(expected)


def test_expected_calibration_error_limits():
    y = np.array([0, 1, 1, 0])
    perfect = np.eye(2)[y]
    assert expected_calibration_error(y, perfect) == 0.0
    wrong = np.eye(2)[1 - y]
    assert expected_calibration_error(y, wrong) == 1.0


@pytest.mark.parametrize(
    ("proba", "kwargs", "match"),
    [
        (np.ones((3, 2)) / 2, {}, r"proba has shape \(3, 2\); expected \(4, 2\)"),
        (np.ones((4, 2)) / 2, {"n_bins": 0}, r"n_bins must be an integer >= 1"),
    ],
)
def test_expected_calibration_error_rejects_bad_input(proba, kwargs, match):
    with pytest.raises(ValueError, match=match):
        expected_calibration_error([0, 1, 0, 1], proba, **kwargs)


def test_benchmark_peers_standardise_each_speaker_with_its_own_clips():
    rng = np.random.default_rng(0)
    F = rng.normal(3.0, 2.0, (40, 5))
    speakers = np.repeat([7, 1, 4, 2], 10)
    out = bench_classifier.per_speaker(F, speakers)
    for s in np.unique(speakers):
        rows = speakers == s
        expected = (F[rows] - F[rows].mean(axis=0)) / F[rows].std(axis=0)
        np.testing.assert_allclose(out[rows], expected, rtol=1e-6)


def test_ablation_keys_of_feature_parameters():
    """ablate.py keys a fit by every classifier parameter, and by the feature
    parameters (``mel__<name>``) only where they differ from the defaults, so
    the fits cached before feature parameters existed keep their keys."""
    import ablate

    assert ablate.split_params({"mel__n_mels": 80, "width": 8}) == (
        {"width": 8},
        {"n_mels": 80},
    )
    default = json.loads(ablate.fit_key({}, "actor", 0, 0))
    assert (
        len(default) == 4
        and default[0]["width"] == 48
        and default[1:] == ["actor", 0, 0]
    )
    assert "mel__n_mels" not in default[0] and "n_mels" not in default[0]
    assert ablate.fit_key({"mel__n_mels": 64}, "actor", 0, 0) == ablate.fit_key(
        {}, "actor", 0, 0
    )
    wider = json.loads(ablate.fit_key({"mel__n_mels": 80}, "actor", 0, 0))
    assert wider[:4] == default and wider[4] == {"mel": {"n_mels": 80}}
    assert ablate.fit_key({"width": 8}, "actor", 0, 0) != ablate.fit_key(
        {}, "actor", 0, 0
    )
    # n_jobs is in the key of an ensemble only (the fit time depends on it);
    # one network's key is that of the fits cached before n_jobs existed.
    assert default[0]["n_jobs"] == -1 and default[0]["n_networks"] == 2
    one = json.loads(ablate.fit_key({"n_networks": 1, "n_jobs": 2}, "actor", 0, 0))
    assert "n_jobs" not in one[0] and one[0]["n_networks"] == 1
    # An option added later is in the key when on (as by default); off, it
    # and its fraction (of no effect then) are not: the fits cached before it
    # existed keep their keys.
    assert default[0]["reverberation"] == 50.0
    assert default[0]["reverberation_fraction"] == 0.5
    off = json.loads(ablate.fit_key({"reverberation": 0.0}, "actor", 0, 0))
    assert "reverberation" not in off[0] and "reverberation_fraction" not in off[0]
    # ... and at the value that reverberates every crop, as before it existed.
    every = json.loads(ablate.fit_key({"reverberation_fraction": 1.0}, "actor", 0, 0))
    assert "reverberation_fraction" not in every[0]
    assert every[0]["reverberation"] == 50.0
    # Noise, off by default, is in the key only when on.
    assert "noise_snr" not in default[0]
    noisy = json.loads(ablate.fit_key({"noise_snr": 10.0}, "actor", 0, 0))
    assert noisy[0]["noise_snr"] == 10.0 and "noise_spectrum" not in noisy[0]
    assert "noise_fraction" not in noisy[0]
    quiet = {"noise_spectrum": "tilted", "noise_fraction": 0.5}  # no noise
    assert ablate.fit_key(quiet, "actor", 0, 0) == ablate.fit_key({}, "actor", 0, 0)
    half = json.loads(
        ablate.fit_key({"noise_snr": 10.0, "noise_fraction": 0.5}, "actor", 0, 0)
    )
    assert half[0] == {**noisy[0], "noise_fraction": 0.5}
    tilted = {"noise_snr": 10.0, "noise_spectrum": "tilted"}
    assert json.loads(ablate.fit_key(tilted, "actor", 0, 0))[0] == {
        **noisy[0],
        "noise_spectrum": "tilted",
    }


def test_ablation_benchmark_protocols_are_the_benchmark_folds():
    """ablate.py's ``speaker`` and ``tenfold`` protocols fit the benchmark's
    own folds (with the same seeds, the same fits), and ``--folds`` screens
    on the first folds only."""
    import ablate

    for screen, protocol in [("speaker", "speaker"), ("tenfold", "paper-10fold")]:
        bench = [
            (tr.tolist(), te.tolist())
            for tr, te in bench_classifier.splits(protocol, Y, ACTOR)
        ]
        screened = [
            (tr.tolist(), te.tolist()) for tr, te in ablate.folds(screen, Y, ACTOR)
        ]
        assert screened == bench
    assert ablate.PROTOCOLS["tenfold"][0] == "WA"
    assert list(ablate.screened_folds("tenfold", Y, ACTOR)) == list(range(10))
    assert list(ablate.screened_folds("tenfold", Y, ACTOR, 3)) == [0, 1, 2]
    assert list(ablate.screened_folds("actor", Y, ACTOR, 9)) == [0, 1, 2, 3]


def test_benchmark_fit_store_resumes_the_same_run_only(tmp_path):
    """--resume: a fit saved by one run is read by the next run of the same
    key, whole, with its machine and date; another key is refused."""
    key = {"code": "abc", "params": {"n_networks": 2}, "quick": False, "n_clips": 9}
    store = bench_classifier.FitStore(tmp_path / "run", key)
    assert store.get("paper-70/30", 0, 0) is None
    outcome = {"acc": 0.5, "uar": 0.25, "ece": 0.1, "fit_s": 12.0, "threads": 1}
    saved = store.put("paper-70/30", 0, 0, outcome)
    assert saved["machine"] == bench_classifier.cpu_name() and saved["date"]
    again = bench_classifier.FitStore(tmp_path / "run", dict(key))
    assert again.get("paper-70/30", 0, 0) == saved
    assert again.get("paper-70/30", 0, 1) is None
    assert again.get("speaker", 0, 0) is None
    assert [p.name for p in sorted((tmp_path / "run").iterdir())] == [
        "paper-70_30-0-0.json",
        "run.json",
    ]
    with pytest.raises(SystemExit, match=r"its code, params differ"):
        bench_classifier.FitStore(tmp_path / "run", {**key, "code": "x", "params": {}})


def test_compare_runs_pairs_fits_by_protocol_fold_and_seed(tmp_path, capsys):
    """compare_runs.py reads two --resume directories and pairs their fits:
    WA under the paper's protocols, UA by actor, only fits saved in both."""
    import compare_runs

    key = {"code": "abc", "params": {}, "quick": False, "n_clips": 9}
    new = bench_classifier.FitStore(tmp_path / "new", key)
    old = bench_classifier.FitStore(tmp_path / "old", {**key, "code": "def"})
    for (protocol, fold, seed), (a, b) in {
        ("paper-10fold", 3, 0): (0.90, 0.92),
        ("paper-70/30", 0, 0): (0.80, 0.75),
        ("speaker", 0, 0): (0.60, 0.70),
        ("speaker", 0, 1): (0.70, 0.55),
        ("speaker", 1, 0): (0.50, 0.50),
    }.items():
        new.put(protocol, fold, seed, {"acc": a, "uar": a / 2})
        old.put(protocol, fold, seed, {"acc": b, "uar": b / 2})
    new.put("speaker", 2, 0, {"acc": 1.0, "uar": 1.0})  # no partner: left out
    (tmp_path / "new" / "speaker-x-0.json").write_text("{}")  # not a fit
    (tmp_path / "new" / "other-0-0.json").write_text("{}")
    compare_runs.main(
        [str(tmp_path / "new"), str(tmp_path / "old"), "--names", "A", "B"]
    )
    out = capsys.readouterr().out.splitlines()
    # the means over the paired fits: WA under the paper's protocols, UA by
    # actor (half the accuracy here), A's column first
    assert out[:5] == [
        "| protocol | pairs (fold, seed) | A % | B % |",
        "|---|---:|---:|---:|",
        "| paper-10fold (WA) | 1 | 90.00 | 92.00 |",
        "| paper-70/30 (WA) | 1 | 80.00 | 75.00 |",
        "| speaker (UA) | 3 | 30.00 | 29.17 |",
    ]
    # then the differences A - B: -2; +5; and -5, +7.5, 0
    assert out[-3:] == [
        "| A | paper-10fold | 1 | -2.00 | 0.00 | -2.00 to -2.00 | 0 of 1 |",
        "| A | paper-70/30 | 1 | +5.00 | 0.00 | +5.00 to +5.00 | 1 of 1 |",
        "| A | speaker | 3 | +0.83 | 5.14 | -5.00 to +7.50 | 1 of 3 |",
    ]
    # runs of other splits do not pair
    bench_classifier.FitStore(tmp_path / "quick", {**key, "quick": True})
    with pytest.raises(SystemExit, match=r"other folds \(quick differ"):
        compare_runs.main([str(tmp_path / "new"), str(tmp_path / "quick")])
    with pytest.raises(SystemExit, match=r"holds no saved run"):
        compare_runs.main([str(tmp_path / "new"), str(tmp_path / "nothing")])
    with pytest.raises(SystemExit):
        compare_runs.main(
            [str(tmp_path / "new"), str(tmp_path / "old"), "--names", "A", "A"]
        )
    assert "name them apart" in capsys.readouterr().err


def test_benchmark_cpu_name_tells_cpu_generations_apart(tmp_path):
    """Two CPUs both named "AMD EPYC" fit at other speeds: a run's machine
    names the family and model too, from the first processor's fields."""
    info = tmp_path / "cpuinfo"
    first = "processor\t: 0\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n"
    info.write_text(first + "\nprocessor\t: 1\ncpu family\t: 6\nmodel\t\t: 85\n")
    assert bench_classifier.cpu_name(info) == "AMD EPYC (CPU family 25, model 17)"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\n")
    assert bench_classifier.cpu_name(info) == "Some CPU"
    assert bench_classifier.cpu_name(tmp_path / "none")  # platform's name


def test_compare_runs_reads_a_report_as_it_reads_the_run_directory(tmp_path, capsys):
    """A report lists every fit (fit_reports.fits_table) so that a run
    pairs with another after its --resume directory is gone: compare_runs.py
    reads the report's fits, folds from 0 again, as it reads the directory's."""
    import compare_runs

    split = {"quick": False, "n_clips": 9, "clips": "0123456789abcdef"}
    key = {"code": "abc", "params": {}, **split}
    new = bench_classifier.FitStore(tmp_path / "new", key)
    old = bench_classifier.FitStore(tmp_path / "old", {**key, "code": "def"})
    old_fits = []
    for protocol, fold, seed, a, b in [
        ("paper-70/30", 0, 0, 0.8, 0.75),
        ("speaker", 0, 0, 0.6, 0.7),
        ("speaker", 0, 1, 0.7, 0.55),
        ("speaker", 5, 2, 0.5, 0.6),
    ]:
        new.put(protocol, fold, seed, {"acc": a, "uar": a / 2})
        outcome = {"acc": b, "uar": b / 3, "fit_s": 250.4}
        old.put(protocol, fold, seed, outcome)
        old_fits.append({"protocol": protocol, "fold": fold, "seed": seed, **outcome})
    results = {}  # as bench_classifier.run reports them
    for f in old_fits:
        rows = results.setdefault(f["protocol"], {"ours": [], "MFCC+SVM": []})
        rows["ours"].append({k: v for k, v in f.items() if k != "protocol"})
    text = fit_reports.fits_table({"split": split, "results": results})
    assert "| speaker | 6 | 2 | 60.000 | 20.000 | 250 |" in text.splitlines()
    report = tmp_path / "report.md"
    report.write_text("# A run\n\nSome table\n\n" + text + "\n\n## After\n| x |\n")
    read_split, fits = fit_reports.read_fits(report.read_text())
    assert read_split == split
    assert fits == {
        (f["protocol"], f["fold"], f["seed"]): {
            "acc": pytest.approx(f["acc"], abs=5e-6),  # to 0.001 point
            "uar": pytest.approx(f["uar"], abs=5e-6),
            "fit_s": 250.0,
        }
        for f in old_fits
    }
    compare_runs.main([str(tmp_path / "new"), str(tmp_path / "old")])
    from_directory = capsys.readouterr().out
    compare_runs.main([str(tmp_path / "new"), str(report)])
    assert capsys.readouterr().out == from_directory
    # a report of other clips does not pair; one without the list is refused
    other = tmp_path / "other.md"
    other.write_text(text.replace("0123456789abcdef", "fedcba9876543210"))
    with pytest.raises(SystemExit, match=r"other folds \(clips differ"):
        compare_runs.main([str(tmp_path / "new"), str(other)])
    old_report = tmp_path / "old.md"
    old_report.write_text("| speaker | EmotionEmbeddingClassifier | 64.47 |")
    with pytest.raises(SystemExit, match=r"old\.md lists no fit"):
        compare_runs.main([str(tmp_path / "new"), str(old_report)])
    no_split = tmp_path / "no_split.md"
    no_split.write_text(text.replace("Clips split:", "Clips:"))
    with pytest.raises(SystemExit, match=r"does not say which clips"):
        compare_runs.main([str(no_split), str(report)])


def test_read_fits_joins_the_lists_of_a_run_split_across_commands(tmp_path, capsys):
    """A docs file may keep a run's reports one after the other (its protocols
    run as separate commands): read_fits reads every list of fits in it, and
    refuses lists of other splits or one fit listed with two outcomes. A
    directory compares at its report's precision, so the same run reads alike."""
    import compare_runs

    split = {"quick": False, "n_clips": 9, "clips": "0123456789abcdef"}
    store = bench_classifier.FitStore(tmp_path / "run", {"code": "a", **split})
    mixed, actor = {}, {}
    for protocol, fold, seed, acc in [
        ("paper-70/30", 0, 0, 0.81234567),
        ("paper-10fold", 3, 0, 0.7),
        ("speaker", 0, 1, 0.61234444),
        ("speaker", 4, 2, 0.5),
    ]:
        outcome = {"acc": acc, "uar": acc - 0.1, "fit_s": 300.0}
        store.put(protocol, fold, seed, outcome)
        results = actor if protocol == "speaker" else mixed
        rows = results.setdefault(protocol, {"ours": []})["ours"]
        rows.append({"fold": fold, "seed": seed, **outcome})
    first = fit_reports.fits_table({"split": split, "results": mixed})
    second = fit_reports.fits_table({"split": split, "results": actor})
    doc = tmp_path / "doc.md"
    doc.write_text(f"### Mixed\n\n#{first}\n\n### By actor\n\n#{second}\n\n## After\n")
    read_split, fits = fit_reports.read_fits(doc.read_text())
    assert read_split == split
    assert sorted(fits) == sorted(store.saved())
    assert fits["speaker", 0, 1]["acc"] == pytest.approx(0.61234, abs=1e-12)
    compare_runs.main([str(tmp_path / "run"), str(doc)])
    lines = capsys.readouterr().out.splitlines()
    for protocol, pairs in [("paper-70/30", 1), ("paper-10fold", 1), ("speaker", 2)]:
        row = next(r for r in lines if r.startswith(f"| new | {protocol} |"))
        assert row.endswith(
            f"| {pairs} | +0.00 | 0.00 | +0.00 to +0.00 | 0 of {pairs} |"
        )
    other = second.replace("0123456789abcdef", "fedcba9876543210")
    doc.write_text(f"{first}\n\n{other}\n")
    with pytest.raises(SystemExit, match=r"doc\.md lists fits of other splits"):
        compare_runs.main([str(tmp_path / "run"), str(doc)])
    twice = second.replace(
        "| speaker | 5 | 2 | 50.000 |", "| speaker | 1 | 1 | 50.000 |"
    )
    doc.write_text(f"{first}\n\n{second}\n\n{twice}\n")
    with pytest.raises(SystemExit, match=r"fold 1, seed 1 of speaker twice"):
        compare_runs.main([str(tmp_path / "run"), str(doc)])


def test_benchmark_code_digest_follows_the_library_source(tmp_path, monkeypatch):
    import sklearn_tser

    digest = bench_classifier.code_digest()
    assert digest == bench_classifier.code_digest()
    copy = tmp_path / "sklearn_tser"
    source = Path(sklearn_tser.__file__).parent
    for path in source.rglob("*.py"):
        target = copy / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    monkeypatch.setattr(sklearn_tser, "__file__", str(copy / "__init__.py"))
    assert bench_classifier.code_digest() == digest
    (copy / "_classifier.py").write_text("# changed\n", "utf-8")
    assert bench_classifier.code_digest() != digest


def _fake_benchmark(monkeypatch, files):
    """bench_classifier.run on ``files`` (two folds of one protocol), with its
    classifier fits faked: each returns figures of its seed, and is logged."""
    from sklearn.utils import Bunch

    actor = np.array([int(Path(f).parent.name[-2:]) for f in files])
    target = np.array([Path(f).name.split("-")[2] for f in files])
    monkeypatch.setattr(
        bench_classifier,
        "load_ravdess",
        lambda data: Bunch(data=list(files), target=target, actor=actor),
    )
    monkeypatch.setattr(bench_classifier, "compare_functionals", lambda clips: None)
    n = len(files)
    folds = [(np.arange(0, n, 2), np.arange(1, n, 2))] * 2
    monkeypatch.setattr(bench_classifier, "splits", lambda *args, **kw: folds)
    fitted = []

    def fake_fit_and_score(clf, S, y, tr, te, groups, threads=None):
        fitted.append(clf.random_state)
        return {
            "acc": clf.random_state / 1000,
            "uar": 0.5,
            "f1": 0.5,
            "ece": 0.1,
            "fit_s": 10.0 + clf.random_state,
            "clips_per_s": 100.0,
            "threads": 1,
            "networks_at_once": 1,
            "device": "cpu",
        }

    monkeypatch.setattr(bench_classifier, "fit_and_score", fake_fit_and_score)
    return fitted


def test_benchmark_run_resumes_with_the_fits_it_lacks_only(
    ravdess_files, tmp_path, monkeypatch
):
    """--resume: a run saves every fit as it ends; the same run again fits
    only the missing one, and reports the same figures; a run of other
    parameters is refused before any feature is computed."""
    fitted = _fake_benchmark(monkeypatch, ravdess_files)
    store = tmp_path / "run"

    def run(**kw):
        kw = {"protocols": ["speaker"], "seeds": {"speaker": 2}, "resume": store, **kw}
        return bench_classifier.run(None, log=lambda line: None, **kw)

    first = run()
    assert fitted == [0, 100, 1, 101]  # random_state = fold + 100 * seed
    assert len(list(store.glob("speaker-*.json"))) == 4
    (store / "speaker-1-0.json").unlink()
    fitted.clear()
    again = run()
    assert fitted == [1]
    ours = [
        r["ours"] for r in (first["results"]["speaker"], again["results"]["speaker"])
    ]
    assert [f["acc"] for f in ours[0]] == [f["acc"] for f in ours[1]]
    assert [bool(f.get("resumed")) for f in ours[1]] == [True, True, False, True]
    assert "3 of the classifier's 4 fits were saved" in fit_reports.table(again)
    assert "The first fit (its fit time" in fit_reports.table(again)
    assert "the others ran now on" in fit_reports.table(again)
    fitted.clear()
    whole = fit_reports.table(run())  # every fit saved: none runs
    assert fitted == []
    assert "4 of the classifier's 4 fits were saved" in whole
    assert "none ran now" in whole and "the others" not in whole

    def refuse(clips):
        raise AssertionError("features computed before the key was checked")

    monkeypatch.setattr(bench_classifier, "mfcc_stats", refuse)
    with pytest.raises(SystemExit, match="its params differ"):
        run(params={"width": 8})
    other = [ravdess_files[0], *ravdess_files[2:]]  # as many clips, another one
    _fake_benchmark(monkeypatch, [*other, ravdess_files[1]])
    monkeypatch.setattr(bench_classifier, "mfcc_stats", refuse)
    with pytest.raises(SystemExit, match="its clips differ"):
        run()


def test_benchmark_mean_fit_time_leaves_out_the_fit_alone_and_earlier_runs(
    ravdess_files, tmp_path, monkeypatch
):
    """With --jobs > 1 the table gives the mean time of the fits that ran side
    by side in this run: not the first (alone), nor those of earlier runs."""
    _fake_benchmark(monkeypatch, ravdess_files)
    kw = {"protocols": ["speaker"], "seeds": {"speaker": 2}, "log": lambda s: None}
    r = bench_classifier.run(None, resume=tmp_path / "run", **kw)
    (tmp_path / "run" / "speaker-1-1.json").unlink()
    r = bench_classifier.run(None, resume=tmp_path / "run", **kw)
    r["jobs"] = 2  # the table's row; the fake fits ran in this process
    # Fit times 10 + random_state: 10 (alone), 110, 11, 111 (this run).
    assert "| mean fit time of the other fits of this run, 2 at a time | 111 s |" in (
        fit_reports.table(r)
    )
    r = bench_classifier.run(None, **kw)  # no earlier run: all but the first
    r["jobs"] = 2
    assert "| 77 s |" in fit_reports.table(r)  # mean of 110, 11, 111


def test_bench_batch_rows_are_the_batch_sizes_or_the_configs():
    """bench_batch.py times the batch sizes, against the default one when it
    is among them, or the defaults and the parameter sets of --configs."""
    import bench_batch

    named, base = bench_batch.rows([32, 64], None)
    assert named == {
        "batch_size 32": {"batch_size": 32},
        "batch_size 64": {"batch_size": 64},
    }
    assert base == "batch_size 64"  # the default batch size
    assert bench_batch.rows([32], None)[1] is None
    named, base = bench_batch.rows([32], {"noisy": {"noise_snr": 20.0}})
    assert named == {"defaults": {}, "noisy": {"noise_snr": 20.0}}
    assert base == "defaults"


def test_room_impulse_responses_decay_and_ratio():
    """The simulated rooms of room_robustness.py: a unit direct sound, then a
    tail whose energy is the ratio's share and whose power falls 60 dB in
    the reverberation time."""
    import room_robustness

    h = room_robustness.impulse_response(0.5, 3.0, np.random.default_rng(0))
    assert len(h) == 1 + round(0.75 * room_robustness.SR) and h[0] == 1.0
    np.testing.assert_allclose(np.sum(h[1:] ** 2), 10**-0.3)
    # The tail's power in its first quarter second and in its third, 0.5 s
    # (the reverberation time) later: 60 dB apart, the noise aside.
    quarter = room_robustness.SR // 4
    first = np.sum(h[1 : 1 + quarter] ** 2)
    second = np.sum(h[1 + 2 * quarter : 1 + 3 * quarter] ** 2)
    assert abs(10 * np.log10(first / second) - 60.0) < 1.0
    clip = np.random.default_rng(1).standard_normal(8000).astype(np.float32)
    heard = room_robustness.in_room(clip, 0.5, 3.0, seed=7)
    assert heard.shape == clip.shape and heard.dtype == np.float32
    np.testing.assert_array_equal(heard, room_robustness.in_room(clip, 0.5, 3.0, 7))


def test_room_features_identity_room_and_cache(ravdess_dir, tmp_path):
    """A room with no tail to speak of (a ratio of 200 dB) gives the clips'
    own log-mel features back; a second call reads the cache and decodes
    nothing."""
    import room_robustness

    from sklearn_tser._audio import load_audio
    from sklearn_tser.datasets import load_ravdess
    from sklearn_tser.evaluation import default_pipeline

    paths = load_ravdess(ravdess_dir).data
    clips = np.array([3, 700])
    decoded = []

    def recordings():
        decoded.append(1)
        return [load_audio(paths[i]) for i in clips]

    S = room_robustness.room_features(
        ravdess_dir, tmp_path, clips, 0.3, 200.0, recordings
    )
    clean = default_pipeline().named_steps["mel"].transform([paths[i] for i in clips])
    np.testing.assert_allclose(S, clean, atol=0.01)  # NaN padding alike
    again = room_robustness.room_features(
        ravdess_dir, tmp_path, clips, 0.3, 200.0, recordings
    )
    np.testing.assert_array_equal(again, S)
    assert decoded == [1]
    # Another room is another cache entry, and sounds otherwise.
    other = room_robustness.room_features(
        ravdess_dir, tmp_path, clips, 0.6, 0.0, recordings
    )
    assert decoded == [1, 1] and np.nanmean(other - clean) > 1.0


def _tone(freq, seconds=1.0, amplitude=0.5, sr=16000):
    t = np.arange(int(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_noise_ratio_is_of_the_active_power():
    """room_robustness.py's noise: white noise at the ratio asked of the
    clip's active power (its pauses left out), the same for the same seed."""
    import room_robustness

    tone = _tone(440.0)
    clip = np.concatenate([np.zeros(16000, np.float32), tone])  # half silence
    # A sine of amplitude 0.5 has a power of 0.125; over the whole clip, half
    # of that. The intervals are found in frames of 2048 samples, so a few
    # silent samples count too.
    np.testing.assert_allclose(room_robustness.active_power(clip), 0.125, rtol=0.05)
    heard = room_robustness.in_noise(clip, "white", 10.0, seed=3)
    assert heard.shape == clip.shape and heard.dtype == np.float32
    noise = heard.astype(np.float64) - clip
    snr = 10 * np.log10(room_robustness.active_power(clip) / np.mean(noise**2))
    np.testing.assert_allclose(snr, 10.0, atol=1e-3)
    np.testing.assert_array_equal(heard, room_robustness.in_noise(clip, "white", 10, 3))
    assert not np.array_equal(heard, room_robustness.in_noise(clip, "white", 10, 4))
    with pytest.raises(ValueError, match="'pink' is not one of"):
        room_robustness.in_noise(clip, "pink", 10.0, seed=3)


def test_room_robustness_reads_rooms_and_noises_one_way(capsys):
    """--rooms and --noises are read by one function; what it cannot read,
    or a room given as a noise, stops the command with the option named."""
    import room_robustness

    assert room_robustness.read_condition("0.6:-3") == ("room", 0.6, -3.0)
    assert room_robustness.read_condition("babble:5") == ("babble", None, 5.0)
    for text in ("pink:10", "white", "white:x", "0:5", "-1:5", "0.3:nan", "0.3"):
        with pytest.raises(ValueError, match=f"{text!r} is neither a room"):
            room_robustness.read_condition(text)
    for argv, message in (
        (["--noises", "0.3:5"], "--noises was given '0.3:5', which is not of its"),
        (["--rooms", "white:10"], "--rooms was given 'white:10', which is not of"),
        (["--rooms", "0.3"], "--rooms: '0.3' is neither a room"),
    ):
        with pytest.raises(SystemExit):
            room_robustness.main(argv)
        assert message in capsys.readouterr().err


def test_babble_is_other_actors_speech_at_the_ratio():
    """Babble is made of the talkers given, at the ratio asked; its talkers
    are clips of other actors than the clip's."""
    import room_robustness

    clip = _tone(300.0)
    talkers = [_tone(1000.0, seconds=0.3), _tone(2000.0, seconds=0.7, amplitude=0.1)]
    heard = room_robustness.in_noise(clip, "babble", 5.0, seed=0, talkers=talkers)
    noise = heard.astype(np.float64) - clip
    snr = 10 * np.log10(room_robustness.active_power(clip) / np.mean(noise**2))
    np.testing.assert_allclose(snr, 5.0, atol=1e-3)
    spectrum = np.abs(np.fft.rfft(noise))  # 1 Hz a bin over 1 s
    assert spectrum[300] < 1e-3 * spectrum.max()
    # Both talkers, looped to the clip's length, at equal active power.
    assert np.argmax(spectrum) in (999, 1000, 1001, 1999, 2000, 2001)
    np.testing.assert_allclose(
        spectrum[995:1006].max(), spectrum[1995:2006].max(), rtol=0.2
    )
    actors = np.array([1, 1, 2, 3, 2, 4, 5])
    picks = room_robustness.babble_talkers(7, actors, 1)
    assert len(picks) == room_robustness.BABBLE_TALKERS
    assert set(picks) <= {2, 3, 4, 5, 6} and len(set(picks)) == len(picks)
    np.testing.assert_array_equal(picks, room_robustness.babble_talkers(7, actors, 1))
    assert list(room_robustness.babble_talkers(7, actors, 4)) != list(picks)
    with pytest.raises(ValueError, match="clip 9 has no clip of another actor"):
        room_robustness.babble_talkers(9, np.array([2, 2]), 2)


def test_noise_features_faint_noise_and_cache(ravdess_dir, tmp_path):
    """Noise 200 dB under the clips gives their own log-mel features back; a
    second call reads the cache; babble is another entry, and sounds
    otherwise."""
    import room_robustness

    from sklearn_tser._audio import load_audio
    from sklearn_tser.datasets import load_ravdess
    from sklearn_tser.evaluation import default_pipeline

    bunch = load_ravdess(ravdess_dir)
    clips = np.array([3, 700])
    actors = bunch.actor[clips]
    assert actors[0] != actors[1]
    decoded = []

    def recordings():
        decoded.append(1)
        return [load_audio(bunch.data[i]) for i in clips]

    def features(kind, snr_db):
        return room_robustness.noise_features(
            ravdess_dir, tmp_path, clips, actors, kind, snr_db, recordings
        )

    S = features("white", 200.0)
    mel = default_pipeline().named_steps["mel"]
    clean = mel.transform([bunch.data[i] for i in clips])
    np.testing.assert_allclose(S, clean, atol=0.01)  # NaN padding alike
    np.testing.assert_array_equal(features("white", 200.0), S)
    assert decoded == [1]
    other = features("babble", 0.0)
    assert decoded == [1, 1] and np.nanmean(np.abs(other - clean)) > 1.0


def test_triplet_branches_start_every_set_from_one_softmax_model(tmp_path, monkeypatch):
    """triplet_branches.py fits a fold's softmax phase once, trains each set's
    triplet phase on from its weights (no network built again, the defaults
    filled in; again to the same scores: the same weights and draws),
    resumes from its records, and refuses a set that changes more than the
    triplet phase."""
    import ablate
    import triplet_branches
    from sklearn.pipeline import Pipeline

    import sklearn_tser._classifier as classifier_module

    rng = np.random.default_rng(0)
    S = rng.normal(size=(len(Y), 16, 30)).astype(np.float32)
    S += Y[:, None, None] * 0.3  # a little to learn
    monkeypatch.setattr(triplet_branches, "features", lambda *a: (S, Y, ACTOR))
    # The defaults a set's triplet phase is filled in with: one epoch.
    monkeypatch.setattr(
        triplet_branches,
        "default_pipeline",
        lambda: Pipeline([("clf", EmotionEmbeddingClassifier(triplet_epochs=1))]),
    )
    softmax_fits = []

    def tiny_fit(S, y, actor, params, protocol, fold, seed):
        assert params == {"triplet_epochs": 0}
        train, test = ablate.folds(protocol, y, actor)[fold]
        clf = EmotionEmbeddingClassifier(  # triplet settings none of the sets keep
            width=8,
            n_networks=1,
            pretrain_epochs=1,
            triplet_epochs=0,
            triplet_lr=5e-4,
            margin=0.5,
            random_state=fold + 100 * seed,
        )
        clf.fit(S[train], y[train])
        softmax_fits.append(fold)
        return clf, train, test, 0.0

    monkeypatch.setattr(ablate, "fit_fold", tiny_fit)
    networks_built = []
    make_net = classifier_module.make_net
    monkeypatch.setattr(
        classifier_module,
        "make_net",
        lambda *a, **k: networks_built.append(1) or make_net(*a, **k),
    )
    branched = []  # the models each branch trains on
    load = triplet_branches.joblib.load
    monkeypatch.setattr(
        triplet_branches.joblib,
        "load",
        lambda p: branched.append(load(p)) or branched[-1],
    )
    configs = {"defaults": {}, "slower": {"triplet_lr": 1e-5}}

    def screen():
        return triplet_branches.run(
            configs, None, tmp_path, 1, ["actor"], n_folds=2, log=str
        )

    rows = screen()
    assert softmax_fits == [0, 1] and len(networks_built) == 2  # the softmax fits'
    assert [len(rows[name]["actor"]) for name in configs] == [2, 2]
    # each branch went on from its softmax epoch with one triplet epoch
    assert [len(clf.net_.history) for clf in branched] == [2, 2, 2, 2]
    assert [(clf.triplet_lr, clf.margin) for clf in branched] == [
        (1e-3, 0.2),
        (1e-5, 0.2),
    ] * 2
    assert screen() == rows  # read back: neither phase trained again
    assert len(branched) == 4
    (tmp_path / "branches.jsonl").unlink()
    again = screen()  # trained again from the same weights, with the same draws
    assert [again[name]["actor"] for name in configs] == [
        rows[name]["actor"] for name in configs
    ]
    assert softmax_fits == [0, 1] and len(networks_built) == 2 and len(branched) == 8
    with pytest.raises(ValueError, match=r"'wider' sets \['width'\]"):
        triplet_branches.check_configs({"wider": {"width": 64}})


def test_screen_records_are_read_back_by_key(tmp_path):
    """ablate.record_fit appends a fit's record to a screen's store, and
    cached_fits reads them back by key, the last of a key winning; each
    store is its own file."""
    import ablate

    assert ablate.cached_fits(tmp_path) == {}
    ablate.record_fit(tmp_path, {"key": "a", "score": 0.5})
    ablate.record_fit(tmp_path, {"key": "b", "score": 0.6})
    ablate.record_fit(tmp_path, {"key": "a", "score": 0.7})
    ablate.record_fit(tmp_path, {"key": "a", "score": 0.1}, "other.jsonl")
    assert ablate.cached_fits(tmp_path) == {
        "a": {"key": "a", "score": 0.7},
        "b": {"key": "b", "score": 0.6},
    }
    assert ablate.cached_fits(tmp_path, "other.jsonl") == {
        "a": {"key": "a", "score": 0.1}
    }
    assert (tmp_path / "ablate.jsonl").read_text().count("\n") == 3


def test_mutual_divergence_matches_the_definition():
    """mutual_learning.py's loss term: the mean over peers of
    sum_c p_peer(c) log(p_peer(c) / p_own(c)), averaged over the clips, with
    no gradient to the peers."""
    import mutual_learning
    import torch

    g = torch.Generator().manual_seed(0)
    own = torch.randn(5, 4, generator=g, requires_grad=True)
    peers = [torch.randn(5, 4, generator=g, requires_grad=True) for _ in range(2)]
    got = mutual_learning.mutual_divergence(own, peers)
    expected = 0.0
    for peer in peers:
        for i in range(5):
            p = torch.softmax(peer[i].detach(), 0)
            q = torch.softmax(own[i].detach(), 0)
            expected += float(sum(p[c] * torch.log(p[c] / q[c]) for c in range(4)))
    assert float(got.detach()) == pytest.approx(expected / 5 / 2, rel=1e-5)
    got.backward()
    assert own.grad is not None and all(peer.grad is None for peer in peers)


def test_mutual_learning_members_exchange_logits_in_step():
    """Each member takes the others' logits of the same step, however the
    threads interleave."""
    import threading

    import mutual_learning

    exchange = mutual_learning.LogitExchange(3)
    got = {}

    def member(k):
        got[k] = [exchange.swap(k, (k, step)) for step in range(20)]

    threads = [threading.Thread(target=member, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(3):
        assert got[k] == [[(j, step) for j in range(3) if j != k] for step in range(20)]


def test_mutual_learning_patch_trains_members_on_one_stream(monkeypatch, audio):
    """With the patch, the members keep their own initial weights but draw
    their batches, crops and masks from the first member's seed, and mutual
    learning adds the divergence to the softmax phase's loss."""
    import mutual_learning

    import sklearn_tser._classifier as classifier_module

    make_net = classifier_module.make_net
    monkeypatch.setattr(classifier_module, "make_net", make_net)  # put back after
    X, y = audio
    X = LogMelTransformer(output="padded").fit_transform(X)
    # n_jobs=2: the members exchange their logits, so they train at once.
    params = dict(pretrain_epochs=2, triplet_epochs=1, width=8, n_layers=6, n_jobs=2)
    plain = EmotionEmbeddingClassifier(**params, random_state=0).fit(X, y)
    mutual_learning.patch(1.0, shared_stream=True)
    mutual = EmotionEmbeddingClassifier(**params, random_state=0).fit(X, y)
    first, second = (net.history for net in mutual.net_.nets)
    # The divergence only adds to the loss of each softmax epoch.
    for k, net in enumerate(mutual.net_.nets):
        assert (
            net.history[0, "train_loss"] != plain.net_.nets[k].history[0, "train_loss"]
        )
    assert first[0, "train_loss"] != second[0, "train_loss"]  # own weights
    # Without the divergence, each member sees the first member's stream: the
    # second then trains as the first did with its own weights.
    classifier_module.make_net = make_net
    mutual_learning.patch(0.0, shared_stream=True)
    shared = EmotionEmbeddingClassifier(**params, random_state=0).fit(X, y)
    assert shared.net_.nets[0].history[-1, "train_loss"] == pytest.approx(
        plain.net_.nets[0].history[-1, "train_loss"]
    )
    assert shared.net_.nets[1].history[-1, "train_loss"] != pytest.approx(
        plain.net_.nets[1].history[-1, "train_loss"]
    )


def test_batch_norm_statistics_recomputed_as_the_mean_of_batches(audio):
    """batch_norm_statistics.py: with ``clean``, each normalisation layer's
    running mean and variance become the plain means over the passes' batches
    of their statistics over valid frames (the variance unbiased), and the
    weights do not move; ``continued`` carries the running average on."""
    import batch_norm_statistics as bns
    import torch

    from sklearn_tser._training import member_nets, speech_regions
    from sklearn_tser._validation import check_spectrograms

    X, y = audio
    S = LogMelTransformer(output="padded").fit_transform(X)
    clf = EmotionEmbeddingClassifier(**TINY).fit(S, y)
    S = check_spectrograms(S)
    dataset = bns.SpectrogramDataset(
        S,
        *speech_regions(S, None),
        np.searchsorted(clf.classes_, y),
        mean=clf.feature_mean_,
        std=clf.feature_std_,
        scales=True,  # what the views' rooms read
    )
    (net,) = member_nets(clf.net_)
    # The second layer's: the first normalises its input with each batch's own
    # statistics, as training does.
    norm = bns.batch_norms(net.module_)[1]
    weights = {k: v.clone() for k, v in net.module_.state_dict().items()}
    seen = []

    def keep(module, args):
        x, mask = args[0], (args[1] if len(args) > 1 else None)
        if mask is None:
            mask = torch.ones(x.shape[0], 1, x.shape[2])
        n = mask.sum()
        mean = (x * mask).sum(dim=(0, 2)) / n
        var = ((x - mean[:, None]) * mask).square().sum(dim=(0, 2)) / (n - 1)
        seen.append((mean, var))

    hook = norm.register_forward_pre_hook(keep)
    bns.recompute_statistics(net, dataset, "clean")
    hook.remove()
    assert len(seen) > 1  # several batches, each weighted alike
    means, variances = (torch.stack(s).mean(0) for s in zip(*seen, strict=True))
    torch.testing.assert_close(norm.running_mean, means, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(norm.running_var, variances, rtol=1e-4, atol=1e-5)
    state = net.module_.state_dict()
    assert all(
        torch.equal(state[k], v)
        for k, v in weights.items()
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    )
    assert not net.module_.training and norm.momentum == 0.1
    before = norm.running_mean.clone()
    bns.recompute_statistics(net, dataset, "continued")
    assert not torch.allclose(norm.running_mean, before)  # carried on, not reset


def test_test_time_warps_average_the_embeddings_of_warped_clips(audio, tmp_path):
    """test_time_augmentation.py: a warp of 1 alone gives the classifier's own
    embeddings, and warps average each network's unit embeddings of the clip
    with its bands resampled (a slow reference: one clip at a time, bands
    interpolated by numpy), then join them as the ensemble does."""
    import test_time_augmentation as tta
    import torch

    from sklearn_tser._losses import l2_normalize
    from sklearn_tser._training import member_nets

    X, y = audio
    S = LogMelTransformer(output="padded").fit_transform(X)
    clf = EmotionEmbeddingClassifier(**{**TINY, "n_networks": 2}).fit(S, y)
    clips = tta.clip_set(clf, S)
    rates = (0.9, 1.0, 1.2)
    embedded = tta.warped(clf, clips, rates)
    as_is = tta.over_warps(embedded, [1.0])
    np.testing.assert_allclose(as_is, clf.transform(S), atol=1e-6)

    parts = []
    for net in member_nets(clf.net_):
        each = np.zeros((len(S), clf.embedding_dim))
        for i, clip in enumerate(S):
            clip = clip[:, ~np.isnan(clip).any(axis=0)]
            x = (clip - clf.feature_mean_[:, None]) / clf.feature_std_[:, None]
            n_mels = x.shape[0]
            for rate in rates:
                at = np.minimum(np.arange(n_mels) * rate, n_mels - 1)
                warped = np.stack(
                    [np.interp(at, np.arange(n_mels), frame) for frame in x.T], axis=1
                )
                with torch.no_grad():
                    emb = net.module_.embed(
                        torch.tensor(warped[None], dtype=torch.float32),
                        torch.tensor([x.shape[1]]),
                    )
                each[i] += l2_normalize(emb.numpy())[0]
        parts.append(l2_normalize(each))
    expected = np.hstack(parts) / np.sqrt(len(parts))
    got = tta.over_warps(embedded, rates)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert not np.allclose(got, clf.transform(S), atol=1e-3)  # the warps count

    views = tta.over_views(clf, clips, 2)
    np.testing.assert_allclose(np.linalg.norm(views, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(views, tta.over_views(clf, clips, 2))  # seeded
    assert not np.allclose(views, clf.transform(S), atol=1e-3)
    later = tta.over_views(clf, clips, 2, first_view=1)  # seeds 1 and 2
    assert not np.allclose(later, views, atol=1e-3)
    one = tta.over_views(clf, clips, 1, first_view=1)
    two = tta.over_views(clf, clips, 1, first_view=2)
    halves = [np.split(e, 2, axis=1) for e in (one, two)]  # each network's part
    expected = np.hstack(
        [l2_normalize(a + b) for a, b in zip(*halves, strict=True)]
    ) / np.sqrt(2)
    np.testing.assert_allclose(later, expected, atol=1e-6)

    # The rules' "as fitted" is predict's accuracy; a saved fit is scored
    # again the same, and refused with other spectrograms.
    y = np.asarray(y)
    tr, te = np.arange(0, 24, 2), np.arange(1, 24, 2)
    rules = tta.accuracies(clf, S[tr], y[tr], S[te], y[te])
    assert set(rules) == set(tta.RULES)
    centroids = tta.class_centroids(
        clf.transform(S[tr]), np.searchsorted(clf.classes_, y[tr]), 2
    )
    pred = clf.classes_[(clf.transform(S[te]) @ centroids.T).argmax(axis=1)]
    assert rules["as fitted"][0] == pytest.approx(np.mean(pred == y[te]))
    tta.save_fit(tmp_path / "fit1.joblib", clf, tr, te, S)
    assert tta.rescore(tmp_path, S, y, first_view=0) == [rules]
    with pytest.raises(ValueError, match="other spectrograms than these 23"):
        tta.rescore(tmp_path, S[:-1], y[:-1], first_view=0)


def test_test_time_augmentation_summary_pairs_each_rule_with_the_fit():
    import test_time_augmentation as tta

    scored = [  # (WA, UA) of each rule, two fits
        {
            "as fitted": (0.80, 0.70),
            "warps 3%": (0.82, 0.70),
            "warps 5%": (0.80, 0.72),
            "view centroids": (0.79, 0.70),
        },
        {
            "as fitted": (0.90, 0.60),
            "warps 3%": (0.91, 0.60),
            "warps 5%": (0.88, 0.66),
            "view centroids": (0.90, 0.61),
        },
    ]
    rows = {r.split(" | ")[0][2:]: r for r in tta.summary(scored).splitlines()[2:]}
    assert rows["as fitted"] == "| as fitted | 85.00 |  |  |  |"
    assert rows["warps 3%"] == "| warps 3% | 86.50 | +1.50 | 0.50 | 2 / 0 |"
    assert rows["warps 5%"] == "| warps 5% | 84.00 | -1.00 | 1.00 | 0 / 1 |"
    assert rows["view centroids"] == "| view centroids | 84.50 | -0.50 | 0.50 | 0 / 1 |"
    ua = tta.summary(scored, "UA").splitlines()
    assert ua[0].startswith("| rule | mean UA % |")
    assert ua[4] == "| warps 5% | 69.00 | +4.00 | 2.00 | 2 / 0 |"
    assert ua[5] == "| view centroids | 65.50 | +0.50 | 0.50 | 1 / 0 |"
