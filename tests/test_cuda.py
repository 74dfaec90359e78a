"""The library on a CUDA GPU: fits, predictions, model files, pickles, warm
starts. Skipped without CUDA (CI has none); run them where a GPU is
(``benchmarks/gpu_check.py`` checks the default pipeline at full size).

The other tests pin the CPU (``TINY``): these say ``device="cuda"``, and
compare the GPU with the CPU to float32's rounding, not bit for bit.
"""

import pickle

import numpy as np
import pytest
import torch
from _params import TINY, make_spectrograms

from sklearn_tser import EmotionEmbeddingClassifier, LogMelTransformer, load, save
from sklearn_tser._training import member_nets

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU"
)

# float32 on the GPU too, to compare with the CPU closely (bfloat16, the
# default on recent GPUs, is checked by gpu_check.py's convergence row).
ON_GPU = {**TINY, "device": "cuda", "precision": "float32", "n_networks": 2}


@pytest.fixture(scope="module")
def fitted():
    X, y = make_spectrograms()
    return EmotionEmbeddingClassifier(**ON_GPU).fit(X, y), X, y


def _on_cuda(clf):
    return all(
        p.device.type == "cuda"
        for net in member_nets(clf.net_)
        for p in net.module_.parameters()
    )


def test_a_fit_on_cuda_trains_there_and_predicts(fitted):
    clf, X, _ = fitted
    assert _on_cuda(clf)
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert set(clf.predict(X)) <= set(clf.classes_)


def test_a_model_file_loads_on_cuda_and_on_the_cpu(fitted, tmp_path):
    clf, X, _ = fitted
    path = save(clf, tmp_path / "model.safetensors")
    p = clf.predict_proba(X)
    on_gpu, on_cpu = load(path, device="cuda"), load(path, device="cpu")
    assert _on_cuda(on_gpu)
    np.testing.assert_allclose(on_gpu.predict_proba(X), p, rtol=1e-5, atol=1e-6)
    q = on_cpu.predict_proba(X)
    np.testing.assert_allclose(q, p, atol=1e-2)  # TF32 convolutions on the GPU
    assert np.mean(q.argmax(1) == p.argmax(1)) >= 0.95


def test_a_warm_start_on_cuda_continues_a_model_loaded_on_the_cpu(fitted, tmp_path):
    clf, X, y = fitted
    again = load(save(clf, tmp_path / "model.safetensors"))  # on the CPU
    n_epochs = len(member_nets(again.net_)[0].history)
    again.set_params(warm_start=True, pretrain_epochs=1, triplet_epochs=0)
    again.fit(X, y)
    assert _on_cuda(again)
    assert len(member_nets(again.net_)[0].history) == n_epochs + 1


def test_a_cuda_trained_pickle_holds_no_cuda_generator(fitted):
    """A CUDA generator would not unpickle on a machine without CUDA."""
    clf, X, _ = fitted
    again = pickle.loads(pickle.dumps(clf))
    for net in member_nets(again.net_):
        assert not [v for v in vars(net).values() if isinstance(v, torch.Generator)]
    np.testing.assert_allclose(
        again.predict_proba(X), clf.predict_proba(X), rtol=1e-5, atol=1e-6
    )


def test_log_mel_features_on_cuda_match_the_cpu():
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(n).astype(np.float32) for n in (4000, 16000, 9000)]
    on_cpu = LogMelTransformer(device="cpu").transform(clips)
    on_gpu = LogMelTransformer(device="cuda").transform(clips)
    np.testing.assert_array_equal(np.isnan(on_gpu), np.isnan(on_cpu))
    np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-2, equal_nan=True)
