"""Tests of the command line (sklearn_tser._cli, python -m sklearn_tser)."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from sklearn.pipeline import Pipeline

from sklearn_tser import EmotionEmbeddingClassifier, __version__, load, save
from sklearn_tser._cli import main, parse_params
from sklearn_tser.datasets import make_emotional_speech
from sklearn_tser.exceptions import MissingGroupsWarning

# A network small enough that a fold trains in about a second (one network:
# the default ensemble of two would double the work of every test).
TINY = [
    "--param",
    "n_networks=1",
    "--param",
    "n_layers=6",
    "--param",
    "width=4",
    "--param",
    "embedding_dim=4",
    "--param",
    "pretrain_epochs=2",
    "--param",
    "triplet_epochs=1",
    "--param",
    "mel__n_mels=16",
]
N_CLIPS = 24

# Such tiny networks may collapse in the triplet phase; that is not under test.
pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn_tser.exceptions.EmbeddingCollapseWarning"
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A folder corpus of synthetic clips: one sub-folder per emotion."""
    root = tmp_path_factory.mktemp("corpus")
    bunch = make_emotional_speech(
        n_samples=N_CLIPS,
        n_classes=2,
        min_duration=0.5,
        max_duration=1.0,
        random_state=0,
    )
    for k, (clip, label) in enumerate(zip(bunch.data, bunch.target, strict=True)):
        (root / label).mkdir(exist_ok=True)
        sf.write(root / label / f"clip{k:02d}.wav", clip, 16000)
    return root


