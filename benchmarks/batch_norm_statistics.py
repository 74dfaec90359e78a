"""Batch-normalisation statistics recomputed after the fit, on the same fits.

A network in evaluation mode normalises with the running statistics of its
batch-normalisation layers: at the end of a fit, a moving average over the
last batches of training (augmented 2 s crops of the triplet phase). The
embeddings, hence the centroids and the predictions, are of whole clips,
unaugmented. Recomputing the statistics as the population mean and variance
of the clips the network is used on (precise batch normalisation; Wu and
Johnson, 2021, "Rethinking 'Batch' in BatchNorm"; torch's
``torch.optim.swa_utils.update_bn`` does it after weight averaging) removes
that mismatch. This script asks whether it helps: each fit of
``benchmarks/bench_classifier.py`` (the same folds and seeds) is scored as
fitted, then, from a copy of it, with the statistics recomputed in three
ways, the centroids computed again from the training clips each time:

- ``clean``: the population statistics of the whole, unaugmented training
  clips (one pass, each batch weighted alike);
- ``views``: the same of the training clips as the triplet phase sees them
  (crops, rooms, warps and masks drawn from seed 0);
- ``continued``: the running average carried on over one pass of such views,
  with the training's momentum, as more training steps without weight
  updates would carry it.

    python benchmarks/batch_norm_statistics.py --protocols paper-10fold
        [bench_classifier.py's other options]

Each fold's four scores are printed when its fit ends; the pairs are exact
(one fit per fold), so they differ by the statistics alone.
"""

import copy
import itertools
import sys

import bench_classifier
import numpy as np
import torch

from sklearn_tser._losses import class_centroids
from sklearn_tser._training import (
    SpectrogramDataset,
    inference_width,
    member_nets,
    speech_regions,
)
from sklearn_tser._validation import check_spectrograms

WAYS = ("clean", "views", "continued")


def batch_norms(module):
    return [
        m
        for m in module.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    ]


def recompute_statistics(net, dataset, way, seed=0):
    """Recompute the running statistics of ``net``'s batch normalisation on
    the clips of ``dataset``, in place (see the module docstring)."""
    module = net.module_
    norms = batch_norms(module)
    momenta = [bn.momentum for bn in norms]
    module.eval()  # dropout off; the batch normalisation alone in train mode
    for bn in norms:
        if way != "continued":
            bn.reset_running_stats()
        bn.train()
    generator = torch.Generator(net.device).manual_seed(seed)
    if way == "clean":  # whole clips, batched by length as inference batches
        batches = list(net.get_iterator(dataset).batch_sampler)
    else:  # shuffled batches of the training's size
        order = np.random.default_rng(seed).permutation(len(dataset))
        size = net.batch_size
        batches = [order[i : i + size] for i in range(0, len(order), size)]
    try:
        with torch.no_grad():
            for k, idx in enumerate(batches, 1):
                X, _ = dataset.__getitems__(idx)
                x, lengths = X["x"].to(net.device), X["lengths"].to(net.device)
                if way == "clean":
                    width = int(inference_width(x.shape[2]))
                    x = torch.nn.functional.pad(x, (0, width - x.shape[2]))
                else:
                    views = net.augment(
                        x, lengths, generator, X.get("scale"), X.get("offset")
                    )
                    x, lengths = views["x"], views["lengths"]
                for bn, momentum in zip(norms, momenta, strict=True):
                    # A plain mean of the batches, or the training's average.
                    bn.momentum = momentum if way == "continued" else 1.0 / k
                module.embed(x, lengths)
    finally:
        for bn, momentum in zip(norms, momenta, strict=True):
            bn.momentum = momentum
        module.eval()


def accuracy_after(clf, way, S_train, y_train, S_test, y_test):
    """Test accuracy of a copy of the fitted ``clf`` whose statistics are
    recomputed ``way`` on its training clips (standardised as it fitted
    them; the default ``standardize="global"``), with centroids anew."""
    clf = copy.deepcopy(clf)
    X = check_spectrograms(S_train)
    codes = np.searchsorted(clf.classes_, y_train)  # the labels as fit encodes them
    dataset = SpectrogramDataset(
        X,
        *speech_regions(X, clf.trim_db),
        codes,
        mean=clf.feature_mean_,
        std=clf.feature_std_,
        scales=True,
    )
    for net in member_nets(clf.net_):
        recompute_statistics(net, dataset, way)
    centroids = class_centroids(clf.transform(S_train), codes, len(clf.classes_))
    pred = clf.classes_[(clf.transform(S_test) @ centroids.T).argmax(axis=1)]
    return float((pred == y_test).mean())


def patch():
    """Make bench_classifier.py score each fit with the statistics
    recomputed too, and print the scores."""
    fit_and_score = bench_classifier.fit_and_score
    fold = itertools.count(1)

    def fit_and_score_all_ways(clf, S, y, tr, te, groups, threads=None):
        outcome = fit_and_score(clf, S, y, tr, te, groups, threads)
        ways = {w: accuracy_after(clf, w, S[tr], y[tr], S[te], y[te]) for w in WAYS}
        print(
            f"fit {next(fold)}: as fitted {100 * outcome['acc']:.2f}, "
            + ", ".join(f"{w} {100 * a:.2f}" for w, a in ways.items()),
            flush=True,
        )
        return outcome

    bench_classifier.fit_and_score = fit_and_score_all_ways


if __name__ == "__main__":
    patch()
    bench_classifier.main(sys.argv[1:])
