"""Training faults: diverging loss, interrupted fits, warm starts."""

import collections
import copy
import os
import re
import signal
import threading

import numpy as np
import pytest
import torch
from _params import TINY
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV

from sklearn_tser import EmotionEmbeddingClassifier
from sklearn_tser import _training as training_module
from sklearn_tser._training import EmbeddingNet, make_net
from sklearn_tser.exceptions import TrainingDivergedError


def spectrograms(n=30, n_mels=12, n_frames=20, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(["angry", "happy", "sad"])[np.arange(n) % 3]
    X = rng.standard_normal((n, n_mels, n_frames)).astype(np.float32)
    X[np.arange(n) % 3 == 0, :3] += 2.0
    X[::4, :, 14:] = np.nan
    return X, y


@pytest.fixture(scope="module")
def data():
    return spectrograms()


def assert_unfitted(clf, X):
    assert not [k for k in vars(clf) if k.endswith("_")]
    with pytest.raises(NotFittedError):
        clf.predict(X)


def weights(clf):
    return {k: v.detach().clone() for k, v in clf.net_.module_.named_parameters()}


@pytest.mark.parametrize(
    "params, fused, match",
    [
        ({"lr": 1e8}, True, r"softmax loss became (nan|inf) at epoch \d"),
        # torch's overflow error comes from AdamW's loop over the weights, the
        # optimizer of devices without the fused kernel (which lets the loss
        # become NaN instead, as above).
        ({"softmax_optimizer": "adamw", "lr": 1e38}, False, r"Training overflowed"),
        ({"pretrain_epochs": 0, "triplet_lr": 1e30}, True, "triplet loss became nan"),
    ],
    ids=["nan-loss", "overflow", "triplet-phase"],
)
def test_diverging_loss_stops_with_advice(data, params, fused, match, monkeypatch):
    X, y = data
    if not fused:
        monkeypatch.setattr(training_module, "_FUSED_DEVICES", ())
    clf = EmotionEmbeddingClassifier(**{**TINY, "triplet_epochs": 2, **params})
    with pytest.raises(TrainingDivergedError, match=match) as info:
        clf.fit(X, y)
    message = str(info.value)
    assert "Lower the learning rate" in message and "input scale" in message
    assert_unfitted(clf, X)  # no half-fitted state left behind
    # A sane learning rate then fits the same estimator.
    clf.set_params(lr=1e-3, triplet_lr=None, pretrain_epochs=1, triplet_epochs=1)
    assert np.isfinite(clf.fit(X, y).transform(X)).all()


def _interrupt_at_the_second_batch(monkeypatch):
    """Make the second training step of any net raise KeyboardInterrupt (as
    Ctrl-C would); return the list of ``(seed, phase)`` of each step."""
    calls = []
    original = EmbeddingNet.train_step

    def interrupted(self, batch, **fit_params):
        calls.append((self.random_state, self.phase_))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, batch, **fit_params)

    monkeypatch.setattr(EmbeddingNet, "train_step", interrupted)
    return calls


def test_keyboard_interrupt_during_an_epoch_leaves_a_usable_model(data, monkeypatch):
    """Ctrl-C stops training (no triplet phase), the model is finished with the
    weights reached, and the interrupt goes on to stop the caller."""
    X, y = data
    calls = _interrupt_at_the_second_batch(monkeypatch)
    clf = EmotionEmbeddingClassifier(**{**TINY, "pretrain_epochs": 5})
    with pytest.raises(KeyboardInterrupt, match="interrupted at epoch 1"):
        clf.fit(X, y)
    # Stopped at its 2nd batch, no triplets.
    assert [phase for _, phase in calls] == ["softmax", "softmax"]
    assert clf.interrupted_
    assert len(clf.net_.history) < 5 + 1
    assert np.isfinite(clf.centroids_).all()
    assert set(clf.predict(X)) <= set(clf.classes_)


def test_keyboard_interrupt_in_an_ensemble_leaves_later_members_initial(
    data, monkeypatch
):
    """Ctrl-C during the first member skips the others: they keep their
    initial weights, and the ensemble still predicts."""
    X, y = data
    calls = _interrupt_at_the_second_batch(monkeypatch)
    # One network after the other (n_jobs=None), as the threads have tests of
    # their own.
    params = {**TINY, "pretrain_epochs": 5, "n_networks": 2, "n_jobs": None}
    clf = EmotionEmbeddingClassifier(**params)
    with pytest.raises(KeyboardInterrupt, match=r"at epoch 1 of network 1 \(of 2\)"):
        clf.fit(X, y)
    first, second = clf.net_.nets
    assert [seed for seed, _ in calls] == [first.random_state] * 2
    assert clf.interrupted_
    fresh = make_net(
        {**clf.get_params(), "n_networks": 1},
        n_mels=X.shape[1],
        n_classes=len(clf.classes_),
        device="cpu",
        random_state=second.random_state,
    ).initialize()
    for name, value in fresh.module_.state_dict().items():
        torch.testing.assert_close(second.module_.state_dict()[name], value)
    assert np.isfinite(clf.centroids_).all()
    assert set(clf.predict(X)) <= set(clf.classes_)