@pytest.fixture(scope="module")
def model_file(corpus, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    status = main(
        ["train", "--dataset", "folder", "--data", str(corpus), "-o", str(path)] + TINY
    )
    assert status == 0
    return path


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_demo_names_an_ensemble(capsys, tmp_path):
    status, out, err = run(
        capsys,
        "demo",
        "--output",
        tmp_path,
        "--n-samples",
        24,
        "--n-splits",
        2,
        *TINY,
        "--param",
        "n_networks=2",
    )
    assert status == 0, err
    assert "width 4, embedding 4 x 2 networks, up to 2 softmax" in out


def test_demo_runs_and_writes_embedding_plot(capsys, tmp_path):
    out_dir = tmp_path / "demo"
    status, out, err = run(
        capsys, "demo", "--output", out_dir, "--n-samples", 24, "--n-splits", 2, *TINY
    )
    assert status == 0, err
    assert "SYNTHETIC" in out
    assert "resnet-6, width 4, embedding 4, up to 2 softmax + 1 triplet" in out
    assert "changed by --param" in out
    assert "[1/2]" in out and "[2/2]" in out
    assert "2-fold CV by speaker" in out
    # WA, UA, F1 and ECE with mean ± std in the table.
    table = out[out.index("Scores (mean ± std over folds):") :]
    row = next(line for line in table.splitlines() if line.startswith("2-fold CV"))
    assert row.count("±") == 4
    # The confusion matrix counts every clip once.
    lines = out.splitlines()
    start = lines.index("rows: true emotion, columns: predicted emotion")
    counts = [list(map(int, line.split()[1:])) for line in lines[start + 2 :][:4]]
    assert np.sum(counts) == 24
    png = out_dir / "embeddings_pca.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out_dir / "centroid_angles.png").stat().st_size > 1000


def test_demo_trains_the_default_classifier(monkeypatch, capsys, tmp_path):
    """The README's main job trains the default pipeline, on few clips."""
    from sklearn_tser import _cli

    built = []

    class Built(Exception):
        pass

    def record(params=None, **kwargs):
        built.append(_cli_build_pipeline(params, **kwargs))
        raise Built  # stop before training: only the configuration is checked

    _cli_build_pipeline = _cli.build_pipeline
    monkeypatch.setattr(_cli, "build_pipeline", record)
    with pytest.raises(Built):
        main(["demo", "--output", str(tmp_path)])
    clf = built[0].named_steps["clf"]
    defaults = EmotionEmbeddingClassifier().get_params()
    own = ("random_state", "verbose")
    assert {k: v for k, v in clf.get_params().items() if k not in own} == {
        k: v for k, v in defaults.items() if k not in own
    }
    assert clf.verbose == 1  # progress bars by default in the CLI
    assert _cli.DEMO_N_SAMPLES <= 200


def test_evaluate_folder_paper_protocol(capsys, corpus, tmp_path):
    out_dir = tmp_path / "eval"
    status, out, err = run(
        capsys,
        "evaluate",
        "--dataset",
        "folder",
        "--data",
        corpus,
        "--protocol",
        "paper",
        "--n-splits",
        3,
        "--output",
        out_dir,
        *TINY,
    )
    assert status == 0, err
    assert f"folder: {N_CLIPS} clips" in out
    assert "3-fold CV" in out and "70/30 split" in out
    for k in (1, 2, 3):
        assert f"[{k}/3] WA " in out
    assert "UA" in out and "F1" in out and "±" in out
    assert out.count("Confusion matrix") == 2

    with open(out_dir / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    cv_rows = [r for r in rows if r["evaluation"] == "3-fold CV"]
    split_rows = [r for r in rows if r["evaluation"] == "70/30 split"]
    assert sorted(r["file"] for r in cv_rows) == sorted(
        str(p) for p in corpus.rglob("*.wav")
    )
    assert len(split_rows) == 8  # ceil(0.3 * 24)
    for r in rows:
        assert r["true"] in {"neutral", "happy"}
        assert r["predicted"] in {"neutral", "happy"}
        assert float(r["proba_happy"]) + float(r["proba_neutral"]) == pytest.approx(
            1, abs=1e-5
        )
    with open(out_dir / "scores.csv") as f:
        assert len(list(csv.DictReader(f))) == 3 + 1

    for name in (
        "confusion_matrix_3_fold_cv.png",
        "confusion_matrix_70_30_split.png",
        "embeddings_pca.png",
        "embeddings_tsne.png",
        "centroid_angles.png",
    ):
        assert (out_dir / name).stat().st_size > 1000, name
    model = load(out_dir / "model.safetensors")
    assert isinstance(model, Pipeline)
    assert model.predict([str(next(corpus.rglob("*.wav")))])[0] in model.classes_


def test_evaluate_speaker_protocol_needs_speakers(capsys, corpus):
    status, _, err = run(
        capsys, "evaluate", "--dataset", "folder", "--data", corpus, *TINY
    )
    assert status == 2
    assert "--protocol speaker needs the speaker of every clip" in err
    assert "--protocol paper" in err


def _ravdess_subset(ravdess_dir, tmp_path):
    """8 clips of each of 4 actors of RAVDESS, as links."""
    subset = tmp_path / "ravdess"
    for actor in ("Actor_01", "Actor_02", "Actor_03", "Actor_04"):
        (subset / actor).mkdir(parents=True)
        for f in sorted((ravdess_dir / actor).glob("*.flac"))[:8]:
            (subset / actor / f.name).symlink_to(f)
    return subset


def test_evaluate_ravdess_speaker_protocol(capsys, ravdess_dir, tmp_path):
    """Folds grouped by actor on a 4-actor subset of RAVDESS (copied as links)."""
    subset = _ravdess_subset(ravdess_dir, tmp_path)
    status, out, err = run(
        capsys,
        "evaluate",
        "--dataset",
        "ravdess",
        "--data",
        subset,
        "--n-splits",
        2,
        *TINY,
    )
    assert status == 0, err
    assert "ravdess: 32 clips, 4 actors" in out
    assert "2-fold CV by actor" in out and "[2/2]" in out


def test_train_then_predict_table(capsys, corpus, model_file):
    files = sorted(str(p) for p in corpus.rglob("*.wav"))[:3]
    status, out, err = run(capsys, "predict", model_file, *files)
    assert status == 0, err
    header, *rows = out.strip().splitlines()
    assert header.split() == ["file", "emotion", "happy", "neutral"]
    assert len(rows) == 3
    for f, row in zip(files, rows, strict=True):
        name, label, p_happy, p_neutral = row.split()
        assert name == f
        assert label in {"happy", "neutral"}
        assert float(p_happy) + float(p_neutral) == pytest.approx(1, abs=2e-3)
        assert label == ("happy" if float(p_happy) > float(p_neutral) else "neutral")


def test_train_then_predict_json(capsys, corpus, model_file):
    files = sorted(str(p) for p in corpus.rglob("*.wav"))[-2:]
    status, out, err = run(capsys, "predict", model_file, *files, "--json")
    assert status == 0, err
    rows = json.loads(out)
    assert [r["file"] for r in rows] == files
    model = load(model_file)
    expected = model.predict(files)
    for r, label in zip(rows, expected, strict=True):
        assert r["label"] == label
        assert set(r["probabilities"]) == {"happy", "neutral"}
        assert sum(r["probabilities"].values()) == pytest.approx(1, abs=1e-5)


def test_train_saves_the_requested_parameters(model_file):
    model = load(model_file)
    clf = model.named_steps["clf"]
    assert isinstance(clf, EmotionEmbeddingClassifier)
    assert (clf.width, clf.embedding_dim, clf.pretrain_epochs) == (4, 4, 2)
    assert model.named_steps["mel"].n_mels == 16
    assert clf.random_state == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--param", "n_layer=6"], "unknown parameter 'n_layer'"),
        (["--param", "n_layers=3"], "'n_layers' parameter of EmotionEmbedding"),
        (["--param", "architecture=transformer"], "'architecture' parameter"),
        (["--param", "n_layers"], "--param expects key=value"),
        (["--params", "{width: 4}"], "--params must be a JSON object"),
        (["--params", "[1, 2]"], "--params must be a JSON object, got list"),
        (["--n-splits", "50", "--protocol", "paper"], "--n-splits 50 is more"),
        (["--n-splits", "1", "--protocol", "paper"], "--n-splits must be 2 or more"),
        (["--protocol", "paper", "--refit"], "--refit saves a model, so it needs"),
        (["--param", "speaker_adversarial=0.1"], "folder has no speakers"),
        (["--param", "standardize=group"], "standardize='group' needs the speaker"),
        (
            ["--param", "center_embeddings=group"],
            "center_embeddings='group' needs the speaker",
        ),
    ],
)
def test_evaluate_argument_errors(capsys, corpus, argv, message):
    status, out, err = run(
        capsys, "evaluate", "--dataset", "folder", "--data", corpus, *argv
    )
    assert status == 2
    assert message in err
    assert err.startswith("sklearn-tser evaluate: error: ")
    assert "Traceback" not in err and "[1/" not in out


