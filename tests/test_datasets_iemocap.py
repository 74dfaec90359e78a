"""Tests of load_iemocap on a fake release that copies the real file formats.

The label files reproduce the EmoEvaluation format line for line: the header,
the blank lines, the tab-separated turn lines and the C-/A- annotator lines.
The tree also has the Attribute/, Categorical/ and Self-evaluation/ sub-folders
and a macOS ``._`` resource fork, all of which must be ignored.
"""

from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from sklearn_tser.datasets import load_iemocap

HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
ANNOTATIONS = (
    "C-E2:\tNeutral;\t()\n"
    "C-E3:\tNeutral;\t()\n"
    "C-E4:\tNeutral;\t()\n"
    "C-F1:\tNeutral;\t(curious)\n"
    "A-E3:\tval 3; act 2; dom  2;\t()\n"
    "A-F1:\tval 3; act 3; dom  3;\t()\n"
)
# session -> dialog -> [(turn suffix, code, (V, A, D))]
CORPUS = {
    1: {
        "Ses01F_impro01": [
            ("F000", "neu", (2.5, 2.5, 2.5)),
            ("F001", "hap", (4.0, 3.5, 3.0)),
            ("M000", "exc", (4.5, 4.0, 3.5)),
            ("M001", "xxx", (3.0, 3.0, 3.0)),
            ("F002", "fru", (2.0, 3.5, 3.5)),
        ],
        "Ses01M_script01_1": [
            ("F000", "sad", (1.5, 2.0, 2.0)),
            ("M000", "ang", (1.5, 4.5, 4.0)),
            ("M001", "sur", (3.5, 4.0, 3.0)),
            ("M002", "neu", (3.0, 2.5, 2.5)),
        ],
    },
    2: {
        "Ses02F_impro02": [
            ("F000", "ang", (2.0, 4.0, 4.0)),
            ("M000", "neu", (3.0, 2.0, 3.0)),
            ("F001", "dis", (2.0, 3.0, 3.0)),
            ("M001", "fea", (2.0, 4.0, 2.0)),
            ("F002", "oth", (3.0, 3.0, 3.0)),
        ],
        "Ses02M_script02_2": [
            ("M000", "hap", (4.0, 3.0, 3.0)),
            ("F000", "sad", (1.0, 1.5, 2.0)),
            ("MXX0", "sad", (1.5, 1.5, 2.0)),  # real ids like Ses03F_impro06_FXX0
        ],
    },
}
N_SAMPLES = 800  # 50 ms at 16 kHz


def _label_text(dialog, turns):
    blocks = []
    for i, (suffix, code, (v, a, d)) in enumerate(turns):
        start = 6.2901 + 4 * i
        blocks.append(
            f"[{start:.4f} - {start + 2.0:.4f}]\t{dialog}_{suffix}\t{code}\t"
            f"[{v:.4f}, {a:.4f}, {d:.4f}]\n" + ANNOTATIONS
        )
    return HEADER + "\n".join(blocks) + "\n"


def _write_session(root, session, dialogs):
    base = root / f"Session{session}"
    evaluation = base / "dialog" / "EmoEvaluation"
    for sub in ("Attribute", "Categorical", "Self-evaluation"):
        (evaluation / sub).mkdir(parents=True)
    for dialog, turns in dialogs.items():
        (evaluation / f"{dialog}.txt").write_text(_label_text(dialog, turns))
        (evaluation / "Categorical" / f"{dialog}_e2_cat.txt").write_text(
            f"{dialog}_{turns[0][0]} :Neutral state; ()\n"
        )
        (evaluation / "Attribute" / f"{dialog}_e3_atr.txt").write_text(
            f"{dialog}_{turns[0][0]} :act 2; val 3; dom 2; ()\n"
        )
        (evaluation / "Self-evaluation" / f"{dialog}.anvil").write_text("<xml/>")
        (evaluation / f"._{dialog}.txt").write_bytes(b"\x00\x05\x16\x07\x00\x02")
        wav_dir = base / "sentences" / "wav" / dialog
        wav_dir.mkdir(parents=True)
        for suffix, _, _ in turns:
            tone = 0.1 * np.sin(np.arange(N_SAMPLES) / 5.0)
            sf.write(wav_dir / f"{dialog}_{suffix}.wav", tone, 16000, "PCM_16")
        (wav_dir / f"._{dialog}_{turns[0][0]}.wav").write_bytes(b"\x00\x05")


@pytest.fixture
def release(tmp_path):
    root = tmp_path / "IEMOCAP_full_release"
    for session, dialogs in CORPUS.items():
        _write_session(root, session, dialogs)
    (root / "README.txt").write_text("IEMOCAP release")
    return root


def test_four_class_default_merges_excited_into_happy(release):
    bunch = load_iemocap(release)
    assert len(bunch.data) == len(bunch.target) == 11
    assert Counter(bunch.target) == {"neutral": 3, "happy": 3, "sad": 3, "angry": 2}
    assert list(bunch.target_names) == ["neutral", "happy", "sad", "angry"]
    excited = list(bunch.utterance_id).index("Ses01F_impro01_M000")
    assert bunch.target[excited] == "happy"
    assert "Ses01F_impro01_M001" not in bunch.utterance_id  # xxx
    assert "Ses01F_impro01_F002" not in bunch.utterance_id  # frustrated
    assert all(path.endswith(".wav") for path in bunch.data)
    assert list(bunch.filenames) == bunch.data
    assert "licence-gated" in bunch.DESCR and "Busso" in bunch.DESCR