def _count_steps(monkeypatch, action):
    """Count each net's training steps (by seed, across threads), calling
    ``action(net, count)`` before each; return the counts."""
    steps, lock = collections.Counter(), threading.Lock()
    original = EmbeddingNet.train_step

    def counted(self, batch, **fit_params):
        with lock:
            steps[self.random_state] += 1
            action(self, steps[self.random_state])
        return original(self, batch, **fit_params)

    monkeypatch.setattr(EmbeddingNet, "train_step", counted)
    return steps


# 20 epochs of 2 batches for each network, and its triplet epoch: never reached.
_LONG_ENSEMBLE = {**TINY, "pretrain_epochs": 20, "n_networks": 2, "n_jobs": 2}


def test_an_interrupted_network_stops_the_others_in_threads(data, monkeypatch):
    """Ctrl-C in one network of an ensemble training in threads stops the
    others at their next batch; the ensemble keeps the weights reached."""
    X, y = data
    interrupted = []

    def interrupt_once_both_have_started(net, count):
        if len(steps) == 2 and not interrupted:
            interrupted.append(net.random_state)
            raise KeyboardInterrupt

    steps = _count_steps(monkeypatch, interrupt_once_both_have_started)
    clf = EmotionEmbeddingClassifier(**_LONG_ENSEMBLE)
    with pytest.raises(KeyboardInterrupt) as raised:
        clf.fit(X, y)
    # The message names the network Ctrl-C hit, not the one it stopped.
    k = [net.random_state for net in clf.net_.nets].index(interrupted[0])
    assert re.search(rf"at epoch \d+ of network {k + 1} \(of 2\)", str(raised.value))
    assert f"network {2 - k}" not in str(raised.value)
    assert clf.interrupted_ and all(net.interrupted_ for net in clf.net_.nets)
    assert sum(steps.values()) < 20
    assert all(net.history[-1]["phase"] == "softmax" for net in clf.net_.nets)
    assert np.isfinite(clf.centroids_).all()
    assert set(clf.predict(X)) <= set(clf.classes_)


def test_ctrl_c_in_the_main_thread_stops_an_ensemble_training_in_threads(
    data, monkeypatch
):
    """SIGINT reaches the main thread while it waits for the networks' threads:
    it stops every network at its next batch, and the fit raises it."""
    X, y = data
    sent = []

    def sigint_once_both_have_started(net, count):
        if len(steps) == 2 and not sent:
            sent.append(net.random_state)
            os.kill(os.getpid(), signal.SIGINT)

    steps = _count_steps(monkeypatch, sigint_once_both_have_started)
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        clf = EmotionEmbeddingClassifier(**_LONG_ENSEMBLE)
        # Both stopped by the caller's Ctrl-C: the message names both.
        match = r"at epoch \d+ of network 1, epoch \d+ of network 2 \(of 2\)"
        with pytest.raises(KeyboardInterrupt, match=match):
            clf.fit(X, y)
    finally:
        signal.signal(signal.SIGINT, handler)
    assert clf.interrupted_ and all(net.interrupted_ for net in clf.net_.nets)
    assert sum(steps.values()) < 20
    assert set(clf.predict(X)) <= set(clf.classes_)


def test_a_failing_network_stops_the_others_in_threads(data, monkeypatch):
    """An error in one network's thread stops the others and reaches the
    caller; the classifier stays unfitted. (Trained one after the other, the
    first network would take all its steps before the error.)"""
    X, y = data
    failed = []

    def fail_once_both_have_started(net, count):
        if len(steps) == 2 and not failed:
            failed.append(net.random_state)
            raise ValueError("boom")

    steps = _count_steps(monkeypatch, fail_once_both_have_started)
    clf = EmotionEmbeddingClassifier(**_LONG_ENSEMBLE)
    with pytest.raises(ValueError, match="boom"):
        clf.fit(X, y)
    assert failed and sum(steps.values()) < 20
    assert_unfitted(clf, X)


