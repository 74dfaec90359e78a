"""Shared test settings; pytest puts tests/ on the path, so modules import them."""

import numpy as np

# A classifier small enough to fit in about a second on a few short clips;
# test modules override what they need, e.g. ``{**TINY, "batch_size": 64}``.
# One network (the default is an ensemble of two): the tests of the network's
# machinery read it as ``net_``; those of the ensemble ask for ``n_networks``.
# On the CPU, also where a GPU is (the default "auto" would take it): the tests
# compare outputs exactly or to float32's rounding on the CPU, and reproduce
# runs bit for bit, which CUDA's kernels do not promise; tests/test_cuda.py
# tests the GPU.
TINY = dict(
    device="cpu",
    n_networks=1,
    n_layers=6,
    width=8,
    embedding_dim=8,
    pretrain_epochs=2,
    triplet_epochs=1,
    batch_size=16,
    crop_frames=None,
    random_state=0,
)


def make_spectrograms(n=60, n_mels=12, n_classes=3, seed=0):
    """Separable fake spectrograms of varying length (10 to 60 frames),
    NaN-padded, and their integer labels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    X = rng.standard_normal((n, n_mels, 60)).astype(np.float32)
    for k in range(n_classes):
        X[y == k, 3 * k : 3 * k + 3] += 2.0
    lengths = rng.integers(10, 61, n)
    for i, n_i in enumerate(lengths):
        X[i, :, n_i:] = np.nan
    return X, y
