import numpy as np
import pytest
import soundfile as sf

from sklearn_tser._audio import check_audio, load_audio


def test_list_of_waveforms_of_different_lengths():
    clips = check_audio([np.zeros(100), np.ones(50, dtype=np.float32)])
    assert [c.shape for c in clips] == [(100,), (50,)]
    assert all(c.dtype == np.float32 for c in clips)


def test_2d_array_is_one_clip_per_row():
    clips = check_audio(np.zeros((3, 40)))
    assert len(clips) == 3 and clips[0].shape == (40,)


def test_integer_pcm_is_scaled_to_unit_range():
    pcm = np.array([-32768, 0, 16384, 32767], dtype=np.int16)
    (y,) = check_audio([pcm])
    np.testing.assert_allclose(y, [-1.0, 0.0, 0.5, 32767 / 32768])


def test_paths_are_decoded_downmixed_and_resampled(tmp_path):
    t = np.arange(48000) / 48000
    stereo = np.stack([np.sin(2 * np.pi * 440 * t)] * 2, axis=1) * 0.5
    path = tmp_path / "a.wav"
    sf.write(path, stereo, 48000)
    (y,) = check_audio([path], sr=16000)
    assert y.shape == (16000,)
    # A 440 Hz tone survives resampling: its spectral peak stays at 440 Hz.
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) - 440) <= 1


def test_flac_and_ogg_are_read(tmp_path):
    y = (0.1 * np.sin(np.arange(8000) / 10)).astype(np.float32)
    for ext in ("flac", "ogg"):
        sf.write(tmp_path / f"a.{ext}", y, 16000)
        (z,) = check_audio([str(tmp_path / f"a.{ext}")])
        assert abs(len(z) - 8000) < 1000


def test_real_flac_matches_soundfile(ravdess_files):
    (y,) = check_audio([ravdess_files[0]])
    ref, sr = sf.read(ravdess_files[0], dtype="float32")
    assert sr == 16000
    np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize(
    "X, error, match",
    [
        ("clip.wav", TypeError, "single str"),
        (3.0, TypeError, "sequence of clips"),
        ([], ValueError, "no clips"),
        (np.zeros((2, 2, 10)), ValueError, "3 dimensions"),
        (np.zeros(10), ValueError, "1-D array of 10 numbers"),
        ([np.zeros(10), np.zeros(0)], ValueError, "Clip 1 is empty"),
        ([np.array([0.0, np.nan, 1.0])], ValueError, "Clip 0 holds 1 NaN"),
        ([np.zeros(5), np.array([np.inf])], ValueError, "Clip 1 holds 1 NaN or inf"),
        ([np.array(["a", "b"])], TypeError, "Clip 0 has dtype <U1"),
        ([[0.1, "x"]], TypeError, "Clip 0"),
        ([np.zeros((2, 100))], ValueError, "downmix"),
        ([np.array([True, False])], TypeError, "floating-point"),
    ],
)
def test_bad_input_gets_a_clear_error(X, error, match):
    with pytest.raises(error, match=match):
        check_audio(X)


def test_missing_file_names_the_path_and_index(tmp_path):
    missing = tmp_path / "nope.wav"
    with pytest.raises(FileNotFoundError, match=r"Clip 1: .*nope.wav.* does not exist"):
        check_audio([np.zeros(10), missing])
    with pytest.raises(ValueError, match="does not exist"):  # also a ValueError
        check_audio([missing])


def test_zero_byte_and_corrupt_files(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"Clip 0: .*empty.wav.* is empty"):
        check_audio([empty])
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(b"RIFF1234WAVEgarbage" * 10)
    with pytest.raises(ValueError, match=r"Could not decode .*corrupt.flac"):
        check_audio([corrupt])
    with pytest.raises(ValueError, match="is a directory"):
        load_audio(tmp_path)


def test_numpy_array_of_path_strings_is_read_as_paths(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i, n in enumerate([800, 1200]):
        paths.append(tmp_path / f"c{i}.wav")
        sf.write(paths[-1], 0.1 * rng.standard_normal(n), 16000)
    as_array = check_audio(np.array([str(p) for p in paths]), sr=16000)
    as_list = check_audio([str(p) for p in paths], sr=16000)
    assert [c.shape for c in as_array] == [(800,), (1200,)]
    for a, b in zip(as_array, as_list, strict=True):
        np.testing.assert_array_equal(a, b)
