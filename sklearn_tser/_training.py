"""The skorch net behind EmotionEmbeddingClassifier: data, phases and guards.

Training is a chain of short steps, each overridable (skorch's habit):

- :class:`SpectrogramDataset` serves standardised spectrograms, with a random
  crop of ``crop_frames`` and SpecAugment-style masks when training, the whole
  clip otherwise; :func:`collate_spectrograms` pads a batch to its longest clip.
- :class:`EmbeddingNet` is a :class:`skorch.NeuralNet` whose ``get_loss`` is
  cross-entropy on the softmax head in the ``"softmax"`` phase and the triplet
  loss on the embeddings in the ``"triplet"`` phase, and which stops with a clear
  error when the loss stops being finite.
- :class:`CollapseMonitor` watches the embeddings of a probe set during the
  triplet phase and stops training, restoring the last healthy weights, when they
  collapse to one point.
"""

import copy
import sys
import time
import warnings

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping

from ._losses import TripletLoss, embedding_collapse_score

__all__ = [
    "CollapseMonitor",
    "EpochProgressBar",
    "PhaseEarlyStopping",
    "StopPhase",
    "CosineAnnealing",
    "EmbeddingCollapseWarning",
    "EmbeddingNet",
    "SpectrogramDataset",
    "TrainingDivergedError",
    "collate_spectrograms",
]


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


class EmbeddingCollapseWarning(UserWarning):
    """The embeddings collapsed towards a single point during triplet training."""