def test_demo_bad_n_splits(capsys, tmp_path):
    status, out, err = run(capsys, "demo", "--n-splits", 9, "--output", tmp_path)
    assert status == 2
    assert "--n-splits must be from 2 to 8 speakers, got 9" in err
    assert "Computing" not in out
    status, out, err = run(capsys, "demo", "--n-samples", 8, "--output", tmp_path)
    assert status == 2
    assert "--n-samples 8 makes clips of 2 speaker(s), fewer than the 3 folds" in err
    assert "use --n-samples 12 or more, or --n-splits 2." in err
    assert "Computing" not in out


def test_missing_data_folder(capsys, tmp_path):
    status, _, err = run(
        capsys, "train", "--dataset", "ravdess", "--data", tmp_path / "nope"
    )
    assert status == 2
    assert "does not exist" in err and "nope" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "the following arguments are required: COMMAND"),
        (["evaluate", "--data", "x"], "required: --dataset"),
        (["evaluate", "--dataset", "timit", "--data", "x"], "invalid choice: 'timit'"),
        (["evaluate", "--dataset", "folder", "--data", "x", "--protocol", "lol"],
         "invalid choice: 'lol'"),
        (["demo", "--n-samples", "0"], "expected an integer >= 1, got 0"),
        (["demo", "--n-splits", "two"], "expected an integer, got 'two'"),
        (["predict", "model.safetensors"], "required: FILE"),
    ],
)  # fmt: skip
def test_argparse_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_predict_errors(capsys, tmp_path, model_file, corpus):
    status, _, err = run(capsys, "predict", tmp_path / "none.safetensors", "a.wav")
    assert status == 2 and "model file" in err and "does not exist" in err

    bad = tmp_path / "bad.safetensors"
    bad.write_text("not a model")
    status, _, err = run(capsys, "predict", bad, "a.wav")
    assert status == 2 and "could not read model file" in err

    status, _, err = run(capsys, "predict", model_file, tmp_path / "missing.wav")
    assert status == 2 and "missing.wav" in err and "does not exist" in err

    bare = tmp_path / "bare.safetensors"
    save(load(model_file).named_steps["clf"], bare)
    status, _, err = run(capsys, "predict", bare, next(corpus.rglob("*.wav")))
    assert status == 2 and "reads spectrograms, not audio files" in err


