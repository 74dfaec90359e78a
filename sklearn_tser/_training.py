"""The skorch net behind EmotionEmbeddingClassifier: data, phases and guards.

Training is a chain of short steps, each overridable (skorch's habit):

- :class:`SpectrogramDataset` serves batches of spectrograms, standardised as
  they are read, padded to the batch's longest clip.
- :class:`EmbeddingNet` is a :class:`skorch.NeuralNet` that trains in phases
  (:meth:`EmbeddingNet.fit_phases`): softmax pre-training, then triplet
  training on class-balanced P x K batches (:meth:`EmbeddingNet.get_iterator`).
  Each training batch is cropped and masked in torch on the training device
  (:meth:`EmbeddingNet.augment`); :meth:`EmbeddingNet.get_loss` is the loss of
  the current phase.
- Callbacks own their state: :class:`CosineAnnealing` (the learning rate of a
  phase), :class:`PhaseEarlyStopping`, :class:`CollapseMonitor` (stops the
  triplet phase when the embeddings collapse) and :class:`PhaseProgressBar`.
- :func:`make_net` builds the net from the classifier's parameters; the
  classifier and :func:`sklearn_tser.load` both use it.
"""

import contextlib
import copy
import functools
import math
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
import torch
from joblib import effective_n_jobs
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, GradientNormClipping
from skorch.history import History

from ._losses import TripletLoss, angular_margin_logits, l2_normalize
from ._networks import (
    EmbeddingNetwork,
    clip_statistics,
    initialize_weights,
    use_generator,
)
from ._sampling import ClassBalancedBatchSampler
from ._warnings import user_stacklevel
from .exceptions import EmbeddingCollapseWarning, TrainingDivergedError

__all__ = [
    "NETWORK_PARAMS",
    "CollapseMonitor",
    "CosineAnnealing",
    "EmbeddingEnsemble",
    "EmbeddingNet",
    "PhaseEarlyStopping",
    "PhaseProgressBar",
    "SpectrogramDataset",
    "join_embeddings",
    "make_net",
    "member_nets",
    "member_seeds",
    "group_standardization",
    "networks_at_once",
    "network_shapes",
    "optimizer_settings",
    "serves_scales",
    "speech_regions",
    "standardization",
    "training_params",
]

# The classifier's parameters that shape the network: make_net passes them to
# the module, and a warm start cannot change them.
NETWORK_PARAMS = (
    "architecture",
    "n_layers",
    "embedding_dim",
    "width",
    "stem",
    "pooling",
    "dilation",
    "deltas",
    "squeeze_excitation",
    "zero_init_residual",
    "dropout",
)

# Values of the classifier's ``precision``; see autocast_dtype.
PRECISIONS = ("auto", "float32", "bfloat16")

# Floor on a standard deviation used to standardise, so that a constant mel
# band (or clip) does not divide by zero.
_STD_FLOOR = 1e-3


# ---------------------------------------------------------------------- data


def speech_regions(X, trim_db=None):
    """Where each clip's speech is: its frames without leading and trailing
    silence.

    A frame is silent when its energy (the mean of its mel band powers) is
    more than ``trim_db`` below that of the clip's loudest frame; the region
    runs from the first to the last frame that is not, as
    :func:`librosa.effects.trim` does with waveforms.

    Parameters
    ----------
    X : Spectrograms
        Log-mel spectrograms in dB (as :func:`check_spectrograms` returns).
    trim_db : float > 0 or None, default=None
        ``None`` keeps whole clips.

    Returns
    -------
    starts, lengths : ndarray of shape (n_clips,), dtype int64
        First frame and number of frames of each region (at least 1).
    """
    lengths = np.asarray(X.lengths, dtype=np.int64)
    starts = np.zeros(len(lengths), dtype=np.int64)
    if trim_db is None:
        return starts, lengths.copy()
    out = lengths.copy()
    for chunk in _blocks(np.arange(len(lengths)), lengths, X.n_mels):
        x, valid = _frames(X, chunk, starts[chunk], lengths[chunk])
        peak = np.where(valid, x, -np.inf).max(axis=(1, 2), keepdims=True)
        # Powers relative to the clip's peak: no overflow whatever the scale.
        power = np.where(valid, 10.0 ** ((x - peak) / 10.0), 0.0).mean(axis=1)
        energy = 10.0 * np.log10(np.maximum(power, 1e-30))  # (n, frames)
        loud = energy >= energy.max(axis=1, keepdims=True) - trim_db
        first = loud.argmax(axis=1)
        last = loud.shape[1] - 1 - loud[:, ::-1].argmax(axis=1)
        starts[chunk], out[chunk] = first, last - first + 1
    return starts, out


def standardization(X, starts, lengths, indices=None):
    """Mean and standard deviation of each mel band over the clips' frames.

    Parameters
    ----------
    X : Spectrograms
        Spectrograms (as :func:`check_spectrograms` returns).
    starts, lengths : ndarray of shape (n_clips,)
        First frame and number of frames of each clip's region (see
        :func:`speech_regions`).
    indices : ndarray of int or None, default=None
        The clips to take the statistics of; ``None`` means all.

    Returns
    -------
    mean, std : ndarray of shape (n_mels,), dtype float32
        ``std`` is floored at 1e-3.
    """
    indices = np.arange(len(lengths)) if indices is None else np.asarray(indices)
    count = lengths[indices].sum()
    blocks = _blocks(indices, lengths, X.n_mels)
    total = np.zeros(X.n_mels)
    for block in blocks:  # the frames after a clip's region are 0
        total += _frames(X, block, starts[block], lengths[block])[0].sum(
            axis=(0, 2), dtype=np.float64
        )
    mean = (total / count).astype(np.float32)
    squares = np.zeros(X.n_mels)
    for block in blocks:
        x, valid = _frames(X, block, starts[block], lengths[block])
        x -= mean[None, :, None]
        x *= valid
        squares += np.square(x, out=x).sum(axis=(0, 2), dtype=np.float64)
    std = np.sqrt(squares / count)
    return mean, np.maximum(std, _STD_FLOOR).astype(np.float32)


def group_standardization(X, starts, lengths, groups, indices=None):
    """Mean and standard deviation of each mel band over each group's frames.

    Each group (a speaker) gets the statistics of its own clips only, as
    :func:`standardization` computes them for a set of clips.

    Parameters
    ----------
    X : Spectrograms
        Spectrograms (as :func:`check_spectrograms` returns).
    starts, lengths : ndarray of shape (n_clips,)
        First frame and number of frames of each clip's region (see
        :func:`speech_regions`).
    groups : array-like of shape (n_clips,)
        The group of every clip.
    indices : ndarray of int or None, default=None
        The clips to take the statistics of; ``None`` means all.

    Returns
    -------
    mean, std : ndarray of shape (n_groups, n_mels), dtype float32
        Row ``g`` holds the statistics of the clips with ``codes == g``;
        ``std`` is floored at 1e-3.
    codes : ndarray of shape (n_indices,), dtype int64
        The row of each clip of ``indices`` (groups in sorted order).
    """
    indices = np.arange(len(lengths)) if indices is None else np.asarray(indices)
    _, codes = np.unique(np.asarray(groups)[indices], return_inverse=True)
    codes = codes.astype(np.int64).ravel()
    stats = [
        standardization(X, starts, lengths, indices[codes == g])
        for g in range(codes.max() + 1)
    ]
    mean, std = (np.stack(part) for part in zip(*stats, strict=True))
    return mean, std, codes


# Values read at a time by the passes over every clip (regions, statistics):
# 4 MiB of float32.
_BLOCK_VALUES = 2**20


def _blocks(indices, lengths, n_mels):
    """``indices`` in consecutive blocks of clips whose frames, padded to the
    block's longest, hold at most ``_BLOCK_VALUES`` values (or one clip): what
    a pass over the clips holds in memory at a time."""
    blocks, start, longest = [], 0, 0
    for k, i in enumerate(indices):
        longest = max(longest, int(lengths[i]))
        if k > start and (k + 1 - start) * longest * n_mels > _BLOCK_VALUES:
            blocks.append(indices[start:k])
            start, longest = k, int(lengths[i])
    if len(indices):
        blocks.append(indices[start:])
    return blocks


def _frames(X, indices, firsts, counts):
    """Frames ``firsts[k]`` to ``firsts[k] + counts[k]`` of clip
    ``indices[k]`` of ``X`` (:class:`Spectrograms`) for every ``k``,
    left-aligned in a zero-padded float32 array (n, n_mels, max(counts)), and
    the mask of those frames: the one copy of clip frames into a padded array,
    for the served batches (regions or crops of them), the feature statistics
    and the speech regions."""
    counts = np.asarray(counts)
    out = np.zeros((len(counts), X.n_mels, int(counts.max())), dtype=np.float32)
    for row, (i, first, count) in enumerate(zip(indices, firsts, counts, strict=True)):
        out[row, :, :count] = X[i][:, first : first + count]
    return out, (np.arange(out.shape[2]) < counts[:, None])[:, None, :]


def crop_starts(lengths, crop_frames, generator):
    """Where each clip's random crop of ``crop_frames`` frames starts.

    A crop ends within its clip (``start <= lengths - crop_frames``), or
    starts at 0 when the clip is shorter, so no crop reads past its clip's
    frames. The one draw of the training crops, whether the batch's clips
    are cropped as they are served (:class:`SpectrogramDataset`) or on the
    device (:meth:`EmbeddingNet.augment`): one uniform number per clip from
    ``generator``.

    Parameters
    ----------
    lengths : torch.Tensor of shape (batch,), dtype int64
        Frames of each clip, on ``generator``'s device.
    crop_frames : int >= 1
        Frames of a crop.
    generator : torch.Generator
        Source of the draw: one uniform number per clip.

    Returns
    -------
    starts : torch.Tensor of shape (batch,), dtype int64
        On ``generator``'s device.
    """
    room = (lengths - crop_frames).clamp(min=0)
    draw = torch.rand(len(lengths), generator=generator, device=lengths.device)
    return (draw * (room + 1)).long()