def test_groups_and_metadata(release):
    bunch = load_iemocap(release)
    assert Counter(bunch.session) == {1: 6, 2: 5}
    i = list(bunch.utterance_id).index("Ses01M_script01_1_F000")
    assert bunch.speaker[i] == "Ses01F"  # the turn's speaker, not the dialog's
    assert bunch.dialog[i] == "Ses01M_script01_1"
    assert not bunch.improvised[i] and bunch.target[i] == "sad"
    assert (bunch.valence[i], bunch.arousal[i], bunch.dominance[i]) == (1.5, 2.0, 2.0)
    assert bunch.data[i] == str(
        release / "Session1/sentences/wav/Ses01M_script01_1/Ses01M_script01_1_F000.wav"
    )
    j = list(bunch.utterance_id).index("Ses02F_impro02_M000")
    assert bunch.speaker[j] == "Ses02M" and bunch.improvised[j]
    assert set(bunch.speaker) == {"Ses01F", "Ses01M", "Ses02F", "Ses02M"}
    k = list(bunch.utterance_id).index("Ses02M_script02_2_MXX0")
    assert bunch.speaker[k] == "Ses02M" and bunch.dialog[k] == "Ses02M_script02_2"
    assert bunch.valence.dtype == float and bunch.improvised.dtype == bool
    order = list(zip(bunch.session, bunch.data, strict=True))
    assert order == sorted(order)


def test_all_emotions(release):
    bunch = load_iemocap(release, emotions="all")
    assert len(bunch.data) == 16
    assert list(bunch.target_names) == [
        "neutral",
        "happy",
        "excited",
        "sad",
        "angry",
        "frustrated",
        "surprised",
        "fearful",
        "disgust",
        "other",
    ]


def test_explicit_emotions_are_not_merged(release):
    bunch = load_iemocap(release, emotions=["excited", "happy"])
    assert Counter(bunch.target) == {"happy": 2, "excited": 1}
    assert list(bunch.target_names) == ["happy", "excited"]


def test_parent_folder_sessions_audio_and_return_X_y(release):
    bunch = load_iemocap(release.parent, sessions=[2], load_audio=True, sr=8000)
    assert set(bunch.session) == {2} and len(bunch.data) == 5
    assert all(x.dtype == np.float32 and x.shape == (400,) for x in bunch.data)
    X, y = load_iemocap(release, sessions=(1,), return_X_y=True)
    assert len(X) == len(y) == 6 and isinstance(X[0], str)


def test_missing_wav_is_named(release):
    dialog = "Ses01F_impro01"
    (release / f"Session1/sentences/wav/{dialog}/{dialog}_F001.wav").unlink()
    with pytest.raises(FileNotFoundError, match=f"{dialog}_F001 is missing"):
        load_iemocap(release)
    assert len(load_iemocap(release, emotions=["sad"]).data) == 3  # not needed


@pytest.mark.parametrize(
    "line, match",
    [
        ("[6.2 - 8.2]\tSes01F_impro01_F009\tneu\n", "cannot parse the label line"),
        ("[6.2 - 8.2]\tturn9\tneu\t[2.5, 2.5, 2.5]\n", "cannot parse the label line"),
        ("[6.2 - 8.2]\tSes01F_impro01_F009\tjoy\t[2.5, 2.5, 2.5]\n", "'joy'"),
    ],
)
def test_bad_label_lines_name_file_and_line(release, line, match):
    label_file = release / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    with label_file.open("a") as f:
        f.write("\n" + line)
    n_lines = len(label_file.read_text().splitlines())
    with pytest.raises(ValueError, match=match) as excinfo:
        load_iemocap(release)
    assert f"Ses01F_impro01.txt, line {n_lines}" in str(excinfo.value)


def test_duplicate_turn_is_rejected(release):
    evaluation = release / "Session1/dialog/EmoEvaluation"
    text = (evaluation / "Ses01F_impro01.txt").read_text()
    (evaluation / "Ses01F_impro01_copy.txt").write_text(text)
    with pytest.raises(ValueError, match="labelled twice"):
        load_iemocap(release)


def test_session_without_labels(release):
    for f in (release / "Session2/dialog/EmoEvaluation").glob("*.txt"):
        f.unlink()
    with pytest.raises(ValueError, match="session 2 has no label file"):
        load_iemocap(release)
    assert len(load_iemocap(release, sessions=[1]).data) == 6


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"emotions": "5class"}, "not a preset"),
        ({"emotions": ["joy"]}, r"\['joy'\].*valid names"),
        ({"emotions": []}, "no name given"),
        ({"sessions": [6]}, r"\[6\].*1 to 5"),
        ({"sessions": [3]}, r"session\(s\) \[3\] requested"),
        ({"sessions": [1], "emotions": ["disgust"]}, "No IEMOCAP utterance"),
        ({"sr": -1}, "sr must be"),
    ],
)
def test_invalid_options(release, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_iemocap(release, **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"sessions": 1}, r"sessions=\[1\]"), ({"emotions": 3}, r"emotions=\[3\]")],
)
def test_a_bare_value_for_a_list_shows_the_list(release, kwargs, match):
    with pytest.raises(TypeError, match=f"must be an iterable.*wrap it.*{match}"):
        load_iemocap(release, **kwargs)


def test_not_an_iemocap_release(tmp_path):
    with pytest.raises(FileNotFoundError, match="licence-gated"):
        load_iemocap(tmp_path / "missing")
    (tmp_path / "Session_one").mkdir()
    with pytest.raises(ValueError, match="expected folders Session1"):
        load_iemocap(tmp_path)
