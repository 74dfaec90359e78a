"""Screen of deep mutual learning between the default ensemble's networks.

Deep mutual learning (Zhang et al., 2018, "Deep Mutual Learning") trains two
or more networks together on the same batches: each adds to its own loss the
Kullback-Leibler divergence from its peers' predicted distributions (taken as
fixed targets) to its own. It is not a parameter of the library: this script
patches the classifier's nets for the run, then runs
``benchmarks/bench_classifier.py`` with the arguments it is given, so that a
screen uses the benchmark's own folds, peers and tables.

With the patch, the members of the default ensemble keep their own initial
weights, but draw their batches, crops, augmentation, mixup and dropout from
the first member's seed (the same stream, in step), so that their
predictions are of the same inputs; in the softmax phase each member's loss
gains ``--mutual`` times the mean of ``KL(p_peer || p_own)`` over its peers
(temperature 1, ``p_peer`` detached). The triplet phase is the default one
(on the shared batches). The members exchange their logits at every training
step, so they must train at the same time: with ``n_jobs=-1`` (the default)
on a machine with at least as many processors as networks.

    python benchmarks/mutual_learning.py [--mutual 1.0] [--own-streams]
        --protocols paper-10fold [bench_classifier.py's other options]

``--mutual 0`` with the shared stream isolates what sharing the stream alone
does; ``--own-streams`` keeps each member's own draws (the default ensemble's)
and needs ``--mutual 0``, which is then the default fit.
"""

import argparse
import sys
import threading

import torch.nn.functional as F

import sklearn_tser._classifier as classifier_module
from sklearn_tser._training import EmbeddingNet, member_nets

# A member that waits longer than this for its peers gives up: a peer stopped.
PEER_TIMEOUT_S = 600


class LogitExchange:
    """Where the members of an ensemble leave their logits of each training
    step and take their peers'."""

    def __init__(self, n_members):
        self.barrier = threading.Barrier(n_members, timeout=PEER_TIMEOUT_S)
        self.slots = [None] * n_members

    def swap(self, k, logits):
        """Leave member ``k``'s ``logits``; return the other members' list."""
        self.slots[k] = logits
        self.barrier.wait()  # every member has left its logits
        peers = [s for j, s in enumerate(self.slots) if j != k]
        self.barrier.wait()  # every member has read them, before the next step
        return peers


def mutual_divergence(logits, peers):
    """Mean over ``peers`` of ``KL(softmax(peer) || softmax(logits))``, per
    clip (``batchmean``), the gradient reaching ``logits`` only."""
    log_p = F.log_softmax(logits.float(), dim=1)
    return sum(
        F.kl_div(
            log_p,
            F.log_softmax(peer.detach().float(), dim=1),
            reduction="batchmean",
            log_target=True,
        )
        for peer in peers
    ) / len(peers)


class MutualNet(EmbeddingNet):
    """A member of a mutually learning ensemble (set up by :func:`patch`)."""

    mutual = 1.0
    shared_stream = True

    def fit_phases(self, train_set, valid_set=None, *, stop=None):
        own = self.random_state
        if self.shared_stream:  # the first member's draws, in every member
            self.random_state = self.first_member.random_state
        try:
            return super().fit_phases(train_set, valid_set, stop=stop)
        finally:
            self.random_state = own

    def infer(self, x, **fit_params):
        out = super().infer(x, **fit_params)
        if self.mutual and self.module_.training and self.phase_ == "softmax":
            peers = self.exchange.swap(self.member_index, out[0].detach())
            self.divergence_ = mutual_divergence(out[0], peers)
        return out

    def get_loss(self, y_pred, y_true, X=None, training=False):
        # Under mixup the step takes this twice, weighted lam and 1 - lam:
        # the divergence, the same in both, then counts once.
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        if self.mutual and training and self.phase_ == "softmax":
            loss = loss + self.mutual * self.divergence_
        return loss


def patch(mutual, shared_stream):
    """Make the classifier build mutually learning ensembles."""
    make_net = classifier_module.make_net

    def make_mutual_net(params, **kwargs):
        net = make_net(params, **kwargs)
        members = member_nets(net)
        if len(members) < 2:
            raise ValueError("Mutual learning needs n_networks >= 2.")
        exchange = LogitExchange(len(members))
        for k, member in enumerate(members):
            member.__class__ = MutualNet
            member.mutual, member.shared_stream = mutual, shared_stream
            member.member_index, member.exchange = k, exchange
            member.first_member = members[0]
        return net

    classifier_module.make_net = make_mutual_net


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutual", type=float, default=1.0)
    parser.add_argument("--own-streams", action="store_true")
    args, rest = parser.parse_known_args(argv)
    if args.own_streams and args.mutual:
        parser.error("--own-streams needs --mutual 0: peers must see one stream.")
    patch(args.mutual, shared_stream=not args.own_streams)
    print(
        f"mutual learning: weight {args.mutual}, shared stream {not args.own_streams}",
        flush=True,
    )
    import bench_classifier

    return bench_classifier.main(rest)


if __name__ == "__main__":
    main(sys.argv[1:])