def test_keyboard_interrupt_stops_a_grid_search(data, monkeypatch):
    """A fit cut short by Ctrl-C is never scored as if it had finished."""
    X, y = data
    fits = []

    def interrupted(self, batch, **fit_params):
        fits.append(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(EmbeddingNet, "train_step", interrupted)
    search = GridSearchCV(
        EmotionEmbeddingClassifier(**TINY), {"margin": [0.1, 0.2]}, cv=2
    )
    with pytest.raises(KeyboardInterrupt):
        search.fit(X, y)
    assert len(fits) == 1
    assert not hasattr(search, "cv_results_")


def test_warm_start_after_an_interrupt_trains_the_triplet_phase(data, monkeypatch):
    """An interrupt of one fit does not make the next (warm) fit skip triplets."""
    X, y = data
    original = EmbeddingNet.train_step

    def interrupted(self, batch, **fit_params):
        raise KeyboardInterrupt

    clf = EmotionEmbeddingClassifier(**{**TINY, "pretrain_epochs": 3}, warm_start=True)
    with monkeypatch.context() as m:
        m.setattr(EmbeddingNet, "train_step", interrupted)
        with pytest.raises(KeyboardInterrupt, match="interrupted"):
            clf.fit(X, y)
    assert EmbeddingNet.train_step is original
    n_epochs = len(clf.net_.history)
    clf.set_params(pretrain_epochs=0, triplet_epochs=2).fit(X, y)
    assert not clf.interrupted_
    phases = [row["phase"] for row in clf.net_.history[n_epochs:]]
    assert phases == ["triplet", "triplet"]


def test_keyboard_interrupt_outside_an_epoch_leaves_it_unfitted(data, monkeypatch):
    X, y = data

    def interrupted(self, *args):
        raise KeyboardInterrupt

    clf = EmotionEmbeddingClassifier(**TINY)
    with monkeypatch.context() as m:
        m.setattr(EmotionEmbeddingClassifier, "_fit_centroids", interrupted)
        with pytest.raises(KeyboardInterrupt):
            clf.fit(X, y)
    assert_unfitted(clf, X)
    assert clf.fit(X, y).predict(X).shape == (len(X),)  # and it can be refitted


def test_interrupted_warm_start_keeps_the_previous_model(data, monkeypatch):
    X, y = data
    clf = EmotionEmbeddingClassifier(**TINY).fit(X, y)
    before = clf.decision_function(X)
    state, n_epochs = weights(clf), len(clf.net_.history)

    def interrupted(self, *args):
        raise KeyboardInterrupt

    clf.set_params(warm_start=True)
    with monkeypatch.context() as m:
        m.setattr(EmotionEmbeddingClassifier, "_fit_centroids", interrupted)
        with pytest.raises(KeyboardInterrupt):
            clf.fit(X, y)  # trains the net in place, then is interrupted
    np.testing.assert_array_equal(clf.decision_function(X), before)
    for name, value in weights(clf).items():
        torch.testing.assert_close(value, state[name], rtol=0, atol=0)
    assert len(clf.net_.history) == n_epochs


def test_warm_start_continues_from_the_last_weights(data):
    X, y = data
    clf = EmotionEmbeddingClassifier(**{**TINY, "weight_decay": 0.0}).fit(X, y)
    net, first, n_epochs = clf.net_, weights(clf), len(clf.net_.history)
    # Another seed and a vanishing learning rate in both phases: a warm start
    # keeps the weights (a cold start would draw new ones from the new seed).
    params = dict(
        random_state=1, lr=1e-12, triplet_lr=1e-12, pretrain_epochs=1, triplet_epochs=1
    )
    clf.set_params(warm_start=True, **params).fit(X, y)
    assert clf.net_ is net
    assert len(clf.net_.history) == n_epochs + 2
    for name, value in weights(clf).items():
        torch.testing.assert_close(value, first[name], rtol=0, atol=1e-6)
    cold = EmotionEmbeddingClassifier(**{**TINY, "weight_decay": 0.0, **params})
    cold.fit(X, y)
    assert len(cold.net_.history) == 2
    assert any(not torch.allclose(v, first[k]) for k, v in weights(cold).items())


def test_warm_start_keeps_learning(data):
    X, y = data
    clf = EmotionEmbeddingClassifier(**{**TINY, "pretrain_epochs": 1}).fit(X, y)
    first = weights(clf)
    clf.set_params(warm_start=True, triplet_epochs=0).fit(X, y)
    changed = [k for k, v in weights(clf).items() if not torch.equal(v, first[k])]
    assert changed  # the second fit trained from the first fit's weights
    again = copy.deepcopy(clf).set_params(warm_start=False).fit(X, y)
    assert len(again.net_.history) == 1  # warm_start=False starts anew


def test_early_stopping_ends_a_phase_without_skipping_the_next(data):
    """Early stopping is a planned stop, not an interrupt: triplets still train."""
    import warnings

    X, y = data
    clf = EmotionEmbeddingClassifier(
        **{**TINY, "pretrain_epochs": 30, "triplet_epochs": 2},
        lr=1e-9,  # the validation loss cannot improve: early stopping fires
        patience=1,
        validation_fraction=0.3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        clf.fit(X, y)
    history = clf.net_.history
    phases = [row["phase"] for row in history]
    assert phases.count("softmax") < 30  # the softmax phase stopped early
    assert phases.count("triplet") == 2  # both triplet epochs ran
