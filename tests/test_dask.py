"""Search and cross-validation on a Dask cluster (joblib's Dask backend).

A local cluster of two worker processes, as a remote one would run them: the
estimators and the data travel to the workers pickled, and each fit runs in a
worker's own torch.
"""

import os

import numpy as np
import pytest
import torch
from _params import TINY as TINY_BASE
from _params import make_spectrograms
from joblib import parallel_config
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline

from sklearn_tser import EmotionEmbeddingClassifier, LogMelTransformer
from sklearn_tser._device import resolve_device

distributed = pytest.importorskip("distributed")

TINY = {
    **TINY_BASE,
    "crop_frames": 20,
    "device": "cpu",  # bitwise reproducibility is promised on the CPU
}
TIMEOUT = 120  # seconds: a cluster that does not start or answer fails the test


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        death_timeout=TIMEOUT,  # bounds each worker's start
    )
    client = distributed.Client(cluster, timeout=TIMEOUT)
    try:
        client.wait_for_workers(2, timeout=TIMEOUT)
        yield client
    finally:
        client.close()
        cluster.close()


def make_pipe():
    return Pipeline(
        [
            ("mel", LogMelTransformer(n_mels=16)),
            ("clf", EmotionEmbeddingClassifier(**TINY)),
        ]
    )


CV = StratifiedKFold(2, shuffle=True, random_state=0)
# The log loss changes with any change of the model, unlike the accuracy of 12
# test clips.
SCORING = "neg_log_loss"


def test_grid_search_on_the_cluster_equals_the_serial_one(client, audio):
    X, y = audio  # a list of waveforms: scattered once, not sent with each task
    search = GridSearchCV(
        make_pipe(),
        {"clf__width": [4, 8]},
        cv=CV,
        scoring=SCORING,
        refit=False,
        n_jobs=-1,
    )
    with (
        distributed.get_task_stream(client) as tasks,
        parallel_config(backend="dask", scatter=[X, y]),
    ):
        on_cluster = clone(search).fit(X, y)
    serial = clone(search).set_params(n_jobs=1).fit(X, y)
    for key in ("split0_test_score", "split1_test_score", "mean_test_score"):
        np.testing.assert_array_equal(
            on_cluster.cv_results_[key], serial.cv_results_[key]
        )
    assert on_cluster.best_params_ == serial.best_params_
    assert tasks.data, "no task ran on the cluster"


def test_cross_val_score_on_the_cluster_equals_the_serial_one(client, audio):
    X, y = audio
    with parallel_config(backend="dask"):
        on_cluster = cross_val_score(
            make_pipe(), X, y, cv=CV, scoring=SCORING, n_jobs=-1
        )
    serial = cross_val_score(make_pipe(), X, y, cv=CV, scoring=SCORING, n_jobs=1)
    assert np.isfinite(serial).all()
    np.testing.assert_array_equal(on_cluster, serial)


def test_a_store_travels_as_its_folder(client, tmp_path):
    """Cross-validation on an on-disk SpectrogramStore: each task carries the
    store's folder, each worker reads its clips there; equal to serial."""
    X, y = make_spectrograms(n=24, n_classes=2)
    from sklearn_tser import n_valid_frames
    from sklearn_tser._store import StoreWriter

    writer = StoreWriter(tmp_path / "store", n_mels=X.shape[1], log_mel_params={})
    writer.append([x[:, :n] for x, n in zip(X, n_valid_frames(X), strict=True)])
    store = writer.close()
    clf = EmotionEmbeddingClassifier(**TINY)
    with parallel_config(backend="dask"):
        on_cluster = cross_val_score(clf, store, y, cv=CV, scoring=SCORING, n_jobs=-1)
    serial = cross_val_score(clf, X, y, cv=CV, scoring=SCORING, n_jobs=1)
    np.testing.assert_array_equal(on_cluster, serial)


@pytest.mark.parametrize(
    "n_threads, torch_default",
    [
        (None, 2),  # the classifier's default, 1, where torch would use 2
        (2, 1),  # more than the worker's torch default (the nanny sets 1)
    ],
)
def test_a_fit_on_a_worker_uses_the_classifiers_threads(
    client, n_threads, torch_default
):
    X, y = make_spectrograms(n=24, n_classes=2)
    params = {**TINY} if n_threads is None else {**TINY, "n_threads": n_threads}
    clf = EmotionEmbeddingClassifier(**params)

    def fit_and_record_threads(clf, X, y):
        # Runs in the worker's task thread. torch keeps the setting per thread:
        # set what torch would use without the classifier's setting, then record
        # it at each forward of a module during the fit.
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(torch_default)
        seen = []
        hook = torch.nn.modules.module.register_module_forward_pre_hook(
            lambda module, args: seen.append(torch.get_num_threads())
        )
        try:
            clf.fit(X, y)
            after = torch.get_num_threads()
        finally:
            hook.remove()
            torch.set_num_threads(before)
        return set(seen), after

    future = client.submit(fit_and_record_threads, clf, X, y, pure=False)
    seen, after = future.result(timeout=TIMEOUT)
    assert seen == {clf.get_params()["n_threads"]}
    assert after == torch_default  # restored after the fit


def test_auto_device_is_the_first_visible_gpu(monkeypatch):
    # dask_cuda's LocalCUDACluster gives each worker its own GPU first in
    # CUDA_VISIBLE_DEVICES, so "auto" must mean the first visible GPU ("cuda":
    # torch's current device, which is the first visible one; or "cuda:0").
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    device = resolve_device("auto")
    assert device.type == "cuda" and device.index in (None, 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_auto_device_on_a_worker_is_the_workers_gpu():
    # As LocalCUDACluster sets it for its last worker: every GPU is visible, the
    # worker's own (here the machine's last one) first.
    n_gpus = torch.cuda.device_count()
    names = os.environ.get("CUDA_VISIBLE_DEVICES") or ",".join(map(str, range(n_gpus)))
    names = names.split(",")[:n_gpus]  # torch's indices here, in order
    visible = ",".join([names[-1], *names[:-1]])
    expected = str(torch.cuda.get_device_properties(n_gpus - 1).uuid)

    def fit_and_name_the_gpu(X, y):
        import torch

        clf = EmotionEmbeddingClassifier(**{**TINY, "device": "auto"}).fit(X, y)
        device = next(clf.net_.module_.parameters()).device
        return device.type, str(torch.cuda.get_device_properties(device).uuid)

    with (
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            death_timeout=TIMEOUT,
            env={"CUDA_VISIBLE_DEVICES": visible},
        ) as cluster,
        distributed.Client(cluster, timeout=TIMEOUT) as client,
    ):
        future = client.submit(fit_and_name_the_gpu, *make_spectrograms(n=24))
        assert future.result(timeout=TIMEOUT) == ("cuda", expected)