class SpectrogramDataset(torch.utils.data.Dataset):
    """Spectrograms served in batches, standardised as they are read.

    A batch (:meth:`__getitems__`, which torch's ``DataLoader`` calls with the
    indices of a batch) is ``({"x": x, "lengths": lengths}, y)``: ``x`` of shape
    ``(batch, n_mels, longest)`` holds the standardised frames of each clip's
    region and zeros after them (the dict holds ``"speakers"`` and ``"scale"``
    too where asked, below). Only one batch is standardised at a time.

    Parameters
    ----------
    X : Spectrograms
        Spectrograms (as :func:`check_spectrograms` returns), read a batch at
        a time.
    starts, lengths : ndarray of shape (n_clips,)
        First frame and number of frames of each clip's region (at least 1).
    y : ndarray of shape (n_clips,) or None, default=None
        Encoded labels; -1 is served when None.
    indices : ndarray of int or None, default=None
        The clips of ``X`` the dataset serves, in order; ``None`` means all.
        Serving a subset this way copies no spectrogram.
    mean, std : ndarray of shape (n_mels,) or (n_groups, n_mels), or None, \
default=None
        Standardisation of every mel band: 1-D, the same for every clip; 2-D,
        one row per group of clips, with ``stat_rows``; ``None`` standardises
        each clip with its own mean and standard deviation per band.
    stat_rows : ndarray of shape (n_served,) or None, default=None
        With 2-D ``mean`` and ``std`` (and only then): the row of the
        statistics of each clip served, in the order of ``indices`` (the
        ``codes`` of :func:`group_standardization`).
    speakers : ndarray of shape (n_clips,) or None, default=None
        Encoded speaker of every clip (0 to ``n_speakers - 1``), served in the
        batch as ``"speakers"`` when given (see ``speaker_adversarial`` of
        :class:`EmbeddingNet`).
    scales : bool, default=False
        Whether a batch also holds ``"scale"`` and ``"offset"``, each of
        shape ``(batch, n_mels)``: the standard deviation each clip's bands
        were divided by and the mean they were centred on, in the units of
        ``X`` (what ``reverberation`` and ``noise_snr`` of
        :class:`EmbeddingNet` need to return to them).

    Attributes
    ----------
    lengths, y : ndarray of shape (n_served,)
        Frames and labels of the clips served.
    speakers : ndarray of shape (n_served,) or None
        Speakers of the clips served.
    crop_frames : int or None
        Frames of the random crop of each clip served, or ``None`` for whole
        regions (see :meth:`cropped`).
    generator : torch.Generator or None
        Source of the crops' draws (see :meth:`cropped`).
    """

    def __init__(
        self,
        X,
        starts,
        lengths,
        y=None,
        *,
        indices=None,
        mean=None,
        std=None,
        stat_rows=None,
        speakers=None,
        scales=False,
    ):
        self.X = X
        self.scales = scales
        self.crop_frames, self.generator = None, None  # see cropped()
        self.indices = np.arange(len(X)) if indices is None else np.asarray(indices)
        self._starts = np.asarray(starts, dtype=np.int64)
        self._lengths = np.asarray(lengths, dtype=np.int64)
        self.lengths = self._lengths[self.indices]
        self.y = None if y is None else np.asarray(y, dtype=np.int64)[self.indices]
        self.speakers = (
            None
            if speakers is None
            else np.asarray(speakers, dtype=np.int64)[self.indices]
        )
        if (stat_rows is None) != (mean is None or np.ndim(mean) == 1):
            raise ValueError(
                "stat_rows goes with 2-D mean and std (one row per group), and "
                f"only with them; got mean of shape {np.shape(mean)} and "
                f"stat_rows={'None' if stat_rows is None else 'an array'}."
            )
        self.mean = mean
        self.std = std
        self.stat_rows = (
            None if stat_rows is None else np.asarray(stat_rows, dtype=np.int64)
        )
        if self.stat_rows is not None and self.stat_rows.shape != self.indices.shape:
            raise ValueError(
                f"stat_rows has shape {self.stat_rows.shape}; expected one row "
                f"per clip served, shape {self.indices.shape}."
            )

    def __len__(self):
        return len(self.indices)

    def cropped(self, crop_frames, generator):
        """This dataset, serving a random crop of each clip's region.

        Each batch then holds, for each clip, ``crop_frames`` consecutive
        frames of its region (all of them when it is shorter), from where
        :func:`crop_starts` draws with ``generator`` as the batch is read:
        only the crops are copied and standardised. The clips are
        standardised as the whole clips would be (with ``mean=None``, by the
        statistics of their whole regions).

        Parameters
        ----------
        crop_frames : int >= 1
            Frames of each crop.
        generator : torch.Generator
            Source of the draws (:func:`crop_starts`), read as the batches
            are; the dataset does not own it.

        Returns
        -------
        dataset : SpectrogramDataset
            A shallow copy: no spectrogram is copied.
        """
        view = copy.copy(self)
        view.crop_frames, view.generator = int(crop_frames), generator
        return view

    def __getitems__(self, indices):
        idx = np.asarray(indices, dtype=np.int64)
        clips, lengths = self.indices[idx], self.lengths[idx]
        firsts = self._starts[clips]
        served = None  # (frames, mask) of what is served
        if self.mean is None or self.crop_frames is None:  # the whole regions
            served = _frames(self.X, clips, firsts, lengths)
        mean, std = self._statistics(idx, lengths, served)
        if self.crop_frames is not None:
            on = torch.from_numpy(lengths).to(self.generator.device)
            drawn = crop_starts(on, self.crop_frames, self.generator)
            firsts = firsts + drawn.cpu().numpy()
            lengths = np.minimum(lengths, self.crop_frames)
            served = _frames(self.X, clips, firsts, lengths)
        x, valid = served
        x -= mean
        x /= std
        x *= valid
        y = np.full(len(idx), -1) if self.y is None else self.y[idx]
        batch = {"x": torch.from_numpy(x), "lengths": torch.from_numpy(lengths)}
        if self.speakers is not None:
            batch["speakers"] = torch.from_numpy(self.speakers[idx])
        if self.scales:
            for key, value in (("scale", std), ("offset", mean)):
                value = np.broadcast_to(value[:, :, 0], x.shape[:2])
                batch[key] = torch.from_numpy(np.array(value, dtype=np.float32))
        return batch, torch.from_numpy(y)

    def __getitem__(self, i):
        return self.__getitems__([i])

    def _statistics(self, idx, lengths, region):
        """The mean and standard deviation the clips ``idx`` served are
        standardised with, each of shape (n, n_mels, 1) or (1, n_mels, 1);
        ``region`` is their whole regions' ``(frames, mask)`` (read only
        with ``mean=None``, each clip's own statistics)."""
        if self.stat_rows is not None:  # one row per group of clips
            rows = self.stat_rows[idx]
            return self.mean[rows][:, :, None], self.std[rows][:, :, None]
        if self.mean is not None:
            return self.mean[None, :, None], self.std[None, :, None]
        x, valid = region
        n = lengths[:, None, None].astype(np.float32)  # 0 after a clip's end
        mean = x.sum(axis=2, keepdims=True) / n
        var = np.square(np.where(valid, x - mean, 0)).sum(axis=2, keepdims=True)
        return mean, np.maximum(np.sqrt(var / n), _STD_FLOOR)


def _copy_state(state):
    """A copy of a module's ``state_dict``, detached from training."""
    return {name: value.detach().clone() for name, value in state.items()}


def _batch_as_is(batch):
    """collate_fn of the data loaders: :meth:`SpectrogramDataset.__getitems__`
    already returns a whole batch."""
    return batch


# ----------------------------------------------------------------------- net


