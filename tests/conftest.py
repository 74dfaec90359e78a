"""Shared fixtures: paths to the real corpora beside the repository, seeds."""

from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RAVDESS = DATA / "ravdess"
RAVDESS_ORIGINAL = DATA / "ravdess-original-sample"


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(0)  # noqa: NPY002  (code under test may use the legacy RNG)
    import torch

    torch.manual_seed(0)


@pytest.fixture(scope="session")
def ravdess_dir():
    if not RAVDESS.is_dir():
        pytest.skip(f"RAVDESS not found at {RAVDESS}")
    return RAVDESS


@pytest.fixture(scope="session")
def ravdess_original_dir():
    if not RAVDESS_ORIGINAL.is_dir():
        pytest.skip(f"RAVDESS original sample not found at {RAVDESS_ORIGINAL}")
    return RAVDESS_ORIGINAL


@pytest.fixture(scope="session")
def ravdess_files(ravdess_dir):
    """12 real clips: actors 1 and 2, the first six files of each."""
    files = []
    for actor in ("Actor_01", "Actor_02"):
        files += sorted((ravdess_dir / actor).glob("*.flac"))[:6]
    return files


@pytest.fixture(scope="session")
def audio():
    """24 short synthetic clips of two emotions, and their labels (a test
    module may define its own ``audio``)."""
    from sklearn_tser.datasets import make_emotional_speech

    return make_emotional_speech(
        n_samples=24,
        n_classes=2,
        min_duration=0.3,
        max_duration=0.6,
        random_state=0,
        return_X_y=True,
    )
