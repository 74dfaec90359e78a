"""The fused C kernels of LogMelTransformer against its pure-torch path.

test_log_mel.py runs every LogMelTransformer test on both paths against
librosa; this file covers what only the kernels do: their own framing and
padding, the sparse mel projection with a tail of bins that is not a multiple
of 16, the transposed write, and the NaN / infinity check folded into the
framing.
"""

import platform
import shutil
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sklearn_tser import LogMelTransformer, _kernels

pytestmark = pytest.mark.filterwarnings("ignore:Empty filters detected")


@pytest.fixture
def kernels():
    if _kernels.load() is None:
        pytest.skip("the fused C kernels are not built on this machine")
    return _kernels.load()


def test_kernels_are_built_where_they_can_be():
    # pip builds the optional module with the machine's C compiler; on Linux
    # x86-64 with GCC and the Python headers it must have succeeded (else the
    # install silently fell back to the slower pure-torch path).
    can_build = (
        sys.platform == "linux"
        and platform.machine() == "x86_64"
        and shutil.which("gcc") is not None
        and (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file()
    )
    if not can_build:
        pytest.skip("no GCC, Python headers or Linux x86-64 here")
    assert _kernels.load() is not None, (
        "sklearn_tser._kernels_c is not built: reinstall with "
        "`pip install -e .` and read the compiler's output."
    )


def torch_path(tr, X, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(_kernels, "ENABLED", False)
        return tr.transform(X)


def clips_of(lengths, seed=0):
    rng = np.random.default_rng(seed)
    # Speech-like level changes, so that the top_db floor is active.
    return [
        (rng.standard_normal(n) * np.geomspace(1e-4, 1, n)).astype(np.float32)
        for n in lengths
    ]


LENGTHS = (16000, 1, 7, 255, 256, 257, 511, 512, 513, 23456, 600, 4001)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"center": False},
        {"n_mels": 40, "n_fft": 1024, "win_length": None, "hop_length": 256},
        {"n_mels": 13, "n_fft": 400, "win_length": 400, "hop_length": 100},
        {"n_mels": 128, "n_fft": 2048, "hop_length": 512, "window": "hamming"},
        {"power": 1.0, "top_db": None, "amin": 1e-5},
        {"power": 1.5, "top_db": 20.0, "htk": True, "norm": None},
        {"fmin": 300.0, "fmax": 4000.0, "max_frames": 50},
        {"max_frames": 1000, "window": "boxcar"},
        # hop > window: samples between windows are never framed.
        {"n_fft": 256, "win_length": 64, "hop_length": 400},
        # 9 frequency bins: no full block of 16 bins; empty mel filters.
        {"sr": 8000, "n_fft": 16, "win_length": 16, "hop_length": 8, "n_mels": 8},
        {"batch_size": 1},
        {"batch_size": 3, "center": False, "max_frames": 64},
    ],
)
def test_kernels_match_the_torch_path(kernels, monkeypatch, params):
    tr = LogMelTransformer(**params)
    clips = clips_of(LENGTHS)
    fused = tr.transform(clips)
    reference = torch_path(tr, clips, monkeypatch)
    assert fused.shape == reference.shape and fused.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(fused), np.isnan(reference))
    np.testing.assert_allclose(fused, reference, atol=1e-3, rtol=0)


def test_kernels_match_the_torch_path_on_real_clips(kernels, monkeypatch, ravdess_dir):
    files = sorted(ravdess_dir.glob("Actor_0[1-4]/*.flac"))
    clips = [sf.read(f, dtype="float32")[0] for f in files]
    tr = LogMelTransformer()
    fused = tr.transform(clips)
    reference = torch_path(tr, clips, monkeypatch)
    np.testing.assert_array_equal(np.isnan(fused), np.isnan(reference))
    # The same sums in another order: float32 rounding only (1.5e-5 dB seen).
    np.testing.assert_allclose(fused, reference, atol=1e-4, rtol=0)