class SpectrogramDataset(torch.utils.data.Dataset):
    """Spectrograms with their lengths, randomly cropped and masked in training.

    Parameters
    ----------
    X : ndarray of shape (n_clips, n_mels, n_frames), dtype float32
        Standardised spectrograms, padding frames set to 0.
    lengths : ndarray of shape (n_clips,)
        Valid frames of each clip.
    y : ndarray of shape (n_clips,) or None
        Encoded labels.
    crop_frames : int or None, default=None
        Length of the random crop taken from clips longer than it (training);
        ``None`` serves whole clips.
    freq_masks, time_masks : int, default=0
        Number of frequency and time masks (set to 0, the mean) per clip.
    freq_mask_width, time_mask_width : int, default=0
        Largest width of a mask, in mel bands and frames.
    seed : int, default=0
        Seed of the crop and mask positions.
    """

    def __init__(
        self,
        X,
        lengths,
        y=None,
        *,
        crop_frames=None,
        freq_masks=0,
        freq_mask_width=0,
        time_masks=0,
        time_mask_width=0,
        seed=0,
    ):
        self.X = X
        self.lengths = lengths
        self.y = y
        self.crop_frames = crop_frames
        self.freq_masks = freq_masks
        self.freq_mask_width = freq_mask_width
        self.time_masks = time_masks
        self.time_mask_width = time_mask_width
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return len(self.lengths)

    def __getitem__(self, i):
        n = int(self.lengths[i])
        start = 0
        if self.crop_frames is not None and n > self.crop_frames:
            start = int(self.rng.integers(0, n - self.crop_frames + 1))
            n = self.crop_frames
        x = self.X[i, :, start : start + n]
        if self.freq_masks or self.time_masks:
            x = self._mask(x.copy())
        target = -1 if self.y is None else int(self.y[i])
        return {"x": torch.from_numpy(np.ascontiguousarray(x)), "lengths": n}, target

    def _mask(self, x):
        for axis, count, size in (
            (0, self.freq_masks, self.freq_mask_width),
            (1, self.time_masks, self.time_mask_width),
        ):
            axis_len = x.shape[axis]
            for _ in range(count):
                width = int(self.rng.integers(0, min(size, axis_len // 2) + 1))
                if width:
                    lo = int(self.rng.integers(0, axis_len - width + 1))
                    index = [slice(None), slice(None)]
                    index[axis] = slice(lo, lo + width)
                    x[tuple(index)] = 0.0
        return x


def collate_spectrograms(batch):
    """Pad a list of ``({"x", "lengths"}, y)`` items to the batch's longest clip."""
    xs = [item[0]["x"] for item in batch]
    lengths = torch.tensor([item[0]["lengths"] for item in batch], dtype=torch.long)
    out = xs[0].new_zeros((len(xs), xs[0].shape[0], int(lengths.max())))
    for j, x in enumerate(xs):
        out[j, :, : x.shape[1]] = x
    y = torch.tensor([item[1] for item in batch], dtype=torch.long)
    return {"x": out, "lengths": lengths}, y


class EmbeddingNet(NeuralNet):
    """skorch net training an embedding network in two phases.

    Parameters
    ----------
    *args, **kwargs
        As for :class:`skorch.NeuralNet`; the module must return
        ``(logits, embeddings)``.
    phase : {"softmax", "triplet"}, default="softmax"
        ``"softmax"``: cross-entropy on the logits. ``"triplet"``: triplet loss on
        the L2-normalised embeddings.
    margin : float, default=0.2
        Triplet margin, in cosine distance.
    mining : str, default="semi_hard"
        Triplet miner (see :mod:`sklearn_tser._losses`).
    ce_weight : float, default=0.0
        Weight of the cross-entropy kept during the triplet phase.
    amp : bool, default=True
        Mixed precision (bfloat16 autocast) when the device is CUDA.
    """

    def __init__(
        self,
        *args,
        phase="softmax",
        margin=0.2,
        mining="semi_hard",
        ce_weight=0.0,
        amp=True,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.phase = phase
        self.margin = margin
        self.mining = mining
        self.ce_weight = ce_weight
        self.amp = amp

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        # skorch swallows KeyboardInterrupt in partial_fit; remember whether the
        # user pressed Ctrl-C (not the collapse monitor) so that the estimator
        # can skip the remaining phases.
        self.interrupted_ = False
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt as exc:
            self.interrupted_ = not isinstance(exc, StopPhase)
            raise

    def infer(self, x, **fit_params):
        if self.amp and torch.device(self.device).type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = super().infer(x, **fit_params)
            return tuple(o.float() for o in out)
        return super().infer(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        logits, embeddings = y_pred
        y_true = y_true.to(logits.device)
        if self.phase == "softmax":
            loss = self.criterion_(logits, y_true)
        else:
            triplet = TripletLoss(margin=self.margin, mining=self.mining)
            loss = triplet(embeddings, y_true)
            if self.ce_weight:
                loss = loss + self.ce_weight * self.criterion_(logits, y_true)
        if training and not torch.isfinite(loss):
            raise TrainingDivergedError(
                f"The {self.phase} loss became {loss.item()} at epoch "
                f"{len(self.history)}. Lower the learning rate (lr={self.lr}) or "
                "the weight decay, or check the input scale (spectrograms should "
                "be finite log-mel values, as LogMelTransformer gives)."
            )
        return loss


class CollapseMonitor(Callback):
    """Stop the triplet phase when the embeddings collapse to one point.

    After each triplet epoch the embeddings of a fixed probe set are computed in
    evaluation mode; their mean pairwise cosine similarity is recorded in the
    history as ``collapse``. Above ``threshold`` training stops, the weights of
    the last healthy epoch are restored and an :class:`EmbeddingCollapseWarning`
    says so.

    Parameters
    ----------
    probe : callable
        ``probe(module) -> embeddings`` tensor of shape (n, embedding_dim).
    threshold : float, default=0.99
    """

    def __init__(self, probe, threshold=0.99):
        self.probe = probe
        self.threshold = threshold

    def on_train_begin(self, net, **kwargs):
        self.healthy_state_ = copy.deepcopy(net.module_.state_dict())
        self.collapsed_epoch_ = None

    def on_epoch_end(self, net, **kwargs):
        if net.phase != "triplet":
            return
        score = float(embedding_collapse_score(self.probe(net.module_)))
        net.history.record("collapse", score)
        if score < self.threshold:
            self.healthy_state_ = copy.deepcopy(net.module_.state_dict())
            return
        self.collapsed_epoch_ = len(net.history)
        net.module_.load_state_dict(self.healthy_state_)
        warnings.warn(
            f"The embeddings collapsed at epoch {self.collapsed_epoch_}: their mean "
            f"cosine similarity reached {score:.3f} (>= {self.threshold}). Training "
            "stopped and the last healthy weights were restored. Lower the triplet "
            "learning rate or the margin, or train longer with softmax first.",
            EmbeddingCollapseWarning,
            stacklevel=2,
        )
        raise StopPhase  # skorch's way to stop training early


class StopPhase(KeyboardInterrupt):
    """Raised by a callback to end a training phase early; not a user interrupt.

    skorch stops ``fit`` on ``KeyboardInterrupt``; this subclass lets the
    estimator tell a planned stop (early stopping, collapse) from Ctrl-C.
    """


class PhaseEarlyStopping(EarlyStopping):
    """skorch's :class:`~skorch.callbacks.EarlyStopping`, stopping with
    :class:`StopPhase` so that a stop is not taken for a user interrupt."""

    def on_epoch_end(self, net, **kwargs):
        try:
            super().on_epoch_end(net, **kwargs)
        except StopPhase:
            raise
        except KeyboardInterrupt:  # skorch's early stop
            raise StopPhase from None


class CosineAnnealing(Callback):
    """Cosine learning-rate schedule over one ``partial_fit`` call (one phase).

    Unlike skorch's ``LRScheduler``, the schedule restarts at each call from the
    net's current ``lr``, which is what a second training phase needs.

    Parameters
    ----------
    T_max : int, default=1
        Epochs of the phase; the rate falls from ``net.lr`` to 0 over them.
    """

    def __init__(self, T_max=1):
        self.T_max = T_max

    def on_train_begin(self, net, **kwargs):
        self.first_epoch_ = len(net.history)

    def on_epoch_begin(self, net, **kwargs):
        step = len(net.history) - 1 - self.first_epoch_
        lr = 0.5 * net.lr * (1.0 + np.cos(np.pi * step / max(1, self.T_max)))
        for group in net.optimizer_.param_groups:
            group["lr"] = lr
        net.history.record("lr", lr)


class EpochProgressBar(Callback):
    """A one-line progress bar over the epochs of each training phase.

    Redrawn in place (carriage return) after every epoch on ``stream``, with
    the phase, the epoch count, the losses of the last epoch and the elapsed
    time; the line is finished when the phase ends. skorch's per-epoch table
    (``verbose >= 2`` of the classifier) is the detailed alternative.

    Parameters
    ----------
    total : int, default=1
        Epochs of the phase (the bar's length); set before each phase.
    stream : file-like or None, default=None
        Where to draw; ``None`` means ``sys.stderr`` at draw time.
    width : int, default=24
        Characters of the bar.
    """

    def __init__(self, total=1, stream=None, width=24):
        self.total = total
        self.stream = stream
        self.width = width

    def on_train_begin(self, net, **kwargs):
        self.first_epoch_ = len(net.history)
        self.start_ = time.perf_counter()

    def on_epoch_end(self, net, **kwargs):
        done = len(net.history) - self.first_epoch_
        total = max(self.total, done, 1)
        filled = int(round(self.width * done / total))
        bar = "#" * filled + "." * (self.width - filled)
        last = net.history[-1]
        losses = f"loss {last.get('train_loss', float('nan')):.4f}"
        if "valid_loss" in last:
            losses += f", valid {last['valid_loss']:.4f}"
        elapsed = time.perf_counter() - self.start_
        self._write(
            f"\r  {net.phase:<8} [{bar}] {done:>3}/{total} epochs, {losses}, "
            f"{elapsed:.0f} s"
        )

    def on_train_end(self, net, **kwargs):
        if len(net.history) > self.first_epoch_:
            self._write("\n")

    def _write(self, text):
        stream = sys.stderr if self.stream is None else self.stream
        stream.write(text)
        stream.flush()