class EmbeddingNet(NeuralNet):
    """skorch net training an embedding network in two phases.

    :meth:`fit_phases` runs the softmax phase (cross-entropy on the softmax
    head, ``pretrain_epochs`` epochs at ``lr``), then the triplet phase
    (triplet loss on the embeddings of class-balanced batches, plus
    ``ce_weight`` times the cross-entropy, ``triplet_epochs`` epochs at
    ``triplet_lr``), each with a fresh optimizer and a cosine learning-rate
    schedule. The module must return ``(logits, embeddings)`` from
    ``module(x, lengths)``.

    Parameters
    ----------
    module : torch.nn.Module class or instance
        As for :class:`skorch.NeuralNet`.
    pretrain_epochs, triplet_epochs : int, default=300, 30
        Epochs of the two phases.
    softmax_optimizer : {"adamw", "sgd"}, default="adamw"
        Optimizer of the softmax phase: the net's ``optimizer`` (AdamW, as
        :func:`make_net` builds it), or :class:`torch.optim.SGD` with Nesterov
        momentum 0.9 at ``lr``, with ``optimizer__weight_decay`` as its L2
        weight decay (:meth:`initialize_optimizer`). The triplet phase always
        uses the net's ``optimizer``.
    triplet_lr : float, default=1e-3
        Learning rate of the triplet phase (a classifier's ``triplet_lr=None``
        is resolved before it gets here, by :func:`optimizer_settings`).
    triplet_weight_decay : float or None, default=None
        Weight decay of the triplet phase's optimizer; ``None`` keeps the
        net's ``optimizer__weight_decay``.
    margin : float, default=0.2
        Triplet margin, in cosine distance.
    mining : str, default="semi_hard"
        Triplet miner (see :mod:`sklearn_tser._losses`).
    ce_weight : float, default=0.0
        Weight of the cross-entropy kept during the triplet phase.
    n_classes_per_batch : int or None, default=None
        P of the triplet batches; ``None`` means every class.
    n_samples_per_class : int, default=8
        K of the triplet batches.
    crop_frames : int or None, default=200
        Length of the random training crops; ``None`` keeps whole clips.
    freq_masks, time_masks : int, default=2
        Frequency and time masks (set to 0, the mean) per training clip.
    freq_mask_width, time_mask_width : int, default=8, 20
        Largest mask, in mel bands and in frames.
    mixup_alpha : float, default=0.0
        Mixup of the softmax phase's batches; 0 turns it off.
    tempo_perturbation : float, default=0.0
        Largest relative tempo change of a training clip: each is stretched
        in time by a random rate in ``[1 - t, 1 + t]`` (:meth:`augment`);
        0 turns it off.
    frequency_warping : float, default=0.0
        Largest relative stretch of the mel axis of a training clip: each is
        resampled along its mel bands by a random rate in ``[1 - w, 1 + w]``
        (:meth:`augment`); 0 turns it off.
    freq_mixstyle : float, default=0.0
        Probability that a training batch's crops swap band statistics
        (frequency MixStyle, :meth:`augment`); 0 turns it off.
    freq_mixstyle_alpha : float, default=0.3
        Beta parameter of frequency MixStyle's mixing weights.
    filter_augment : float, default=0.0
        Largest gain of the random piecewise-linear filter added to each
        training crop's bands (FilterAugment, :meth:`augment`); 0 turns it
        off.
    reverberation : float, default=0.0
        Longest reverberation time, in frames, of the random reverberation
        added to the training crops (:func:`reverberate`, :meth:`augment`);
        0 turns it off.
    reverberation_fraction : float, default=1.0
        Fraction of each training batch's crops that ``reverberation``
        reaches, chosen at random (``round(fraction * n)`` of a batch of
        ``n``); the others stay as recorded.
    noise_snr : float or None, default=None
        Lowest signal-to-noise ratio, in dB, of the noise added to every
        training crop (:func:`add_noise`, :meth:`augment`); ``None`` turns it
        off.
    noise_spectrum : {"speech", "tilted"}, default="speech"
        Spectrum of that noise (:func:`add_noise`).
    noise_fraction : float, default=1.0
        Fraction of each training batch's crops that ``noise_snr`` reaches,
        chosen at random (``round(fraction * n)`` of a batch of ``n``); the
        others stay as recorded.
    copy_paste : float, default=0.0
        Probability that a training clip is followed by another of the batch
        with its label, before the crop (:func:`paste_partners`); 0 turns it
        off.
    softmax_loss : {"cross_entropy", "aam"}, default="cross_entropy"
        Loss of the softmax head (and of the ``ce_weight`` term): cross-entropy
        on its logits, or additive angular margin softmax on the cosines
        between the embeddings and its weight rows
        (:func:`~sklearn_tser._losses.angular_margin_logits`).
    aam_margin, aam_scale : float, default=0.2, 30.0
        Margin (radians) and scale of ``softmax_loss="aam"``.
    speaker_adversarial : float, default=0.0
        Weight of the speaker-adversarial loss, used when the training set
        serves speakers: a linear speaker classifier (the module's
        ``speaker_adversary``, there only during :meth:`fit_phases`) reads the
        embeddings through a gradient reversal layer (Ganin & Lempitsky,
        2015), so that the embedding network is pushed, with this weight, to
        make the speakers hard to tell apart. 0 turns it off.
    ema_epochs : float >= 1 or 0, default=0.0
        Time constant, in epochs, of an exponential moving average of the
        weights (:meth:`update_average`), or 0 for none. Each phase averages
        its own epochs, validates the average (so early stopping watches, and
        keeps, the averaged weights) and ends with it.
    precision : {"auto", "float32", "bfloat16"}, default="auto"
        Arithmetic of the training steps' forward pass (:func:`autocast_dtype`);
        the weights, the optimizer and inference stay in float32.
    random_state : int, default=0
        Seed of the batches, crops and masks.
    *args, **kwargs
        As for :class:`skorch.NeuralNet`.

    Attributes
    ----------
    phase_ : {"softmax", "triplet"} or None
        The phase being trained.
    interrupted_ : bool
        Whether the last :meth:`fit_phases` was stopped by ``KeyboardInterrupt``
        (Ctrl-C); its remaining epochs and phases were skipped.
    averaged_ : dict of str to torch.Tensor or None
        The moving average of the module's state during a phase with
        ``ema_epochs``; None otherwise, and once fitted.
    """

    def __init__(
        self,
        module,
        *args,
        pretrain_epochs=300,
        triplet_epochs=30,
        softmax_optimizer="adamw",
        triplet_lr=1e-3,
        triplet_weight_decay=None,
        margin=0.2,
        mining="semi_hard",
        ce_weight=0.0,
        n_classes_per_batch=None,
        n_samples_per_class=8,
        crop_frames=200,
        freq_masks=2,
        freq_mask_width=8,
        time_masks=2,
        time_mask_width=20,
        mixup_alpha=0.0,
        tempo_perturbation=0.0,
        frequency_warping=0.0,
        freq_mixstyle=0.0,
        freq_mixstyle_alpha=0.3,
        filter_augment=0.0,
        reverberation=0.0,
        reverberation_fraction=1.0,
        noise_snr=None,
        noise_spectrum="speech",
        noise_fraction=1.0,
        copy_paste=0.0,
        softmax_loss="cross_entropy",
        aam_margin=0.2,
        aam_scale=30.0,
        speaker_adversarial=0.0,
        ema_epochs=0.0,
        precision="auto",
        random_state=0,
        **kwargs,
    ):
        super().__init__(module, *args, **kwargs)
        self.pretrain_epochs = pretrain_epochs
        self.triplet_epochs = triplet_epochs
        self.softmax_optimizer = softmax_optimizer
        self.triplet_lr = triplet_lr
        self.triplet_weight_decay = triplet_weight_decay
        self.margin = margin
        self.mining = mining
        self.ce_weight = ce_weight
        self.n_classes_per_batch = n_classes_per_batch
        self.n_samples_per_class = n_samples_per_class
        self.crop_frames = crop_frames
        self.freq_masks = freq_masks
        self.freq_mask_width = freq_mask_width
        self.time_masks = time_masks
        self.time_mask_width = time_mask_width
        self.mixup_alpha = mixup_alpha
        self.tempo_perturbation = tempo_perturbation
        self.frequency_warping = frequency_warping
        self.freq_mixstyle = freq_mixstyle
        self.freq_mixstyle_alpha = freq_mixstyle_alpha
        self.filter_augment = filter_augment
        self.reverberation = reverberation
        self.reverberation_fraction = reverberation_fraction
        self.noise_snr = noise_snr
        self.noise_spectrum = noise_spectrum
        self.noise_fraction = noise_fraction
        self.copy_paste = copy_paste
        self.softmax_loss = softmax_loss
        self.aam_margin = aam_margin
        self.aam_scale = aam_scale
        self.speaker_adversarial = speaker_adversarial
        self.ema_epochs = ema_epochs
        self.precision = precision
        self.random_state = random_state

    # ----------------------------------------------------------- phases

    def phases(self):
        """The training phases: ``(name, epochs, learning rate)``."""
        return [
            ("softmax", self.pretrain_epochs, self.lr),
            ("triplet", self.triplet_epochs, self.triplet_lr),
        ]

    def initialize_optimizer(self, triggered_directly=None):
        """The optimizer of the phase being trained (``phase_``), from the
        arguments skorch gives any optimizer (the weights, ``lr`` and the
        ``optimizer__`` parameters).

        The softmax phase with ``softmax_optimizer="sgd"`` steps with
        :class:`torch.optim.SGD` (Nesterov momentum 0.9, L2 weight decay
        ``optimizer__weight_decay``); otherwise the net's ``optimizer``
        steps, with ``triplet_weight_decay``, when set, as the triplet
        phase's weight decay. The learning rate of either is set at every
        epoch by :class:`CosineAnnealing`.
        """
        phase = getattr(self, "phase_", None)
        args, kwargs = self.get_params_for_optimizer(
            "optimizer", self.get_all_learnable_params()
        )
        if phase == "softmax" and self.softmax_optimizer == "sgd":
            # Of AdamW's arguments, only the rate and weight decay carry over.
            self.optimizer_ = torch.optim.SGD(
                *args,
                lr=kwargs["lr"],
                momentum=0.9,
                nesterov=True,
                weight_decay=kwargs.get("weight_decay", 0.0),
            )
        else:
            if phase == "triplet" and self.triplet_weight_decay is not None:
                kwargs["weight_decay"] = self.triplet_weight_decay
            self.optimizer_ = self.optimizer(*args, **kwargs)
        return self

    def fit_phases(self, train_set, valid_set=None, *, stop=None):
        """Train on ``train_set`` phase after phase; see the class docstring.

        Parameters
        ----------
        train_set : SpectrogramDataset
            Training clips, with labels.
        valid_set : SpectrogramDataset or None, default=None
            Held-out clips: each phase then stops early when their loss stops
            improving, and keeps its best weights.
        stop : threading.Event or None, default=None
            Once set (from another thread), training stops before its next
            batch as Ctrl-C would stop it (``interrupted_`` becomes True).

        Returns
        -------
        self : EmbeddingNet
        """
        if not self.initialized_:
            self.initialize()
        # A warm start may find the module elsewhere: on the CPU after
        # ``load(device="cpu")``, the net's device since set to CUDA.
        self.module_.to(self.device)
        self.rng_ = np.random.default_rng(self.random_state)
        self.generator_ = torch.Generator(self.device).manual_seed(
            int(self.rng_.integers(2**62))
        )
        self.interrupted_ = False
        if self.speaker_adversarial and train_set.speakers is not None:
            # A submodule while training, so that the optimizers train it too.
            self.module_.speaker_adversary = torch.nn.Linear(
                self.module_.head.in_features, int(train_set.speakers.max()) + 1
            ).to(self.device)
            initialize_weights(self.module_.speaker_adversary, self.generator_)
        use_generator(self.module_, self.generator_)  # dropout masks
        self.valid_set_, self.stop_ = valid_set, stop  # cleared below
        try:
            for phase, epochs, lr in self.phases():
                if self.interrupted_ or not epochs:
                    continue
                self.phase_, self.phase_epochs_, self.phase_lr_ = phase, epochs, lr
                self.initialize_optimizer()
                self.partial_fit(train_set, None, epochs=epochs)
        finally:
            # Keep the fitted net light: no data stays referenced, and the
            # speaker classifier, of no use to predict, goes.
            self.phase_, self.valid_set_, self.stop_ = None, None, None
            self.averaged_ = None
            # No generator stays: one of a CUDA device would make the pickled
            # net unloadable on a machine without CUDA.
            self.generator_ = None
            use_generator(self.module_, None)
            if hasattr(self.module_, "speaker_adversary"):
                del self.module_.speaker_adversary
        return self

    @property
    def interrupted_at(self):
        """Where the last :meth:`fit_phases` was interrupted, in words."""
        return f"epoch {len(self.history)}"

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(net, dataset_train, dataset_valid, **kwargs)
        self.history.record("phase", self.phase_)

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        stop = getattr(self, "stop_", None)
        if training and stop is not None and stop.is_set():
            raise KeyboardInterrupt("training stopped by another thread")
        super().on_batch_begin(net, batch=batch, training=training, **kwargs)

    # ------------------------------------------------------ weight averaging

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        self.averaged_, self.averaged_epochs_ = None, 0  # each phase its own

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # Before the callbacks': early stopping then puts back the average of
        # its best epoch, when that was not the last.
        super().on_train_end(net, X=X, y=y, **kwargs)
        if self.averaged_ is not None:
            self.module_.load_state_dict(self.averaged_)
        self.averaged_ = None

    def update_average(self):
        """Move the moving average of the weights towards the current ones.

        Called after the ``t``-th training epoch of a phase when
        ``ema_epochs = e > 0``: every floating-point entry of the module's
        state (weights and batch-norm statistics) becomes
        ``a <- a + max(1 / e, 1 / t) (w - a)``, so that the average starts as
        the plain mean of the phase's first epochs (the first is copied) and
        then forgets with a time constant of ``e`` epochs; the other entries
        (batch counts) are copied.
        """
        state = self.module_.state_dict()
        self.averaged_epochs_ += 1
        if self.averaged_ is None:
            self.averaged_ = _copy_state(state)
            return
        step = max(1.0 / self.ema_epochs, 1.0 / self.averaged_epochs_)
        with torch.no_grad():
            for name, value in state.items():
                average = self.averaged_[name]
                if average.is_floating_point():
                    average.lerp_(value, step)
                else:
                    average.copy_(value)

    def phase_state(self):
        """A copy of the weights the phase would end with now: the average,
        if there is one yet, else the module's."""
        if self.averaged_ is not None:
            return _copy_state(self.averaged_)
        return _copy_state(self.module_.state_dict())

    def restore_weights(self, state):
        """Load ``state`` into the module, and restart the average from it."""
        self.module_.load_state_dict(state)
        if self.averaged_ is not None:
            self.averaged_, self.averaged_epochs_ = _copy_state(state), 1

    @contextlib.contextmanager
    def using_average(self):
        """Context in which the module holds the averaged weights, if any."""
        if self.averaged_ is None:
            yield
            return
        current = _copy_state(self.module_.state_dict())
        self.module_.load_state_dict(self.averaged_)
        try:
            yield
        finally:
            self.module_.load_state_dict(current)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if training:
            super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
            if self.ema_epochs:
                self.update_average()
        elif iterator is not None:
            with self.using_average():  # validate what the phase will end with
                super().run_single_epoch(
                    iterator, training, prefix, step_fn, **fit_params
                )

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        # skorch ends training quietly on KeyboardInterrupt; callbacks stop a
        # phase with StopPhase, a user's Ctrl-C is remembered in interrupted_.
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt as exc:
            self.interrupted_ = self.interrupted_ or not isinstance(exc, StopPhase)
            raise

    def get_split_datasets(self, X, y=None, **fit_params):
        return self.get_dataset(X, y), getattr(self, "valid_set_", None)

    def get_iterator(self, dataset, training=False):
        """Batches of ``dataset``: class-balanced P x K ones to train the
        triplet phase, shuffled ones to train the softmax phase, and sorted by
        length (so that little padding is computed) otherwise.

        Training batches are cropped as they are read
        (:meth:`SpectrogramDataset.cropped`) unless ``tempo_perturbation`` or
        ``copy_paste`` needs whole clips first; either way a crop is drawn at
        the same point of the generator's sequence, so the training is the
        same to the bit."""
        loader = torch.utils.data.DataLoader
        if not training:
            batches = _inference_batches(dataset.lengths)
            return loader(dataset, batch_sampler=batches, collate_fn=_batch_as_is)
        if self.crops_as_served():
            dataset = dataset.cropped(self.crop_frames, self.generator_)
        if self.phase_ == "triplet":
            n_classes = len(np.unique(dataset.y))
            sampler = ClassBalancedBatchSampler(
                dataset.y,
                n_classes_per_batch=min(
                    self.n_classes_per_batch or n_classes, n_classes
                ),
                n_samples_per_class=self.n_samples_per_class,
                random_state=self.rng_,
            )
            return loader(dataset, batch_sampler=sampler, collate_fn=_batch_as_is)
        order = self.rng_.permutation(len(dataset))
        batches = [
            order[i : i + self.batch_size]
            for i in range(0, len(order), self.batch_size)
        ]
        return loader(dataset, batch_sampler=batches, collate_fn=_batch_as_is)

    def crops_as_served(self):
        """Whether training batches are cropped as they are read
        (:meth:`SpectrogramDataset.cropped`) rather than in :meth:`augment`:
        with ``crop_frames``, unless ``tempo_perturbation`` or ``copy_paste``
        needs the whole clips first. The crop is the first draw of a step
        either way, so the training is the same."""
        return self.crop_frames is not None and not (
            self.tempo_perturbation or self.copy_paste
        )

    # ------------------------------------------------------------- steps

    def train_step_single(self, batch, **fit_params):
        """Augment a batch, then one forward and backward pass.

        In the softmax phase with ``mixup_alpha > 0``, the batch is mixed with
        a permutation of itself, ``lam * x + (1 - lam) * x[perm]`` with ``lam``
        drawn from Beta(alpha, alpha), and the loss is the same mixture of the
        losses of both labels (mixup, Zhang et al. 2018). With
        ``speaker_adversarial > 0`` the speaker loss (:meth:`speaker_loss`),
        mixed the same way, is added. With ``copy_paste > 0``, clips are
        followed by others of their label (:func:`paste_partners`) before
        :meth:`augment`, in both phases.
        """
        self._set_training(True)
        X, y = batch
        speakers = X.get("speakers")
        x, lengths = X["x"].to(self.device), X["lengths"].to(self.device)
        y = y.to(self.device)
        scale = X.get("scale")
        offset = X.get("offset") if serves_offsets(self) else None
        if self.copy_paste:
            if scale is None:
                x, lengths = paste_partners(
                    x, lengths, y, self.copy_paste, self.generator_
                )
            else:  # a pasted partner's frames keep the scale they came with
                n_mels = x.shape[1]
                sides = [scale] if offset is None else [scale, offset]
                sides = [frame_scales(t.to(x), lengths, x.shape[2]) for t in sides]
                both, lengths = paste_partners(
                    torch.cat([x, *sides], 1),
                    lengths,
                    y,
                    self.copy_paste,
                    self.generator_,
                )
                x, scale, *offset = both.split(n_mels, dim=1)
                offset = offset[0] if offset else None
        X = self.augment(
            x, lengths, scale=scale, offset=offset, cropped=self.crops_as_served()
        )
        lam, perm = 1.0, None
        if self.phase_ == "softmax" and self.mixup_alpha:
            lam = float(self.rng_.beta(self.mixup_alpha, self.mixup_alpha))
            perm = torch.randperm(len(y), generator=self.generator_, device=y.device)
            X = {
                "x": X["x"][perm].lerp(X["x"], lam),  # lam x + (1 - lam) x[perm]
                "lengths": torch.maximum(X["lengths"], X["lengths"][perm]),
            }
        y_pred = self.infer(X, **fit_params)

        def mixed(loss_of, targets):  # the loss of both labels of a mixup
            if perm is None:
                return loss_of(targets)
            return lam * loss_of(targets) + (1.0 - lam) * loss_of(targets[perm])

        loss = mixed(lambda t: self.get_loss(y_pred, t, X=X, training=True), y)
        if speakers is not None and hasattr(self.module_, "speaker_adversary"):
            speakers = speakers.to(self.device)
            loss = loss + mixed(lambda t: self.speaker_loss(y_pred[1], t), speakers)
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def speaker_loss(self, embeddings, speakers):
        """Cross-entropy of the speaker classifier ``speaker_adversary`` on the
        directions of ``embeddings`` (what the centroids and the triplet loss
        read, so that shrinking the embeddings cannot hide the speakers) seen
        through a gradient reversal layer: the classifier learns to tell the
        speakers apart, the embedding network receives the opposite gradient,
        times ``speaker_adversarial``."""
        reversed_ = _ReverseGradient.apply(embeddings, self.speaker_adversarial)
        unit = torch.nn.functional.normalize(reversed_.float(), dim=1)
        return torch.nn.functional.cross_entropy(
            self.module_.speaker_adversary(unit), speakers
        )

    def augment(
        self, x, lengths, generator=None, scale=None, offset=None, *, cropped=False
    ):
        """Tempo changes, random crops of ``crop_frames``, reverberation,
        noise, frequency warps and SpecAugment masks of a batch.

        With ``tempo_perturbation = t > 0``, each clip is first resampled in
        time at a random rate ``r`` in ``[1 - t, 1 + t]``: output frame ``j``
        is the linear interpolation of input frames at ``j * r``, so that the
        clip lasts ``ceil(lengths / r)`` frames, faster (``r > 1``) or slower.
        With ``reverberation = T > 0``, each crop is then heard in a random
        room whose reverberation time is at most ``T`` frames
        (:func:`reverberate`), with the scale each of its frames was
        standardised with (the bands' own, before the warp moves them); with
        ``reverberation_fraction = f < 1``, only ``round(f * n)`` crops of a
        batch of ``n``, drawn at random, are (the others' is not computed).
        With ``noise_snr = s``, each crop then gets noise at a
        signal-to-noise ratio drawn from ``[s, s + 20]`` dB
        (:func:`add_noise`), speech-shaped or of a random tilt
        (``noise_spectrum``), with the same scale (and the offset); with
        ``noise_fraction < 1``, only a share of the batch's crops drawn at
        random, as with ``reverberation_fraction``.
        With ``frequency_warping = w > 0``, each crop is then resampled along
        its mel bands at a random rate ``a`` in ``[1 - w, 1 + w]``: output
        band ``b`` is the linear interpolation of input bands at ``b * a``
        (the top band beyond the last), which moves the formants and the
        pitch harmonics up (``a < 1``) or down, as a longer or shorter vocal
        tract would. With ``freq_mixstyle = p > 0``, the batch then goes,
        with probability ``p``, through frequency MixStyle: each crop gets the
        band statistics of a mixture of its own and those of a random crop of
        the batch, at times itself (:func:`mix_band_statistics`). With
        ``filter_augment = f > 0``, each crop's bands are then shifted by a
        random piecewise-linear filter whose gains lie in ``[-f, f]``
        (:func:`random_filters`). The masks come last.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, n_mels, n_frames)
            Standardised spectrograms, zero after each clip's ``lengths``.
        lengths : torch.Tensor of shape (batch,)
        generator : torch.Generator or None, default=None
            Source of the random draws; ``None`` means the training's.
        scale : torch.Tensor of shape (batch, n_mels) or (batch, n_mels, \
n_frames), or None, default=None
            What each clip's bands (or each frame's, as :func:`frame_scales`
            gives them) were divided by in the standardisation, in dB (the
            ``"scale"`` of a :class:`SpectrogramDataset` batch); needed with
            ``reverberation`` or ``noise_snr`` (:func:`serves_scales`),
            unused otherwise.
        offset : torch.Tensor of the shape of ``scale``, or None, default=None
            What each clip's bands (or frames) were centred on, in dB (the
            ``"offset"`` of the batch); needed with
            ``noise_spectrum="tilted"``, unused otherwise.
        cropped : bool, default=False
            Whether the batch's clips are crops already, as a
            :meth:`SpectrogramDataset.cropped` serves them (see
            :meth:`crops_as_served`): then they are not cropped again, and
            no crop is drawn.

        Returns
        -------
        X : dict
            ``{"x": x, "lengths": lengths}`` of the cropped, masked batch.
        """
        g, dev = self.generator_ if generator is None else generator, x.device
        n, n_mels, _ = x.shape
        scaled = serves_scales(self)
        if scaled:
            if scale is None:
                raise ValueError(
                    "reverberation and noise_snr need the scale of the "
                    "standardisation: serve the batches from a "
                    "SpectrogramDataset(scales=True)."
                )
            scale = scale.to(x)
            tilted = serves_offsets(self)
            if tilted and offset is None:
                raise ValueError(
                    'noise_spectrum="tilted" needs the offset of the '
                    "standardisation: serve the batches from a "
                    "SpectrogramDataset(scales=True)."
                )
            offset = offset.to(x) if tilted else None
            if scale.dim() == 3:  # each frame's rides along (stretch, crop)
                x = torch.cat([x, scale] + ([offset] if tilted else []), dim=1)
        stretch = None  # (lengths, rate) of the clips before the stretch
        if self.tempo_perturbation:
            rate = 1.0 + uniform_around_zero(n, self.tempo_perturbation, g, dev)
            stretch, lengths = (lengths, rate), stretched_lengths(lengths, rate)
        frames = None  # the frames kept: all, or each clip's crop
        if self.crop_frames is not None and not cropped:
            start = crop_starts(lengths, self.crop_frames, g)
            lengths = lengths.clamp(max=self.crop_frames)
            frames = start[:, None] + torch.arange(int(lengths.max()), device=dev)
        if stretch is not None:  # only the frames kept are interpolated
            x = _stretch(x, *stretch, frames)
        elif frames is not None:
            x = x.gather(2, frames[:, None, :].expand(n, x.shape[1], frames.shape[1]))
        if scaled and scale.dim() == 3:
            x, scale, *offset = x.split(n_mels, dim=1)
            offset = offset[0] if offset else None
        if self.reverberation:
            rooms = functools.partial(
                reverberate, longest=self.reverberation, generator=g
            )
            x = _on_some(
                rooms, self.reverberation_fraction, x, g, lengths=lengths, scale=scale
            )
        if self.noise_snr is not None:
            noise = functools.partial(
                add_noise,
                lowest_snr=self.noise_snr,
                generator=g,
                spectrum=self.noise_spectrum,
            )
            x = _on_some(
                noise,
                self.noise_fraction,
                x,
                g,
                lengths=lengths,
                scale=scale,
                offset=offset,
            )
        if self.frequency_warping:
            rate = 1.0 + uniform_around_zero(n, self.frequency_warping, g, dev)
            x = _warp(x, rate)
        if self.freq_mixstyle and n > 1:
            # One host sync for both draws. The Beta draws come from a seed of
            # the generator: torch's Beta sampler takes no generator, and the
            # views must follow it.
            draw, seed = torch.rand(2, generator=g, device=dev).tolist()
            if draw < self.freq_mixstyle:
                lam = np.random.default_rng(int(seed * 2**31)).beta(
                    self.freq_mixstyle_alpha, self.freq_mixstyle_alpha, size=n
                )
                perm = torch.randperm(n, generator=g, device=dev)
                x = mix_band_statistics(x, lengths, lam, perm)
        if self.filter_augment:
            x = x + random_filters(
                n, n_mels, self.filter_augment, g, dev, x.dtype
            ).unsqueeze(2)
        # A mask hides whole bands or whole frames, so what is kept is the
        # outer product of the bands kept and the frames kept.
        frames = torch.arange(x.shape[2], device=dev)
        bands = torch.arange(n_mels, device=dev)
        keep_frames = frames[None, :] < lengths[:, None]  # (batch, frames)
        keep_bands = torch.ones(n, n_mels, dtype=torch.bool, device=dev)
        for count, widest, size, index, keep in (
            (
                self.freq_masks,
                self.freq_mask_width,
                torch.full_like(lengths, n_mels),
                bands,
                keep_bands,
            ),
            (self.time_masks, self.time_mask_width, lengths, frames, keep_frames),
        ):
            for _ in range(count):
                top = torch.clamp(size // 2, max=widest)
                width = (torch.rand(n, generator=g, device=dev) * (top + 1)).long()
                lo = (
                    torch.rand(n, generator=g, device=dev) * (size - width + 1)
                ).long()
                keep &= (index[None, :] < lo[:, None]) | (
                    index[None, :] >= (lo + width)[:, None]
                )
        x = x * keep_bands.to(x.dtype)[:, :, None]
        return {"x": x * keep_frames.to(x.dtype)[:, None, :], "lengths": lengths}

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Cross-entropy on the logits in the softmax phase; triplet loss on
        the embeddings (plus ``ce_weight`` times the cross-entropy) in the
        triplet phase."""
        logits, embeddings = y_pred
        y_true = y_true.to(logits.device)
        if self.phase_ == "triplet":
            loss = TripletLoss(margin=self.margin, mining=self.mining)(
                embeddings, y_true
            )
            if self.ce_weight:
                loss = loss + self.ce_weight * self.class_loss(
                    logits, embeddings, y_true
                )
        else:
            loss = self.class_loss(logits, embeddings, y_true)
        if training and not torch.isfinite(loss):
            raise TrainingDivergedError(
                f"The {self.phase_} loss became {loss.item()} at epoch "
                f"{len(self.history)}. Lower the learning rate (lr={self.lr}) or "
                "the weight decay, or check the input scale (spectrograms should "
                "be finite log-mel values, as LogMelTransformer gives)."
            )
        return loss

    def class_loss(self, logits, embeddings, y):
        """The softmax head's loss: cross-entropy on ``logits``, or on the
        additive angular margin logits of ``embeddings``."""
        if self.softmax_loss == "aam":
            logits = angular_margin_logits(
                embeddings,
                self.module_.head.weight,
                y,
                margin=self.aam_margin,
                scale=self.aam_scale,
            )
        return self.criterion_(logits, y)

    def initialize_module(self):
        """Build the module, its weights drawn from a generator seeded with
        ``random_state`` (not torch's global one, which fits in other threads
        share)."""
        super().initialize_module()
        # Drawn on the CPU, whatever ``device`` (skorch moves the module there
        # next): the same initial weights on every device, and a generator of
        # the parameters' own device.
        self.module_.to("cpu")
        generator = torch.Generator("cpu").manual_seed(self.random_state)
        initialize_weights(self.module_, generator)
        if self.softmax_loss == "aam":
            # Class rows of unit-variance entries: AdamW's steps of about lr
            # per entry then turn them slowly (rows of a small norm spin and
            # the margin loss collapses).
            with torch.no_grad():
                self.module_.head.weight.normal_(generator=generator)
        return self

    def infer(self, x, **fit_params):
        dtype = autocast_dtype(self.precision, self.device)
        if dtype is None:
            return super().infer(x, **fit_params)
        with torch.autocast(torch.device(self.device).type, dtype=dtype):
            out = super().infer(x, **fit_params)
        return tuple(o.float() for o in out)

    def embed(self, dataset, *, augmented=False):
        """Embeddings of every clip of ``dataset``, in eval mode.

        Parameters
        ----------
        dataset : SpectrogramDataset
        augmented : bool, default=False
            If False, whole clips. If True, the clips as training sees them: a
            random crop with random masks each (:meth:`augment`, seeded by
            ``random_state``; with ``freq_mixstyle``, restyled by the clips
            of its batch, clips of similar lengths), e.g. to calibrate
            probabilities on views the network did not fit exactly.

        Returns
        -------
        embeddings : ndarray of shape (n_clips, embedding_dim), dtype float32
            L2-normalised.
        """
        # Inference leaves the module in eval mode (training sets train mode
        # at every epoch): toggling it back would race with predict in other
        # threads.
        self.module_.eval()
        generator = torch.Generator(self.device).manual_seed(self.random_state)
        out = None
        with torch.inference_mode():
            for idx in self.get_iterator(dataset).batch_sampler:
                X, _ = dataset.__getitems__(idx)
                x, lengths = X["x"].to(self.device), X["lengths"].to(self.device)
                width = int(inference_width(x.shape[2]))
                x = torch.nn.functional.pad(x, (0, width - x.shape[2]))
                if augmented:
                    views = self.augment(
                        x, lengths, generator, X.get("scale"), X.get("offset")
                    )
                    x, lengths = views["x"], views["lengths"]
                emb = self.module_.embed(x, lengths)
                emb = emb.float().cpu().numpy()
                if out is None:
                    out = np.empty((len(dataset), emb.shape[1]), dtype=np.float32)
                out[idx] = emb
                del X, x, lengths  # one batch in memory at a time
        return l2_normalize(out)


def join_embeddings(parts):
    """An ensemble's embeddings from its members': each member's unit
    embeddings, concatenated, divided by ``sqrt(len(parts))``, so that the
    rows have unit norm and the cosine of two rows is the mean of the
    members' cosines.

    Parameters
    ----------
    parts : list of ndarray of shape (n_clips, embedding_dim)
        Each member's L2-normalised embeddings.

    Returns
    -------
    embeddings : ndarray of shape (n_clips, len(parts) * embedding_dim)
    """
    return np.hstack(parts) / np.float32(np.sqrt(len(parts)))


def member_nets(net):
    """The networks of ``net``: an :class:`EmbeddingEnsemble`'s members, or
    ``net`` itself when it is one :class:`EmbeddingNet`."""
    return list(getattr(net, "nets", [net]))


def networks_at_once(n_jobs, n_networks):
    """How many of an ensemble's ``n_networks`` networks train at the same
    time for ``n_jobs``: joblib's meaning of it (None is 1, or what a
    :func:`joblib.parallel_config` context sets; -1 all processors), at most
    ``n_networks``."""
    return max(1, min(effective_n_jobs(n_jobs), n_networks))


def _indexed(device):
    """``device`` with its index: a CUDA device without one is the calling
    thread's current device, which another thread may not share."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def _using(device):
    """Context making ``device`` the thread's current CUDA device (nothing on
    other devices)."""
    if device.type == "cuda":
        return torch.cuda.device(device)
    return contextlib.nullcontext()