def test_long_clips_take_the_torch_path_inside_a_fused_run(kernels, monkeypatch):
    # batch_size=1 bounds a chunk to 501 frames: the 9 s clip goes through the
    # torch path in pieces, the others through the kernels, in one transform.
    tr = LogMelTransformer(batch_size=1)
    clips = clips_of((16000, 16000 * 9, 3000))
    fused = tr.transform(clips)
    np.testing.assert_allclose(
        fused, torch_path(tr, clips, monkeypatch), atol=1e-3, rtol=0
    )


def test_one_thread_gives_the_same_result(kernels):
    import torch

    clips = clips_of(LENGTHS)
    tr = LogMelTransformer()
    two = tr.transform(clips)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = tr.transform(clips)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize(
    "params, where",
    [
        ({}, 0),
        ({}, 4000),  # the last sample
        # Between two windows, a sample that no frame reads.
        ({"n_fft": 256, "win_length": 64, "hop_length": 400}, 1000),
        # After the last frame of a clip without centring (frames 0-3 read
        # samples up to 3511).
        ({"center": False, "hop_length": 1000}, 4000),
    ],
)
def test_nan_or_infinity_anywhere_is_a_clear_error(kernels, params, where, value):
    clips = clips_of((3000, 4001, 2000))
    clips[1][where] = value
    with pytest.raises(
        ValueError,
        match=rf"Clip 1 holds 1 NaN or infinite samples \(first at sample {where}\)",
    ):
        LogMelTransformer(**params).transform(clips)


def test_nan_in_a_one_shot_iterable_is_a_clear_error(kernels):
    clips = clips_of((3000, 4001))
    clips[1][10] = np.nan
    with pytest.raises(ValueError, match="Clip 1 holds 1 NaN"):
        LogMelTransformer().transform(iter(clips))


def test_nan_in_a_file_names_the_file(kernels, tmp_path):
    y = clips_of((8000,))[0]
    y[100] = np.nan
    path = tmp_path / "broken.wav"
    sf.write(path, y, 16000, subtype="FLOAT")
    ok = tmp_path / "ok.wav"
    sf.write(ok, clips_of((8000,))[0], 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"Clip 1 \(.*broken\.wav'\) holds 1 NaN"):
        LogMelTransformer().transform([ok, path])


def test_nan_in_a_long_clip_on_the_torch_path_is_a_clear_error(kernels):
    clips = clips_of((16000, 16000 * 9))
    clips[1][16000 * 8] = np.inf
    with pytest.raises(ValueError, match="Clip 1 holds 1 NaN or infinite"):
        LogMelTransformer(batch_size=1).transform(clips)


def test_non_contiguous_rows_of_a_2d_array(kernels, monkeypatch):
    X = np.asfortranarray(np.stack(clips_of((5000, 5000, 5000))))
    tr = LogMelTransformer()
    np.testing.assert_allclose(
        tr.transform(X),
        torch_path(tr, np.ascontiguousarray(X), monkeypatch),
        atol=1e-3,
        rtol=0,
    )


def test_the_first_bad_clip_is_named_even_if_a_later_one_is_empty(kernels):
    # The kernels' NaN check comes after check_audio's other checks: a NaN in
    # clip 0 must still be reported before the empty clip 1.
    clips = clips_of((3000,)) + [np.zeros(0, np.float32)]
    clips[0][5] = np.nan
    with pytest.raises(ValueError, match="^Clip 0 holds 1 NaN"):
        LogMelTransformer().transform(clips)


def test_big_endian_and_float64_clips_give_the_same_features(kernels):
    clips = clips_of((5000, 7000))
    tr = LogMelTransformer()
    expected = tr.transform(clips)
    for dtype in (">f4", np.float64):
        np.testing.assert_array_equal(
            tr.transform([c.astype(dtype) for c in clips]), expected
        )
