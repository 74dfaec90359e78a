"""Screen of SGD with Nesterov momentum in the softmax phase, instead of AdamW.

The library trains every phase with AdamW (decoupled weight decay) under a
cosine schedule. Residual networks for images are most often trained with
plain SGD and Nesterov momentum, which is reported to generalise better than
adaptive methods for the same training loss (Wilson et al., 2017, "The
Marginal Value of Adaptive Gradient Methods in Machine Learning"). It is not
a parameter of the library: this script patches the classifier's nets for the
run, then runs ``benchmarks/bench_classifier.py`` with the arguments it is
given, so that a screen uses the benchmark's own folds, peers and tables.

With the patch, the softmax phase of each network steps with
``torch.optim.SGD(momentum=0.9, nesterov=True)`` at ``--sgd-lr`` (the peak of
the same cosine schedule) and L2 weight decay ``--sgd-weight-decay`` (coupled,
as SGD applies it); the recipe of residual networks on CIFAR (0.1 for batches
of 128, 5e-4), with the rate scaled linearly to the default batches of 64.
Everything else, the triplet phase (AdamW at ``triplet_lr``) included, is the
default fit.

    python benchmarks/sgd_softmax.py [--sgd-lr 0.05] [--sgd-weight-decay 5e-4]
        --protocols paper-10fold --jobs 1 [bench_classifier.py's other options]

``--jobs 1`` keeps every fit in this process, where the patch is.
"""

import argparse
import sys

import torch

import sklearn_tser._classifier as classifier_module
from sklearn_tser._training import EmbeddingNet, member_nets


class SGDSoftmaxNet(EmbeddingNet):
    """An :class:`EmbeddingNet` whose softmax phase steps with SGD (set up by
    :func:`patch`)."""

    def initialize_optimizer(self, triggered_directly=None):
        if getattr(self, "phase_", None) != "softmax":
            return super().initialize_optimizer(triggered_directly)
        weights = [w for _, w in self.get_all_learnable_params()]
        self.optimizer_ = torch.optim.SGD(
            weights,
            lr=self.phase_lr_,  # the schedule's peak, set again every epoch
            momentum=0.9,
            nesterov=True,
            weight_decay=self.sgd_weight_decay,
        )
        return self


def patch(lr, weight_decay):
    """Make the classifier's networks train their softmax phase with SGD at
    ``lr``: the classifier's ``lr`` is the softmax phase's, so the patch sets
    it, and keeps the default ``triplet_lr``."""
    make_net = classifier_module.make_net

    def make_sgd_net(params, **kwargs):
        if params["triplet_lr"] is None:
            raise ValueError("The screen keeps an explicit triplet_lr.")
        net = make_net({**params, "lr": lr}, **kwargs)
        for member in member_nets(net):
            member.__class__ = SGDSoftmaxNet
            member.sgd_weight_decay = weight_decay
        return net

    classifier_module.make_net = make_sgd_net


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sgd-lr", type=float, default=0.05)
    parser.add_argument("--sgd-weight-decay", type=float, default=5e-4)
    args, rest = parser.parse_known_args(argv)
    patch(args.sgd_lr, args.sgd_weight_decay)
    print(
        f"softmax phase: SGD, Nesterov momentum 0.9, lr {args.sgd_lr}, "
        f"weight decay {args.sgd_weight_decay}",
        flush=True,
    )
    import bench_classifier

    return bench_classifier.main(rest)


if __name__ == "__main__":
    main(sys.argv[1:])