def test_parse_params():
    params = parse_params(
        ["n_layers=6", "triplet_lr=null", "architecture=gru", "mel__fmax=8000.0"],
        '{"width": 8, "n_layers": 9, "warm_start": true}',
    )
    assert params == {
        "n_layers": 6,  # --param wins over --params
        "width": 8,
        "warm_start": True,
        "triplet_lr": None,
        "architecture": "gru",
        "mel__fmax": 8000.0,
    }


def test_python_dash_m_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "sklearn_tser", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == __version__


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_ctrl_c_exits_130_and_leaves_an_existing_model_untouched(
    command, capsys, corpus, tmp_path, monkeypatch
):
    from sklearn_tser._training import EmbeddingNet

    step = EmbeddingNet.train_step_single
    calls = []

    def interrupted(self, *args, **kwargs):  # Ctrl-C on the third batch
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return step(self, *args, **kwargs)

    monkeypatch.setattr(EmbeddingNet, "train_step_single", interrupted)
    if command == "train":
        target = tmp_path / "model.safetensors"
        argv = ["train", "--dataset", "folder", "--data", str(corpus)]
        argv += ["-o", str(target), *TINY]
    else:
        target = tmp_path / "out" / "model.safetensors"
        argv = ["evaluate", "--dataset", "folder", "--data", str(corpus)]
        argv += ["--protocol", "paper", "--n-splits", "3", "--refit"]
        argv += ["--output", str(tmp_path / "out"), *TINY]
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(b"the model from yesterday")
    assert main(argv) == 130
    assert target.read_bytes() == b"the model from yesterday"
    assert "interrupted; no scores reported and no model written" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_a_single_emotion_is_one_line_before_any_work(command, capsys, tmp_path):
    for k in range(4):
        (tmp_path / "data" / "angry").mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / "data" / "angry" / f"c{k}.wav", np.zeros(1600), 16000)
    argv = [command, "--dataset", "folder", "--data", tmp_path / "data"]
    argv += ["-o", tmp_path / "m.safetensors"] if command == "train" else []
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert err.strip().splitlines() == [
        f"sklearn-tser {command}: error: '{tmp_path / 'data'}' holds a single "
        "emotion ('angry', 4 clips); training needs clips of at least two emotions."
    ]
    assert "spectrograms" not in out


