"""Determinism and concurrency: seeds, threads and joblib worker processes."""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from _params import TINY as TINY_BASE
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline

from sklearn_tser import EmotionEmbeddingClassifier, LogMelTransformer

TINY = {
    **TINY_BASE,
    "crop_frames": 20,
    "device": "cpu",  # bitwise reproducibility is promised on the CPU
}


def make_pipe(**params):
    return Pipeline(
        [
            ("mel", LogMelTransformer(n_mels=16)),
            ("clf", EmotionEmbeddingClassifier(**{**TINY, **params})),
        ]
    )


@pytest.fixture(scope="module")
def pipe(audio):
    return make_pipe().fit(*audio)


def test_same_random_state_gives_identical_models_on_cpu(pipe, audio):
    X, y = audio
    again = make_pipe().fit(X, y)
    a, b = pipe["clf"].net_.module_.state_dict(), again["clf"].net_.module_.state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
    np.testing.assert_array_equal(pipe["clf"].centroids_, again["clf"].centroids_)
    np.testing.assert_array_equal(pipe.transform(X), again.transform(X))
    assert pipe["clf"].proba_scale_ == again["clf"].proba_scale_
    # The seed matters: another one gives another model.
    other = make_pipe(random_state=1).fit(X, y)
    assert not np.array_equal(other.transform(X), pipe.transform(X))


def test_global_torch_and_numpy_state_is_left_alone(audio):
    X, y = audio
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make_pipe(pretrain_epochs=1, triplet_epochs=0).fit(X, y)
    torch.testing.assert_close(torch.rand(3), expected)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "transform"])
def test_predict_from_several_threads_matches_one_thread(pipe, audio, method):
    X, _ = audio
    # As after a fit by skorch, whose last step may leave the module training.
    pipe["clf"].net_.module_.train()
    expected = getattr(pipe, method)(X)
    n_threads = 8
    barrier = threading.Barrier(n_threads)

    def run(i):
        barrier.wait()
        # Different subsets too, so threads do not run in lock step.
        return [getattr(pipe, method)(X[i % 3 :]) for _ in range(3)]

    with ThreadPoolExecutor(n_threads) as pool:
        results = list(pool.map(run, range(n_threads)))
    for i, outputs in enumerate(results):
        for out in outputs:
            np.testing.assert_array_equal(out, expected[i % 3 :])


@pytest.mark.parametrize("n_networks", [1, 2])
def test_cross_val_score_in_joblib_worker_processes(audio, n_networks):
    """Folds fitted in worker processes equal those fitted in turn, also for
    the default ensemble, whose networks train in threads in each worker."""
    X, y = audio
    # CUDA in the workers when there is one.
    pipe = make_pipe(device="auto", n_networks=n_networks)
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    parallel = cross_val_score(clone(pipe), X, y, cv=cv, n_jobs=2)
    serial = cross_val_score(clone(pipe), X, y, cv=cv, n_jobs=1)
    assert parallel.shape == (2,) and np.isfinite(parallel).all()
    if not torch.cuda.is_available():  # bitwise reproducible on the CPU only
        np.testing.assert_array_equal(parallel, serial)