def member_seeds(random_state, n_networks):
    """Seeds of the members of an ensemble: the first is ``random_state``
    itself (so that one network is the net a single fit trains), the others
    are drawn from it.

    Parameters
    ----------
    random_state : int >= 0
    n_networks : int >= 1

    Returns
    -------
    seeds : list of int
    """
    drawn = np.random.SeedSequence(random_state).generate_state(n_networks - 1)
    return [int(random_state), *(int(s) for s in drawn)]


class EmbeddingEnsemble:
    """Embedding networks trained one after the other, or some at the same
    time in threads, each from its own seed, whose embeddings are joined.

    Each member is an :class:`EmbeddingNet` with the same parameters and a
    seed of its own (:func:`member_seeds`): its own initial weights, batches,
    crops, masks and dropout. A clip's embedding is the concatenation of the
    members' L2-normalised embeddings divided by ``sqrt(n_networks)``, so it
    has unit norm and its cosine with another clip's is the mean of the
    members' cosines.

    Parameters
    ----------
    nets : list of EmbeddingNet
        The members, not yet trained.

    Attributes
    ----------
    nets : list of EmbeddingNet
    interrupted_ : bool
        Whether the last :meth:`fit_phases` was stopped by ``KeyboardInterrupt``:
        the members training then keep the weights reached, and those not yet
        started keep their initial weights (or those of the last fit, with a
        warm start).
    trained_ : list of bool
        Whether each member trained to the end of its schedule in the last
        :meth:`fit_phases`.
    stopped_by_ : int or None
        The member whose own ``KeyboardInterrupt`` stopped the others, or None
        (Ctrl-C in the caller's thread while members ran in threads, or none).
    history_ : skorch.history.History
        The members' epochs one after the other, each row with its member's
        index as ``"network"``; setting it gives each member its rows.
    """

    def __init__(self, nets):
        self.nets = list(nets)

    @property
    def module_(self):
        """The members' modules, as one :class:`torch.nn.ModuleList` (the
        state of member ``k`` is under ``"k."``)."""
        return torch.nn.ModuleList([net.module_ for net in self.nets])

    @property
    def history_(self):
        return History(
            [
                {**row, "network": k}
                for k, net in enumerate(self.nets)
                for row in net.history
            ]
        )

    @history_.setter
    def history_(self, history):  # each member takes its own rows back
        rows = [[] for _ in self.nets]
        for row in history:
            k = row.get("network") if isinstance(row, dict) else None
            if not (isinstance(k, int) and 0 <= k < len(rows)):
                raise ValueError(
                    f"An ensemble's history row must name one of its "
                    f"{len(rows)} networks as 'network'; got {row!r:.100}."
                )
            rows[k].append({key: v for key, v in row.items() if key != "network"})
        for net, own in zip(self.nets, rows, strict=True):
            net.history_ = History(own)

    @property
    def history(self):
        return self.history_

    @property
    def device(self):
        return self.nets[0].device

    @property
    def interrupted_at(self):
        """Where the last :meth:`fit_phases` was interrupted, in words."""
        stopped = [k for k, net in enumerate(self.nets) if net.interrupted_]
        if self.stopped_by_ is not None:  # the one a Ctrl-C hit, not the others
            stopped = [self.stopped_by_]
        where = [f"{self.nets[k].interrupted_at} of network {k + 1}" for k in stopped]
        if not where:  # none cut short: the first not trained was skipped
            where = [f"the start of network {self.trained_.index(False) + 1}"]
        return f"{', '.join(where)} (of {len(self.nets)})"

    def initialize(self):
        for net in self.nets:
            net.initialize()
        return self

    def get_params(self, deep=True):
        """The first member's parameters (those of every member but the
        seed)."""
        return self.nets[0].get_params(deep=deep)

    def set_params(self, *, random_state=None, **params):
        """Set every member's parameters; ``random_state`` seeds the first,
        and the others' seeds are drawn from it (:func:`member_seeds`);
        ``None`` keeps the members' seeds."""
        seeds = [net.random_state for net in self.nets]
        if random_state is not None:
            seeds = member_seeds(random_state, len(self.nets))
        for net, seed in zip(self.nets, seeds, strict=True):
            net.set_params(random_state=seed, **params)
        return self

    def fit_phases(self, train_set, valid_set=None, *, n_jobs=None):
        """Train each member on the same clips (:meth:`EmbeddingNet.fit_phases`).

        Parameters
        ----------
        train_set, valid_set : SpectrogramDataset
            As for :meth:`EmbeddingNet.fit_phases`.
        n_jobs : int or None, default=None
            Members trained at the same time (:func:`networks_at_once`), each
            in a thread of its own with the caller's torch threads and CUDA
            device; their random draws come from generators of their own, so
            on the CPU they end as they would one after the other. Ctrl-C, or
            a member interrupted, stops every member at its next batch, and
            the members not yet started are skipped; an error in one stops
            the others and is raised.

        Returns
        -------
        self : EmbeddingEnsemble
        """
        for net in self.nets:  # a warm start keeps the trained ones as they are
            if not net.initialized_:  # (and the members skipped after an
                net.initialize()  # interrupted one can embed)
            net.interrupted_ = False
        stop, lock = threading.Event(), threading.Lock()
        self.trained_ = [False] * len(self.nets)
        self.stopped_by_ = None  # the member whose own interrupt stopped all
        torch_threads = torch.get_num_threads()  # the caller's, for each thread
        device = _indexed(self.device)  # "cuda" is each thread's own device

        def train(k, net):
            if stop.is_set():  # skipped: another member was interrupted
                return
            torch.set_num_threads(torch_threads)
            try:
                with _using(device):
                    net.fit_phases(train_set, valid_set, stop=stop)
            except BaseException:  # failed: the others stop too
                stop.set()
                raise
            with lock:
                if net.interrupted_ and not stop.is_set():
                    self.stopped_by_ = k
                    stop.set()
            self.trained_[k] = not net.interrupted_

        n_jobs = networks_at_once(n_jobs, len(self.nets))
        if n_jobs == 1:
            for k, net in enumerate(self.nets):
                train(k, net)
            return self
        members = []
        with ThreadPoolExecutor(n_jobs) as pool:
            try:
                for k, net in enumerate(self.nets):
                    members.append(pool.submit(train, k, net))
                wait(members)
            except KeyboardInterrupt:  # Ctrl-C reaches the main thread
                stop.set()
                while not all(member.done() for member in members):
                    try:  # a second Ctrl-C must not lose the weights
                        wait(members)
                    except KeyboardInterrupt:
                        pass
        for member in members:
            member.result()  # raises a member's error
        return self

    @property
    def interrupted_(self):
        """Whether the last :meth:`fit_phases` left a member untrained or cut
        short (by ``KeyboardInterrupt``)."""
        return not all(self.trained_)

    def embed(self, dataset, *, augmented=False):
        """The joined embeddings of every clip of ``dataset``.

        Parameters
        ----------
        dataset : SpectrogramDataset
        augmented : bool, default=False
            As for :meth:`EmbeddingNet.embed`.

        Returns
        -------
        embeddings : ndarray of shape (n_clips, n_networks * embedding_dim), \
dtype float32
            Of unit norm.
        """
        return join_embeddings(
            [net.embed(dataset, augmented=augmented) for net in self.nets]
        )


