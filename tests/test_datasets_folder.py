"""Tests of load_emotion_folder on fake corpora in tmp_path."""

import numpy as np
import pytest
import soundfile as sf

from sklearn_tser.datasets import load_emotion_folder


def _tone(path, n=320, sr=16000, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.sin(np.arange(n) / 3.0), sr, **kwargs)


@pytest.fixture
def corpus(tmp_path):
    _tone(tmp_path / "angry" / "a1.wav")
    _tone(tmp_path / "angry" / "speaker2" / "a2.flac")
    _tone(tmp_path / "sad" / "s1.WAV", format="WAV")
    _tone(tmp_path / "sad" / "s2.ogg", n=1600, sr=8000)
    (tmp_path / "sad" / "notes.txt").write_text("not audio")
    (tmp_path / "sad" / "._s1.WAV").write_bytes(b"\x00\x05")
    (tmp_path / ".cache").mkdir()
    _tone(tmp_path / ".cache" / "x.wav")
    (tmp_path / "README.md").write_text("my corpus")
    return tmp_path


def test_classes_come_from_sub_folders(corpus):
    bunch = load_emotion_folder(corpus)
    names = [p.split("/")[-1] for p in bunch.data]
    assert names == ["a1.wav", "a2.flac", "s1.WAV", "s2.ogg"]
    assert list(bunch.target) == ["angry", "angry", "sad", "sad"]
    assert list(bunch.target_names) == ["angry", "sad"]
    assert list(bunch.filenames) == bunch.data
    assert "groups" not in bunch and "2 classes" in bunch.DESCR


def test_load_audio_and_return_X_y(corpus):
    X, y = load_emotion_folder(corpus, load_audio=True, return_X_y=True)
    assert [x.shape for x in X] == [(320,), (320,), (320,), (3200,)]
    assert all(x.dtype == np.float32 for x in X) and list(y)[-1] == "sad"


def test_extensions(corpus):
    bunch = load_emotion_folder(corpus, extensions=(".WAV", ".flac"))
    assert [p.rsplit("/", 1)[1] for p in bunch.data] == ["a1.wav", "a2.flac", "s1.WAV"]
    with pytest.raises(ValueError, match="sad' holds no audio file"):
        load_emotion_folder(corpus, extensions=".flac")
    with pytest.raises(ValueError, match="starting with a dot"):
        load_emotion_folder(corpus, extensions=("wav",))


def test_invalid_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_emotion_folder(tmp_path / "missing")
    (tmp_path / "file.wav").write_bytes(b"")
    with pytest.raises(ValueError, match="not a directory"):
        load_emotion_folder(tmp_path / "file.wav")
    with pytest.raises(ValueError, match="no label"):
        load_emotion_folder(tmp_path)
    (tmp_path / "file.wav").unlink()
    with pytest.raises(ValueError, match="has no sub-folder"):
        load_emotion_folder(tmp_path)
    (tmp_path / "happy").mkdir()
    with pytest.raises(ValueError, match="happy' holds no audio file"):
        load_emotion_folder(tmp_path)


def test_undecodable_file_is_named(tmp_path):
    (tmp_path / "angry").mkdir()
    (tmp_path / "angry" / "broken.wav").write_bytes(b"RIFF....garbage")
    assert len(load_emotion_folder(tmp_path).data) == 1  # paths only: no decoding
    with pytest.raises(ValueError, match="broken.wav"):
        load_emotion_folder(tmp_path, load_audio=True)


def test_a_class_folder_linked_to_another_is_refused(corpus):
    (corpus / "happy").symlink_to(corpus / "angry", target_is_directory=True)
    with pytest.raises(ValueError, match="are the same file .* two labels"):
        load_emotion_folder(corpus)


def test_a_broken_link_is_named(corpus):
    (corpus / "sad" / "s3.wav").symlink_to(corpus / "sad" / "gone.wav")
    with pytest.raises(ValueError, match="s3.wav' is a broken or circular"):
        load_emotion_folder(corpus)


def test_links_within_a_class_are_fine(corpus):
    (corpus / "sad" / "s3.wav").symlink_to(corpus / "sad" / "s1.WAV")
    assert list(load_emotion_folder(corpus).target).count("sad") == 3


@pytest.mark.parametrize(
    "folders, match",
    [
        (["Actor_01", "Actor_02"], "look like RAVDESS .* load_ravdess .* ravdess"),
        (["Session1", "Session2"], "look like IEMOCAP .* load_iemocap"),
    ],
)
def test_speaker_folders_are_not_taken_for_emotions(tmp_path, folders, match):
    for name in folders:
        _tone(tmp_path / name / "03-01-05-01-01-01-01.wav")
    with pytest.raises(ValueError, match=match):
        load_emotion_folder(tmp_path)