def test_a_model_path_that_cannot_be_written_stops_before_any_work(
    capsys, corpus, tmp_path
):
    (tmp_path / "models").mkdir()
    argv = ["train", "--dataset", "folder", "--data", corpus, *TINY]
    status, out, err = run(capsys, *argv, "-o", tmp_path / "models")
    assert status == 2
    assert f"cannot write the model to '{tmp_path / 'models'}': it is a folder" in err
    assert "spectrograms" not in out
    (tmp_path / "out" / "model.safetensors").mkdir(parents=True)
    argv = ["evaluate", "--dataset", "folder", "--data", corpus, "--protocol"]
    argv += ["paper", *TINY]
    status, out, err = run(capsys, *argv, "--output", tmp_path / "out")
    assert status == 2 and "it is a folder" in err and "spectrograms" not in out
    (tmp_path / "a_file").write_text("")
    status, out, err = run(capsys, *argv, "--output", tmp_path / "a_file")
    assert status == 2 and "cannot make the output folder" in err


def test_a_device_without_cuda_is_a_command_line_error(capsys, corpus, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    argv = ["train", "--dataset", "folder", "--data", corpus, *TINY]
    model = tmp_path / "m.safetensors"
    status, out, err = run(capsys, *argv, "--param", "device=cuda", "-o", model)
    assert status == 2 and "device='cuda' asks for CUDA" in err
    assert "spectrograms" not in out


def test_a_70_30_split_too_small_for_the_emotions_is_a_command_line_error(
    capsys, tmp_path
):
    # 2 clips of each of 4 emotions: 3 test clips cannot hold the 4 emotions.
    for emotion in ("angry", "calm", "happy", "sad"):
        (tmp_path / emotion).mkdir()
        for k in range(2):
            sf.write(tmp_path / emotion / f"c{k}.wav", np.zeros(1600), 16000)
    argv = ["evaluate", "--dataset", "folder", "--data", tmp_path, *TINY]
    status, out, err = run(capsys, *argv, "--protocol", "paper", "--n-splits", "2")
    assert status == 2
    assert "the 70/30 split of --protocol paper cannot hold every emotion" in err
    assert "spectrograms" not in out


def test_ragged_spectrograms_through_the_command_line(capsys, corpus, tmp_path):
    # output="ragged", which the padding warning advises, is indexed by clip.
    argv = ["evaluate", "--dataset", "folder", "--data", corpus, *TINY]
    argv += ["--param", "mel__output=ragged", "--protocol", "paper", "--n-splits", "2"]
    status, out, err = run(capsys, *argv, "--output", tmp_path / "out")
    assert status == 0, err
    assert "16 mel bands, up to" in out
    assert (tmp_path / "out" / "model.safetensors").is_file()
    rows = list(csv.DictReader(open(tmp_path / "out" / "predictions.csv")))
    assert len(rows) > 0


def test_predict_reads_folders_and_reports_unreadable_files(
    capsys, tmp_path, model_file, corpus
):
    files = sorted(str(p) for p in corpus.rglob("*.wav"))
    status, out, err = run(capsys, "predict", model_file, corpus, "--json")
    assert status == 0, err
    assert [r["file"] for r in json.loads(out)] == files

    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really audio")
    status, out, err = run(capsys, "predict", model_file, files[0], broken, files[1])
    assert status == 1
    rows = out.strip().splitlines()[1:]
    assert [r.split()[0] for r in rows] == files[:2]
    assert f"could not read {broken}" in err
    assert "1 of 3 files could not be read" in err

    # A file that decodes but holds NaN is skipped the same way, and is named
    # by its path, not by its place among the files checked one at a time.
    wave = np.full(8000, 0.1, dtype=np.float32)
    wave[100] = np.nan
    nan_file = tmp_path / "take (1) nan.wav"  # brackets, as a name may have
    sf.write(nan_file, wave, 16000, subtype="FLOAT")
    status, out, err = run(capsys, "predict", model_file, files[0], nan_file, files[1])
    assert status == 1
    assert [r.split()[0] for r in out.strip().splitlines()[1:]] == files[:2]
    assert f"could not read {nan_file}: holds 1 NaN or infinite samples" in err
    assert "Clip 0" not in err

    status, _, err = run(capsys, "predict", tmp_path, "a.wav")
    assert status == 2 and "is a directory" in err
    (tmp_path / "empty").mkdir()
    status, _, err = run(capsys, "predict", model_file, tmp_path / "empty")
    assert status == 2 and "holds no audio file" in err


def test_speakers_select_a_subset(capsys, ravdess_dir, tmp_path):
    argv = ["evaluate", "--dataset", "ravdess", "--data", ravdess_dir]
    status, out, err = run(capsys, *argv, "--speakers", 3, 4, *TINY)
    assert status == 0, err
    # 2 actors: the speaker protocol has 2 folds, not the default 6.
    assert "ravdess: 120 clips, 2 actors" in out and "2-fold CV by actor" in out
    status, _, err = run(capsys, *argv, "--actors", 3)
    assert status == 2 and "at least 2 speakers; these are all of one (3)" in err
    argv = ["train", "--dataset", "folder", "--data", tmp_path, "--speakers", 1]
    status, _, err = run(capsys, *argv)
    assert status == 2 and "a folder corpus does not" in err


@pytest.mark.parametrize("flags, verbose", [([], 1), (["-v"], 2), (["--quiet"], 0)])
def test_progress_is_shown_by_default(monkeypatch, tmp_path, flags, verbose):
    from sklearn_tser import _cli

    built = []

    class Built(Exception):
        pass

    def record(params=None, **kwargs):
        built.append(kwargs["verbose"])
        raise Built

    monkeypatch.setattr(_cli, "build_pipeline", record)
    with pytest.raises(Built):
        main(["demo", "--output", str(tmp_path), *flags])
    assert built == [verbose]


def test_evaluation_predicts_with_the_test_speakers(capsys):
    """With standardize="group", each fold's test speakers are standardised
    with their own clips, and cross_validate's scorer (which cannot pass them)
    does not warn."""
    import warnings

    from _params import TINY, make_spectrograms
    from sklearn.model_selection import GroupKFold

    from sklearn_tser._cli import run_evaluation

    S, y = make_spectrograms()
    groups = np.repeat(np.arange(6), 10)
    clf = EmotionEmbeddingClassifier(**TINY, standardize="group")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        result = run_evaluation(
            "by speaker", GroupKFold(3), clf, S, y, groups, use_groups=True
        )
    for fold in result["folds"]:
        test = fold["test"]
        np.testing.assert_array_equal(
            fold["proba"], fold["model"].predict_proba(S[test], groups=groups[test])
        )


def test_per_speaker_standardisation_through_the_command_line(
    capsys, ravdess_dir, tmp_path
):
    """standardize=group: the refit gets the actors whatever the protocol, the
    figures embed each fold's test actors apart, and predict says in its own
    terms that the files it is given are taken as one speaker."""
    import warnings

    subset = _ravdess_subset(ravdess_dir, tmp_path)
    out_dir = tmp_path / "out"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, out, err = _evaluate_and_predict(capsys, subset, out_dir)
    assert not [w for w in caught if issubclass(w.category, MissingGroupsWarning)]
    assert status == 0, err
    assert (out_dir / "embeddings_pca.png").is_file()
    assert "the 3 files are taken as one speaker (run predict once" in err
    assert len(out.strip().splitlines()) == 4


def _evaluate_and_predict(capsys, subset, out_dir):
    status, out, err = run(
        capsys,
        "evaluate",
        "--dataset",
        "ravdess",
        "--data",
        subset,
        "--protocol",
        "paper",
        "--n-splits",
        2,
        "--refit",
        "--output",
        out_dir,
        *TINY,
        "--param",
        "standardize=group",
    )
    assert status == 0, err
    files = sorted(str(p) for p in subset.rglob("*.flac"))[:3]
    return run(capsys, "predict", out_dir / "model.safetensors", *files)