# Inference batches: at most this many clips, and this many frames once padded
# (655 s of audio at the default hop), so that memory follows the frames, not
# the longest clip.
_INFERENCE_CLIPS = 128
_INFERENCE_FRAMES = 2**16


def inference_width(n_frames):
    """Width a batch whose longest clip has ``n_frames`` frames is padded to:
    ``n_frames`` rounded up to one of four widths per octave (at most 25%
    more frames; 12% on average).

    The CPU's convolution library (oneDNN) keeps a compiled kernel, with its
    workspace, for every input shape it meets; batches of arbitrary widths
    would add one per batch, so that predicting on a large corpus would grow
    the process's memory by hundreds of MB. Padding never changes an
    embedding (the networks mask it).
    """
    n = np.maximum(np.asarray(n_frames, dtype=np.int64), 1)
    octave = np.floor(np.log2(n)).astype(np.int64)  # 2**octave <= n
    step = 2 ** np.maximum(octave - 2, 0)
    return -(-n // step) * step


def _inference_batches(lengths):
    """Indices of the clips in batches of one padded width each (see
    :func:`inference_width`), each within the bounds above (or one clip); a
    width's clips fill batches of one size, so that few shapes occur."""
    widths = inference_width(lengths)
    order = np.lexsort((lengths, widths))  # by width, then length
    batches = []
    for width in np.unique(widths):
        members = order[widths[order] == width]
        size = int(max(1, min(_INFERENCE_CLIPS, _INFERENCE_FRAMES // width)))
        batches += [members[a : a + size] for a in range(0, len(members), size)]
    return batches


def paste_partners(x, lengths, y, p, generator):
    """CopyPaste of clips of one emotion: with probability ``p`` a clip is
    followed by another clip of the batch with its label.

    Clip ``i`` becomes its valid frames, then those of a partner ``j != i``
    drawn at random among the batch's clips with ``y[j] == y[i]`` (Pappagari
    et al., 2021, who concatenate utterances of one emotion, label kept); a
    clip whose label no other clip of the batch has, or not drawn, stays as
    it is.

    Parameters
    ----------
    x : torch.Tensor of shape (batch, n_mels, n_frames)
        Zero after each clip's ``lengths``.
    lengths : torch.Tensor of shape (batch,)
        Valid frames of each clip.
    y : torch.Tensor of shape (batch,)
        Labels.
    p : float in [0, 1]
        Probability that a clip with a partner is followed by it.
    generator : torch.Generator
        Source of the draws (of ``x``'s device).

    Returns
    -------
    x : torch.Tensor of shape (batch, n_mels, new_n_frames)
        Zero after each clip's new length; ``new_n_frames`` is the longest.
    lengths : torch.Tensor of shape (batch,)
        ``lengths[i] + lengths[j]`` for a clip followed by ``j``, else
        ``lengths[i]``.
    """
    n, n_mels, n_frames = x.shape
    dev = x.device
    same = (y[:, None] == y[None, :]) & ~torch.eye(n, dtype=torch.bool, device=dev)
    # A partner drawn uniformly among the clips of the same label.
    score = torch.rand(n, n, generator=generator, device=dev).masked_fill(~same, -1.0)
    partner = score.argmax(dim=1)
    pasted = (torch.rand(n, generator=generator, device=dev) < p) & same.any(dim=1)
    total = lengths + torch.where(pasted, lengths[partner], 0)
    width = int(total.max())
    t = torch.arange(width, device=dev)
    # Frame t of the partner's part is the partner's frame t - lengths[i].
    theirs = (t >= lengths[:, None]) & (t < total[:, None])
    index = (t - lengths[:, None]).clamp(0, n_frames - 1)
    second = x[partner].gather(2, index[:, None, :].expand(n, n_mels, width))
    # x is zero after each clip, so its own part needs no mask.
    own = torch.nn.functional.pad(x, (0, width - n_frames))
    return own + theirs[:, None, :] * second, total


def mix_band_statistics(x, lengths, lam, perm):
    """Frequency MixStyle: give each clip the band statistics of a mixture
    of its own and those of another clip (or of itself).

    Clip ``i``, standardised band by band over its valid frames, is scaled
    and shifted to the mean ``lam[i] * mean[i] + (1 - lam[i]) * mean[j]`` and
    the standard deviation ``lam[i] * std[i] + (1 - lam[i]) * std[j]`` of
    each band, ``j = perm[i]`` (Zhou et al., 2021; per band, as Schmid et
    al., 2022).

    Parameters
    ----------
    x : torch.Tensor of shape (batch, n_mels, n_frames)
        Zero after each clip's ``lengths``.
    lengths : torch.Tensor of shape (batch,)
        Valid frames of each clip, at least one.
    lam : array-like of shape (batch,)
        Share of each clip's own statistics, in [0, 1].
    perm : torch.Tensor of shape (batch,)
        The clip whose statistics each clip mixes with its own.

    Returns
    -------
    x : torch.Tensor of the shape and dtype of ``x``
        Still zero after each clip's ``lengths``.
    """
    mean, std, mask = clip_statistics(x, lengths)
    mean, std = mean[:, :, None], std[:, :, None]
    lam = torch.as_tensor(lam, dtype=torch.float32, device=x.device)[:, None, None]
    mixed_mean = lam * mean + (1.0 - lam) * mean[perm]
    mixed_std = lam * std + (1.0 - lam) * std[perm]
    out = (x.float() - mean) / std * mixed_std + mixed_mean
    return (out * mask).to(x.dtype)


def stretched_lengths(lengths, rate):
    """Frames of clips of ``lengths`` frames resampled in time at ``rate``:
    ``ceil(lengths / rate)``, at least 1 (see :func:`_stretch`)."""
    return torch.ceil(lengths / rate).long().clamp(min=1)


def _stretch(x, lengths, rate, frames=None):
    """Resample each clip of a batch in time at its ``rate`` (linear
    interpolation between frames); the new clips last
    :func:`stretched_lengths` frames, and anything after them is padding.

    Output frame ``j`` of clip ``i`` interpolates its input frames at
    ``j * rate[i]``, clamped to its last valid frame. ``frames``, of shape
    ``(batch, width)``, are the output frames to compute (the others are not),
    e.g. a crop of each stretched clip: ``out[i, :, k]`` is output frame
    ``frames[i, k]`` of clip ``i``, the same value as in the whole stretched
    clip; ``None`` means all of them, ``0`` to the longest stretched clip's
    last. Returns ``out`` of shape ``(batch, n_mels, width)``.
    """
    n, n_mels, _ = x.shape
    if frames is None:
        longest = int(stretched_lengths(lengths, rate).max())
        frames = torch.arange(longest, device=x.device).expand(n, longest)
    left, right, weight = _interpolation(frames, rate, (lengths - 1)[:, None])

    def along_frames(t):  # (batch, frames) -> (batch, n_mels, frames)
        return t[:, None, :].expand(n, n_mels, -1)

    weight = along_frames(weight.to(x.dtype))
    return (
        x.gather(2, along_frames(left)) * (1.0 - weight)
        + x.gather(2, along_frames(right)) * weight
    )


def uniform_around_zero(shape, half_width, generator, device):
    """Draws uniform in ``[-half_width, half_width]``, of ``shape``: the
    random rates and gains of the training augmentations."""
    draws = torch.rand(shape, generator=generator, device=device)
    return half_width * (2.0 * draws - 1.0)


# Points of a random filter of FilterAugment: the first and the last band, and
# this many less two drawn at random between them.
_FILTER_POINTS = 6


def random_filters(n, n_mels, top, generator, device, dtype=torch.float32):
    """Gains of random piecewise-linear filters over the mel bands, one per
    clip: a variant of the linear FilterAugment of Nam et al. (2022), which
    draws 3 to 5 segments at least 6 bands long; here there are always
    ``_FILTER_POINTS`` points, at no least spacing.

    Each filter has gains drawn uniformly from ``[-top, top]`` at
    ``_FILTER_POINTS`` points of the mel axis: band 0, the last band, and
    positions (not whole bands) drawn uniformly between them; between two
    points the gain is linear in the band (:func:`piecewise_linear`).

    Parameters
    ----------
    n, n_mels : int
        Clips and mel bands.
    top : float > 0
        Largest gain, in the units of the features.
    generator : torch.Generator
    device : torch.device
    dtype : torch.dtype, default=torch.float32

    Returns
    -------
    gains : torch.Tensor of shape (n, n_mels)
    """
    inner = torch.rand(n, _FILTER_POINTS - 2, generator=generator, device=device)
    points = torch.cat(
        [
            torch.zeros(n, 1, device=device),
            inner.sort(dim=1).values * (n_mels - 1),
            torch.full((n, 1), float(n_mels - 1), device=device),
        ],
        dim=1,
    )
    gains = uniform_around_zero((n, _FILTER_POINTS), top, generator, device)
    return piecewise_linear(points, gains, n_mels).to(dtype)


def piecewise_linear(points, values, size):
    """The values at ``0 .. size - 1`` of the functions that are linear
    between their ``points`` (as :func:`numpy.interp`, one function per row).

    Parameters
    ----------
    points : torch.Tensor of shape (n, k)
        Increasing along each row, from 0 to ``size - 1``.
    values : torch.Tensor of shape (n, k)
        The functions' values at ``points``.
    size : int

    Returns
    -------
    out : torch.Tensor of shape (n, size)
    """
    n, k = points.shape
    at = torch.arange(size, device=points.device, dtype=points.dtype)
    at = at.expand(n, size).contiguous()
    right = torch.searchsorted(points.contiguous(), at).clamp(1, k - 1)
    left = right - 1
    x0, x1 = points.gather(1, left), points.gather(1, right)
    y0, y1 = values.gather(1, left), values.gather(1, right)
    weight = ((at - x0) / (x1 - x0).clamp_min(1e-12)).clamp(0.0, 1.0)
    return y0 + weight * (y1 - y0)


# The direct-to-reverberant ratio of a random room of ``reverberate`` is
# drawn uniformly from [0, _LARGEST_DRR_DB] dB: from as much reverberant as
# direct energy to a tenth of it.
_LARGEST_DRR_DB = 10.0
_LN_10 = math.log(10.0)
# The 6 decades of power a reverberation time (T60) decays, in nepers.
_T60_DECAY = 6.0 * _LN_10
# Frames a block of the tail's recursion in ``reverberate`` holds.
_TAIL_BLOCK = 16
# The largest power ``reverberate`` computes with, in nepers: 300 dB.
_LARGEST_NEPERS = 30.0 * _LN_10
# The signal-to-noise ratios of ``add_noise`` span this many dB from the
# lowest.
_NOISE_SNR_SPAN_DB = 20.0
# The tilted noise of ``add_noise`` is at most this many dB lower in the top
# band than in the bottom one.
_NOISE_TILT_DB = 40.0
NOISE_SPECTRA = ("speech", "tilted")


def serves_scales(estimator):
    """Whether training needs the scale (and offset) each clip was
    standardised with (``SpectrogramDataset(scales=True)``): with
    ``reverberation`` or ``noise_snr``, which return to power.
    ``estimator`` is the classifier or its net, whose parameters of these
    names are read."""
    return estimator.reverberation > 0 or estimator.noise_snr is not None


def serves_offsets(estimator):
    """Whether training needs, with the scales, the offset each clip was
    standardised with: with ``noise_spectrum="tilted"`` noise, whose level
    is set in the features' absolute units."""
    return estimator.noise_snr is not None and estimator.noise_spectrum == "tilted"


def frame_scales(scale, lengths, n_frames):
    """Each clip's band scales repeated on its valid frames, zero after them:
    the scales of :func:`reverberate` that can follow the frames through
    :func:`paste_partners`, a stretch or a crop.

    Parameters
    ----------
    scale : torch.Tensor of shape (batch, n_mels)
    lengths : torch.Tensor of shape (batch,)
    n_frames : int

    Returns
    -------
    scales : torch.Tensor of shape (batch, n_mels, n_frames)
    """
    valid = torch.arange(n_frames, device=scale.device)[None, :] < lengths[:, None]
    return scale[:, :, None] * valid[:, None, :].to(scale.dtype)


def reverberate(x, lengths, scale, longest, generator):
    """Each clip of a batch as heard in a random room: late reverberation
    added in the mel power domain.

    Each clip draws a reverberation time ``t60`` uniformly from
    ``(0, longest]`` frames and a direct-to-reverberant ratio ``drr``
    uniformly from ``[0, 10]`` dB. The power of every band at frame ``t``
    becomes its own plus a tail of it and the frames before,
    ``sum(share * decay ** k * power[t - k] for k >= 0)``, with ``decay =
    10 ** (-6 / t60)`` (60 dB in ``t60`` frames) and ``share = (1 - decay) *
    10 ** (-drr / 10)`` (the tail's weights sum to the ratio's share of the
    direct sound; the reflections within a frame's span are heard in it): a
    diffuse room's exponentially decaying reverberation, whose reflections
    add to each band as power (their phases are random). The tail of what
    came before a crop is not heard.

    The features are read as power in dB (``LogMelTransformer``'s, with its
    default ``power=2``), standardised; the power is clamped to 300 dB
    either way of a band's mean, which only features in other units reach.

    Parameters
    ----------
    x : torch.Tensor of shape (batch, n_mels, n_frames)
        Standardised log-mel spectrograms (dB less a mean of each band,
        divided by ``scale``), zero after each clip's ``lengths``.
    lengths : torch.Tensor of shape (batch,)
        Valid frames of each clip.
    scale : torch.Tensor of shape (batch, n_mels) or (batch, n_mels, n_frames)
        What each clip's bands (or each frame's, where a clip is made of
        several, :func:`frame_scales`) were divided by in the
        standardisation, in dB. A band's mean cancels out (a gain per band
        commutes with the room), so it is not needed.
    longest : float > 0
        Longest reverberation time, in frames.
    generator : torch.Generator
        Source of the draws (of ``x``'s device).

    Returns
    -------
    x : torch.Tensor of the shape and dtype of ``x``
        Zero after each clip's ``lengths`` still.
    """
    n, n_mels, width = x.shape
    dev = x.device
    t60 = (1.0 - torch.rand(n, generator=generator, device=dev)) * longest
    drr_db = torch.rand(n, generator=generator, device=dev) * _LARGEST_DRR_DB
    log_decay = -_T60_DECAY / t60  # per frame, in nepers of power
    share = -torch.expm1(log_decay) * 10.0 ** (-drr_db / 10.0)
    power, scale = _power(x, scale)
    # The tail, a first-order recursion over the frames, computed exactly in
    # blocks of frames: within a block, one matrix product of the frames with
    # each clip's weights ``share * decay ** (j - i)``; across blocks, what
    # the last frame of a block carries on, decaying ``decay ** (j + 1)``.
    # Several times faster on a CPU than a loop over the frames or a
    # convolution with a kernel per clip.
    size = _TAIL_BLOCK
    blocks = -(-width // size)
    lag = torch.arange(size, device=dev)
    lag = lag[:, None] - lag[None, :]  # j - i
    weights = share[:, None, None] * torch.exp(
        lag.clamp(min=0) * log_decay[:, None, None]
    )
    weights = weights.masked_fill_(lag < 0, 0.0)  # (n, j, i)
    padded = torch.nn.functional.pad(power, (0, blocks * size - width))
    tail = torch.bmm(padded.view(n, n_mels * blocks, size), weights.transpose(1, 2))
    tail = tail.view(n, n_mels, blocks, size)
    carried = torch.exp((lag[:, 0] + 1) * log_decay[:, None])  # (n, j)
    for k in range(1, blocks):  # the whole tail at the last frame before
        tail[:, :, k].addcmul_(tail[:, :, k - 1, -1:], carried[:, None, :])
    tail = tail.view(n, n_mels, blocks * size)[:, :, :width]
    valid = torch.arange(width, device=dev) < lengths[:, None]
    return _standardised(power.add_(tail), scale, valid, x.dtype)


def _power(x, scale):
    """Standardised log-mel features as power relative to each band's mean
    (the mean cancels out of what :func:`reverberate` and :func:`add_noise`
    do), and the scale broadcastable to ``x``: ``(batch, n_mels, 1)`` or
    ``(batch, n_mels, n_frames)``. The power is that of nepers (natural
    log): a clip spans top_db, 80 dB, so it stays far from float32's limits;
    the clamp keeps features in other units finite."""
    scale = scale.float()
    scale = scale[:, :, None] if scale.dim() == 2 else scale
    nepers = x.float() * (scale * (_LN_10 / 10.0))
    return nepers.clamp_(-_LARGEST_NEPERS, _LARGEST_NEPERS).exp_(), scale


def _standardised(power, scale, valid, dtype):
    """The inverse of :func:`_power`, in place, in ``dtype``, with zeros
    where ``valid`` (of shape ``(batch, n_frames)``) is False."""
    heard = power.log_().mul_((10.0 / _LN_10) / scale)
    # where, not a product: the padding's scale may be 0 (frame_scales).
    return torch.where(valid[:, None, :], heard, 0.0).to(dtype)


def _on_some(augment, fraction, x, generator, **per_clip):
    """``augment(x, **per_clip)`` on ``round(fraction * n)`` clips of a batch
    of ``n``, drawn from ``generator`` without replacement, the others left
    as they are; on all of them, with the same draws as ``augment`` alone,
    when that is the whole batch. The count is fixed, not drawn, so that no
    draw waits for the device. ``per_clip`` are tensors with a row per clip
    (or None), taken with the clips chosen."""
    n = x.shape[0]
    count = round(fraction * n)
    if count >= n:
        return augment(x, **per_clip)
    if count == 0:
        return x
    chosen = torch.randperm(n, generator=generator, device=x.device)[:count]
    rows = {k: None if t is None else t[chosen] for k, t in per_clip.items()}
    return x.index_copy(0, chosen, augment(x[chosen], **rows))


def add_noise(x, lengths, scale, lowest_snr, generator, spectrum="speech", offset=None):
    """Each clip of a batch with stationary noise, added in the mel power
    domain: shaped like the clip's own long-term spectrum (speech-shaped
    noise), or of a random tilt over the bands.

    Each clip draws a signal-to-noise ratio ``snr`` uniformly from
    ``[lowest_snr, lowest_snr + 20]`` dB. With ``spectrum="speech"``, every
    band's power at every valid frame gets ``10 ** (-snr / 10)`` times that
    band's mean power over the clip's valid frames: the expected power of a
    noise whose spectrum is the clip's long-term spectrum, so that the ratio
    holds in every band and over the whole clip. It fills the quiet frames
    and the valleys between harmonics, as a noisy recording's floor does,
    while the loud frames keep their shape.

    With ``spectrum="tilted"``, each clip also draws a tilt ``t`` uniformly
    from ``[0, 40]`` dB, and the noise's power in band ``b`` of ``B`` falls
    linearly in dB from the bottom band to the top one, by ``t``: ``n_b =
    c * 10 ** (-t * b / (B - 1) / 10)``, from flat (white noise, in
    ``LogMelTransformer``'s area-normalised bands) to about brown noise.
    Its level ``c`` gives the ratio ``snr`` of the clip's mean power over
    bands and valid frames to the noise's mean power over bands, in the
    absolute units of the features (``offset`` gives them back), so that
    the bands where speech is quiet, the high ones, may drown as they do in
    a recording with a hissing floor.

    The features are read as power in dB and clamped as in
    :func:`reverberate`.

    Parameters
    ----------
    x : torch.Tensor of shape (batch, n_mels, n_frames)
        Standardised log-mel spectrograms (dB less a mean of each band,
        divided by ``scale``), zero after each clip's ``lengths``.
    lengths : torch.Tensor of shape (batch,)
        Valid frames of each clip.
    scale : torch.Tensor of shape (batch, n_mels) or (batch, n_mels, n_frames)
        What each clip's bands (or each frame's, :func:`frame_scales`) were
        divided by in the standardisation, in dB.
    lowest_snr : float
        Lowest signal-to-noise ratio drawn, in dB.
    generator : torch.Generator
        Source of the draws (of ``x``'s device).
    spectrum : {"speech", "tilted"}, default="speech"
        The noise's spectrum.
    offset : torch.Tensor of the shape of ``scale``, or None, default=None
        What each clip's bands (or frames) were centred on in the
        standardisation, in dB; needed with ``spectrum="tilted"`` (a band's
        mean cancels out of speech-shaped noise).

    Returns
    -------
    x : torch.Tensor of the shape and dtype of ``x``
        Zero after each clip's ``lengths`` still.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[[1.0, -1.0, 0.0]]])  # one band, 2 valid frames
    >>> noisy = add_noise(x, torch.tensor([2]), torch.full((1, 1), 10.0),
    ...                   lowest_snr=0.0, generator=torch.Generator())
    >>> bool(noisy[0, 0, 0] > 1.0), bool(noisy[0, 0, 1] > -1.0), noisy[0, 0, 2].item()
    (True, True, 0.0)
    """
    if spectrum not in NOISE_SPECTRA:
        raise ValueError(f"spectrum={spectrum!r} is not one of {NOISE_SPECTRA}.")
    n, n_mels, width = x.shape
    dev = x.device
    draw = torch.rand(n, generator=generator, device=dev)
    snr_db = lowest_snr + draw * _NOISE_SNR_SPAN_DB
    power, scale = _power(x, scale)
    valid = torch.arange(width, device=dev) < lengths[:, None]
    if spectrum == "speech":
        mean = torch.where(valid[:, None, :], power, 0.0).sum(2, keepdim=True)
        mean = mean / lengths.clamp(min=1).to(mean.dtype)[:, None, None]
        noise = mean * (10.0 ** (-snr_db / 10.0))[:, None, None]
        return _standardised(power.add_(noise), scale, valid, x.dtype)
    if offset is None:
        raise ValueError('spectrum="tilted" needs the offset of the features.')
    tilt_db = torch.rand(n, generator=generator, device=dev) * _NOISE_TILT_DB
    # Levels in nepers relative to each clip's loudest band centre, so that
    # the absolute powers stay within float32 whatever the features' units.
    offset = offset.float()
    if offset.dim() == 2:
        offset = offset[:, :, None]
        level = offset.amax(1, keepdim=True)
    else:  # the valid frames' (the padding's offset is 0); 0 with none
        level = torch.where(valid[:, None, :], offset, -torch.inf)
        level = level.amax((1, 2), keepdim=True).nan_to_num_(neginf=0.0)
    level = ((offset - level) * (_LN_10 / 10.0)).clamp_(min=-_LARGEST_NEPERS)
    absolute = torch.where(valid[:, None, :], power * level.exp(), 0.0)
    mean = absolute.sum((1, 2)) / (lengths.clamp(min=1) * n_mels).to(power.dtype)
    bands = torch.arange(n_mels, device=dev, dtype=power.dtype) / max(n_mels - 1, 1)
    shape = 10.0 ** (-tilt_db[:, None] * bands / 10.0)  # (batch, n_mels)
    shape = shape / shape.mean(1, keepdim=True)
    noise = (mean * 10.0 ** (-snr_db / 10.0))[:, None] * shape
    # In each band's own units, those of ``power``.
    noise = noise[:, :, None] * (-level).clamp_(max=_LARGEST_NEPERS).exp()
    noisy = power.add_(noise).clamp_(max=torch.finfo(power.dtype).max)
    return _standardised(noisy, scale, valid, x.dtype)


def _warp(x, rate):
    """Resample the mel bands of each clip of a batch at its ``rate``: output
    band ``b`` is the linear interpolation of input bands at ``b * rate``,
    the top band beyond the last; frames of zeros stay zeros.

    Each clip's warp is a linear map of its bands, applied as one batched
    matrix product (several times faster than gathering bands on a CPU),
    written channels-last: the layout the network computes in (see
    :mod:`._networks`, "Memory layout"), so that it need not copy its input.
    """
    n, n_mels, _ = x.shape
    last = torch.full((n, 1), n_mels - 1, device=x.device)
    bands = torch.arange(n_mels, device=x.device)[None, :]
    left, right, weight = _interpolation(bands, rate, last)
    weight = weight.to(x.dtype)[:, :, None]
    matrix = x.new_zeros(n, n_mels, n_mels)
    matrix.scatter_add_(2, left[:, :, None], 1.0 - weight)
    matrix.scatter_add_(2, right[:, :, None], weight)
    return torch.bmm(x.transpose(1, 2), matrix.transpose(1, 2)).transpose(1, 2)


def _interpolation(index, rate, last):
    """Where values resampled at ``rate`` fall: value ``index[i, k] = j`` of
    clip ``i`` is ``(1 - weight) * input[left] + weight * input[right]`` at
    position ``j * rate[i]`` clamped to ``last[i]``. ``index`` is of shape
    ``(batch, size)`` or ``(1, size)`` (the same for every clip); each output
    of shape ``(batch, size)``."""
    position = index * rate[:, None]
    position = torch.minimum(position, last.to(position.dtype))
    left = position.long()
    right = torch.minimum(left + 1, last)
    return left, right, position - left


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient times ``-weight`` backward."""

    @staticmethod
    def forward(ctx, x, weight):
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.weight * grad, None


def make_net(params, *, n_mels, n_classes, device, random_state=0):
    """The net of a classifier, not yet initialised: an :class:`EmbeddingNet`,
    or an :class:`EmbeddingEnsemble` of them with ``n_networks > 1``.

    Parameters
    ----------
    params : dict
        ``EmotionEmbeddingClassifier.get_params()``, validated.
    n_mels, n_classes : int
        Input bands and classes.
    device : torch.device
    random_state : int, default=0
        Seed of the weights, batches, crops and masks (of the first member).

    Returns
    -------
    net : EmbeddingNet or EmbeddingEnsemble
    """
    p = params

    def member(seed):
        callbacks = [
            ("clip", GradientNormClipping(gradient_clip_value=10.0)),
            ("lr_schedule", CosineAnnealing()),
            ("early_stopping", PhaseEarlyStopping()),
            ("collapse", CollapseMonitor()),
        ]
        if p["verbose"] == 1:
            callbacks.append(("progress", PhaseProgressBar()))
        return EmbeddingNet(
            EmbeddingNetwork,
            module__n_mels=n_mels,
            module__n_classes=n_classes,
            **{f"module__{name}": p[name] for name in NETWORK_PARAMS},
            criterion=torch.nn.CrossEntropyLoss,
            optimizer=torch.optim.AdamW,
            train_split=None,
            callbacks=callbacks,
            **training_params(p, device=device, random_state=seed),
        )

    if p["n_networks"] == 1:
        return member(random_state)
    seeds = member_seeds(random_state, p["n_networks"])
    return EmbeddingEnsemble([member(seed) for seed in seeds])


def network_shapes(params, *, n_mels, n_classes):
    """Shapes of the weights of the network :func:`make_net` builds, found
    without allocating them (on torch's ``meta`` device).

    Parameters
    ----------
    params : dict
        ``EmotionEmbeddingClassifier.get_params()``, validated.
    n_mels, n_classes : int

    Returns
    -------
    shapes : dict of str to tuple of int
        ``module.state_dict()`` names and shapes (of every member of an
        ensemble, under ``"k."``).
    """
    with torch.device("meta"):
        module = EmbeddingNetwork(
            n_mels=n_mels,
            n_classes=n_classes,
            **{name: params[name] for name in NETWORK_PARAMS},
        )
    shapes = {name: tuple(t.shape) for name, t in module.state_dict().items()}
    if params["n_networks"] == 1:
        return shapes
    # An ensemble's module is the ModuleList of its members.
    return {
        f"{k}.{name}": shape
        for k in range(params["n_networks"])
        for name, shape in shapes.items()
    }


def autocast_dtype(precision, device):
    """The dtype training steps autocast to, or None for plain float32.

    Parameters
    ----------
    precision : {"auto", "float32", "bfloat16"}
        ``"auto"`` is bfloat16 on a CUDA GPU that computes it natively
        (compute capability 8.0 or later: Ampere and newer) and float32
        elsewhere: an older GPU, or a CPU without bfloat16 units (AMX or
        AVX512-BF16), converts every operand.
    device : str or torch.device

    Returns
    -------
    dtype : torch.dtype or None

    Examples
    --------
    >>> autocast_dtype("auto", "cpu") is None
    True
    >>> autocast_dtype("bfloat16", "cpu")
    torch.bfloat16
    """
    if precision == "bfloat16":
        return torch.bfloat16
    device = torch.device(device)
    if precision == "auto" and device.type == "cuda":
        # "cuda" is the current device, which the caller may change.
        index = torch.cuda.current_device() if device.index is None else device.index
        if _native_bfloat16(index):
            return torch.bfloat16
    return None


@functools.cache
def _native_bfloat16(cuda_index):
    """Whether the CUDA device of this index computes bfloat16 natively (asked
    once per device: :func:`autocast_dtype` runs at every training step)."""
    return torch.cuda.get_device_capability(cuda_index) >= (8, 0)


_FUSED_DEVICES = ("cpu", "cuda")  # where torch's fused AdamW runs

#: The softmax phase's peak learning rate and weight decay when a classifier's
#: ``lr`` and ``weight_decay`` are None, for each ``softmax_optimizer``.
#: AdamW's rate is the one chosen for batches of 32 (3e-3) scaled with the
#: square root of the batch size to the default 64; SGD's is residual
#: networks' usual recipe (0.1 for batches of 128, with an L2 decay of 5e-4)
#: scaled linearly to 64.
SOFTMAX_OPTIMIZER_DEFAULTS = {
    "adamw": {"lr": 4.243e-3, "weight_decay": 1e-4},
    "sgd": {"lr": 0.05, "weight_decay": 5e-4},
}


def optimizer_settings(params):
    """The learning rates and weight decays of both phases that a
    classifier's parameters set, with their ``None`` resolved.

    ``lr`` and ``weight_decay`` of None are the softmax phase's optimizer's
    own (:data:`SOFTMAX_OPTIMIZER_DEFAULTS`). The triplet phase steps with
    AdamW: ``triplet_lr`` of None is a third of the softmax phase's rate, and
    ``triplet_weight_decay`` of None its weight decay, when that phase is
    AdamW too; after SGD, whose rate and L2 decay are on another scale, they
    are a third of AdamW's default rate and AdamW's default decay.

    Parameters
    ----------
    params : dict
        ``EmotionEmbeddingClassifier.get_params()``, validated.

    Returns
    -------
    settings : dict
        ``lr``, ``weight_decay``, ``triplet_lr`` and ``triplet_weight_decay``,
        each a float.

    Examples
    --------
    >>> names = ["lr", "weight_decay", "triplet_lr", "triplet_weight_decay"]
    >>> sgd = optimizer_settings({**dict.fromkeys(names), "softmax_optimizer": "sgd"})
    >>> sgd["lr"], sgd["weight_decay"], sgd["triplet_weight_decay"]
    (0.05, 0.0005, 0.0001)
    """

    def given(name, default):
        return default if params[name] is None else params[name]

    own = SOFTMAX_OPTIMIZER_DEFAULTS[params["softmax_optimizer"]]
    lr, weight_decay = (
        given("lr", own["lr"]),
        given("weight_decay", own["weight_decay"]),
    )
    # The triplet phase's AdamW falls back on the softmax phase's settings
    # when that phase is AdamW too, on AdamW's defaults otherwise.
    adamw = (
        {"lr": lr, "weight_decay": weight_decay}
        if params["softmax_optimizer"] == "adamw"
        else SOFTMAX_OPTIMIZER_DEFAULTS["adamw"]
    )
    return {
        "lr": lr,
        "weight_decay": weight_decay,
        "triplet_lr": given("triplet_lr", adamw["lr"] / 3),
        "triplet_weight_decay": given("triplet_weight_decay", adamw["weight_decay"]),
    }


def training_params(params, *, device, random_state):
    """The parameters of an :class:`EmbeddingNet` that a classifier's
    parameters set, but for the module's: what a warm start updates."""
    p = params
    rates = optimizer_settings(p)
    return dict(
        optimizer__weight_decay=rates["weight_decay"],
        # One kernel for the whole update instead of a loop over the weights:
        # the same AdamW, several times faster per step on the CPU.
        optimizer__fused=torch.device(device).type in _FUSED_DEVICES,
        lr=rates["lr"],
        batch_size=p["batch_size"],
        max_epochs=p["pretrain_epochs"],
        pretrain_epochs=p["pretrain_epochs"],
        triplet_epochs=p["triplet_epochs"],
        softmax_optimizer=p["softmax_optimizer"],
        triplet_lr=rates["triplet_lr"],
        triplet_weight_decay=rates["triplet_weight_decay"],
        margin=p["margin"],
        mining=p["mining"],
        ce_weight=p["ce_weight"],
        n_classes_per_batch=p["n_classes_per_batch"],
        n_samples_per_class=p["n_samples_per_class"],
        crop_frames=p["crop_frames"],
        freq_masks=p["freq_masks"],
        freq_mask_width=p["freq_mask_width"],
        time_masks=p["time_masks"],
        time_mask_width=p["time_mask_width"],
        mixup_alpha=p["mixup_alpha"],
        tempo_perturbation=p["tempo_perturbation"],
        frequency_warping=p["frequency_warping"],
        freq_mixstyle=p["freq_mixstyle"],
        freq_mixstyle_alpha=p["freq_mixstyle_alpha"],
        filter_augment=p["filter_augment"],
        reverberation=p["reverberation"],
        reverberation_fraction=p["reverberation_fraction"],
        noise_snr=p["noise_snr"],
        noise_spectrum=p["noise_spectrum"],
        noise_fraction=p["noise_fraction"],
        copy_paste=p["copy_paste"],
        softmax_loss=p["softmax_loss"],
        aam_margin=p["aam_margin"],
        aam_scale=p["aam_scale"],
        speaker_adversarial=p["speaker_adversarial"],
        ema_epochs=p["ema_epochs"],
        precision=p["precision"],
        criterion__label_smoothing=p["label_smoothing"],
        callbacks__early_stopping__patience=p["patience"],
        random_state=random_state,
        device=str(device),
        verbose=int(p["verbose"] >= 2),
    )


# ----------------------------------------------------------------- callbacks


class StopPhase(KeyboardInterrupt):
    """Raised by a callback to end a training phase early; not a user interrupt.

    skorch stops ``fit`` on ``KeyboardInterrupt``; this subclass lets the net
    tell a planned stop (early stopping, collapse) from Ctrl-C.
    """


class CosineAnnealing(Callback):
    """Cosine learning-rate schedule over one phase.

    The rate falls from the phase's learning rate to 0 over its epochs
    (``net.phase_lr_`` and ``net.phase_epochs_``, set by
    :meth:`EmbeddingNet.fit_phases`), and is recorded in the history as ``lr``.
    """

    def on_train_begin(self, net, **kwargs):
        self.first_epoch_ = len(net.history)
        self.lr_, self.epochs_ = net.phase_lr_, max(1, net.phase_epochs_)

    def on_epoch_begin(self, net, **kwargs):
        step = len(net.history) - 1 - self.first_epoch_
        lr = 0.5 * self.lr_ * (1.0 + np.cos(np.pi * step / self.epochs_))
        for group in net.optimizer_.param_groups:
            group["lr"] = lr
        net.history.record("lr", lr)


class PhaseEarlyStopping(EarlyStopping):
    """skorch's :class:`~skorch.callbacks.EarlyStopping` for each phase, when
    there is a validation set; it stops with :class:`StopPhase`, so that a stop
    is not taken for a user interrupt, and restores the phase's best weights
    (the average of the best epoch, with ``ema_epochs``: the weights that
    were validated).

    Parameters
    ----------
    patience : int, default=30
        Epochs without a better validation loss before the phase stops.
    """

    def __init__(self, patience=30):
        super().__init__(patience=patience, load_best=True, sink=_noop)

    def on_train_begin(self, net, **kwargs):
        self.active_ = getattr(net, "valid_set_", None) is not None
        if self.active_:
            super().on_train_begin(net, **kwargs)

    def on_epoch_end(self, net, **kwargs):
        if not self.active_:
            return
        try:
            super().on_epoch_end(net, **kwargs)
        except StopPhase:
            raise
        except KeyboardInterrupt:
            if self.misses_ < self.patience:  # a user's Ctrl-C
                raise
            raise StopPhase from None  # skorch's early stop
        improved = self.best_epoch_ == net.history[-1, "epoch"]
        if improved and net.averaged_ is not None:  # keep what was validated
            self.best_model_weights_ = net.phase_state()

    def on_train_end(self, net, **kwargs):
        if self.active_:
            super().on_train_end(net, **kwargs)


class CollapseMonitor(Callback):
    """Stop the triplet phase when the embeddings collapse to one point.

    During each epoch, the L2-normalised embeddings of the training batches
    are summed; their mean pairwise cosine similarity, recorded in the history
    as ``collapse``, is ``(|sum|^2 - n) / (n (n - 1))``. When it reaches
    ``threshold`` in the triplet phase, training stops, the weights of the last
    healthy epoch (their average, with ``ema_epochs``) are restored and an
    :class:`EmbeddingCollapseWarning` says so.

    Parameters
    ----------
    threshold : float, default=0.99
    """

    def __init__(self, threshold=0.99):
        self.threshold = threshold

    def on_train_begin(self, net, **kwargs):
        self.healthy_state_ = net.phase_state()

    def on_epoch_begin(self, net, **kwargs):
        self.sum_, self.count_ = 0.0, 0

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        if training:
            unit = torch.nn.functional.normalize(y_pred[1].detach().float(), dim=1)
            self.sum_ = self.sum_ + unit.sum(dim=0)
            self.count_ += len(unit)

    def on_epoch_end(self, net, **kwargs):
        if self.count_ < 2:
            return
        n = self.count_
        score = float((self.sum_.square().sum() - n) / (n * (n - 1)))
        net.history.record("collapse", score)
        if net.phase_ != "triplet":
            return
        if score < self.threshold:
            self.healthy_state_ = net.phase_state()
            return
        net.restore_weights(self.healthy_state_)
        warnings.warn(
            f"The embeddings collapsed at epoch {len(net.history)}: their mean "
            f"cosine similarity reached {score:.3f} (>= {self.threshold}). Training "
            "stopped and the last healthy weights were restored. Lower the triplet "
            "learning rate or the margin, or train longer with softmax first.",
            EmbeddingCollapseWarning,
            stacklevel=user_stacklevel(),
        )
        raise StopPhase  # skorch's way to stop training early

    def on_train_end(self, net, **kwargs):
        # The fitted net keeps no copy of the weights, nor device tensors.
        self.healthy_state_, self.sum_ = None, 0.0


class PhaseProgressBar(Callback):
    """A tqdm progress bar over the epochs of each phase, with the last losses.

    Parameters
    ----------
    file : file-like or None, default=None
        Where to draw; ``None`` is tqdm's default (``sys.stderr``).
    """

    def __init__(self, file=None):
        self.file = file

    def on_train_begin(self, net, **kwargs):
        from tqdm.auto import tqdm

        self.bar_ = tqdm(
            total=net.phase_epochs_,
            desc=f"{net.phase_:<8}",
            unit="epoch",
            file=self.file,
        )

    def on_epoch_end(self, net, **kwargs):
        last = net.history[-1]
        losses = {"loss": f"{last.get('train_loss', float('nan')):.4f}"}
        if "valid_loss" in last:
            losses["valid"] = f"{last['valid_loss']:.4f}"
        self.bar_.set_postfix(losses, refresh=False)
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        self.bar_.close()


def _noop(*args, **kwargs):
    pass
