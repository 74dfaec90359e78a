"""EmotionEmbeddingClassifier: triplet-loss emotion embeddings, cosine centroids."""

import copy
import numbers
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.model_selection import GroupShuffleSplit, StratifiedShuffleSplit
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ._device import resolve_device
from ._losses import embedding_collapse_score, get_miner
from ._networks import ARCHITECTURES, MAX_LAYERS, MIN_LAYERS, STEMS, EmbeddingNetwork
from ._sampling import ClassBalancedBatchSampler
from ._training import (
    CollapseMonitor,
    CosineAnnealing,
    EmbeddingNet,
    EpochProgressBar,
    PhaseEarlyStopping,
    SpectrogramDataset,
    TrainingDivergedError,
    collate_spectrograms,
)
from ._validation import check_spectrograms

__all__ = ["EmotionEmbeddingClassifier"]


class EmotionEmbeddingClassifier(ClassifierMixin, TransformerMixin, BaseEstimator):
    """Speech emotion classifier on learned, triplet-trained emotion embeddings.

    The method of Kumar et al. (2021): an embedding network (a ResNet by default)
    reads a log-mel spectrogram and ends in a fully connected -> embedding layer
    whose output is the clip's *emotion embedding*. Training has two phases:

    1. **softmax pre-training**: a softmax head on the embedding is trained with
       cross-entropy;
    2. **triplet training**: the L2-normalised embeddings are trained with the
       triplet loss in cosine distance, mining triplets online in class-balanced
       batches of ``n_classes_per_batch`` emotions x ``n_samples_per_class`` clips.

    Each emotion is then represented by the normalised mean of its training
    embeddings (``centroids_``), and a clip is assigned the emotion whose centroid
    makes the smallest cosine angle with its embedding.

    Training clips are randomly cropped to ``crop_frames`` and masked in time and
    frequency (SpecAugment); prediction reads each whole clip. Time pooling is
    length-aware, so NaN padding (the output of :class:`LogMelTransformer` for
    clips of different lengths) never affects a clip's embedding.

    Parameters
    ----------
    architecture : {"resnet", "cnn", "fc", "rnn", "lstm", "gru"}, default="resnet"
        Family of the embedding network (the paper's ablation; ResNet was best).
    n_layers : int in [6, 15], default=11
        Number of weight layers of the network (ResNet-11 in the paper); see
        :class:`sklearn_tser._networks.EmbeddingNetwork` for how each family
        counts them.
    embedding_dim : int > 0, default=128
        Size of the embedding.
    width : int > 0, default=64
        Channels (or hidden units) of the first block; deeper blocks widen.
    stem : {"conv1d", "conv2d"}, default="conv1d"
        First layers of the ResNet and CNN: a 1-D convolution reading the mel
        bins as channels, or a 2-D convolution over (mel, time) followed by a
        1-D projection (two weight layers). Ignored by the other families.
    dropout : float in [0, 1), default=0.1
        Dropout before the embedding layer.
    pretrain_epochs : int >= 0, default=150
        Epochs of softmax pre-training (phase 1).
    triplet_epochs : int >= 0, default=30
        Epochs of triplet training (phase 2).
    margin : float > 0, default=0.2
        Triplet margin in cosine distance (``1 - cos``).
    mining : {"semi_hard", "batch_hard", "batch_all"}, default="semi_hard"
        Online triplet mining strategy.
    ce_weight : float >= 0, default=0.0
        Weight of a cross-entropy term kept during triplet training (0: the
        paper's pure triplet phase).
    n_classes_per_batch : int >= 2 or None, default=None
        Emotions per triplet batch (P); ``None`` uses every class.
    n_samples_per_class : int >= 2, default=8
        Clips per emotion in a triplet batch (K). A class with fewer clips is
        sampled with replacement: its repeats are different random crops and
        masks of the same clip, so a class with a single clip still yields
        anchor-positive pairs.
    batch_size : int > 0, default=32
        Batch size of softmax pre-training and of inference.
    lr : float > 0, default=3e-3
        Learning rate (AdamW) of the softmax phase, annealed with a cosine
        schedule.
    triplet_lr : float > 0 or None, default=None
        Learning rate of the triplet phase; ``None`` means ``lr / 3``.
    weight_decay : float >= 0, default=1e-4
        AdamW weight decay.
    crop_frames : int > 0 or None, default=200
        Length of the random training crops in frames (2 s at the default 10 ms
        hop); ``None`` trains on whole clips.
    freq_masks, time_masks : int >= 0, default=2
        Number of frequency and time masks per training crop.
    freq_mask_width : int >= 0, default=8
        Largest frequency mask, in mel bands.
    time_mask_width : int >= 0, default=20
        Largest time mask, in frames.
    standardize : {"global", "clip"}, default="global"
        ``"global"``: each mel band is standardised with the mean and standard
        deviation of the training set; ``"clip"``: with those of the clip itself
        (removes loudness and channel differences between recordings).
    validation_fraction : float in [0, 0.5), default=0.0
        Fraction of the training clips held out to stop each phase early (keeping
        its best weights) and to calibrate ``predict_proba``; when ``groups`` are
        given to ``fit``, whole groups (speakers) are held out. The default, 0,
        trains on every clip for the whole schedule: on RAVDESS this scored about
        5 points higher than holding out 0.1 (``benchmarks/``), but
        ``predict_proba`` is then calibrated on the training clips and is
        over-confident.
    patience : int > 0, default=30
        With ``validation_fraction > 0``: epochs without improvement of the
        validation loss before a phase stops; the best weights of the phase are
        restored.
    device : str, default="auto"
        ``"auto"`` trains on CUDA when available (with bfloat16 mixed precision),
        on the CPU otherwise; or ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, batches, crops, masks and the validation
        split. With an integer, two fits on the CPU give identical models.
    verbose : int, default=0
        0 is silent; 1 draws a progress bar over the epochs of each phase (on
        stderr, with the last losses); 2 or more prints skorch's table, a line
        per epoch with the training and validation losses.
    warm_start : bool, default=False
        When fitting again, continue from the current network weights instead of
        starting anew (the classes must be the same).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The emotion labels.
    centroids_ : ndarray of shape (n_classes, embedding_dim)
        L2-normalised mean training embedding of each class.
    angles_ : ndarray of shape (n_classes, n_classes)
        Angles in degrees between the class centroids.
    proba_scale_ : float
        Inverse temperature of ``predict_proba``, fitted on held-out clips.
    net_ : EmbeddingNet
        The fitted skorch net; ``net_.module_`` is the embedding network and
        ``net_.history`` the per-epoch log of both phases.
    feature_mean_, feature_std_ : ndarray of shape (n_mels,)
        Standardisation of the input (``standardize="global"``).
    collapse_score_ : float
        Mean pairwise cosine similarity of the training embeddings (near 1 means
        the embeddings collapsed to one point).
    n_features_in_ : int
        Number of mel bands per frame seen in ``fit``.

    See Also
    --------
    LogMelTransformer : Makes the spectrograms this classifier reads.
    sklearn.neighbors.NearestCentroid : The same decision rule on raw features.

    Notes
    -----
    ``decision_function`` returns cosine similarities to the centroids (for two
    classes, the difference of the two, as scikit-learn expects). ``predict_proba``
    is ``softmax(proba_scale_ * similarities)``; ``proba_scale_`` is fitted by
    minimising the log loss on the validation clips (temperature scaling), or on
    the training clips when ``validation_fraction=0``, which makes the
    probabilities over-confident.

    Gradients are clipped to a norm of 10. A loss that stops being finite raises
    :class:`~sklearn_tser._training.TrainingDivergedError`.

    References
    ----------
    P. Kumar, S. Jain, B. Raman, P. P. Roy and M. Iwamura, "End-to-end Triplet
    Loss based Emotion Embedding System for Speech Emotion Recognition", ICPR 2020.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_tser import EmotionEmbeddingClassifier, LogMelTransformer
    >>> from sklearn_tser.datasets import make_emotional_speech
    >>> X, y = make_emotional_speech(n_samples=48, n_classes=2, random_state=0,
    ...                              return_X_y=True)
    >>> clf = make_pipeline(
    ...     LogMelTransformer(n_mels=32),
    ...     EmotionEmbeddingClassifier(n_layers=6, width=16, pretrain_epochs=3,
    ...                                triplet_epochs=2, random_state=0),
    ... ).fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)
    """

    _parameter_constraints = {
        "architecture": [StrOptions(set(ARCHITECTURES))],
        "n_layers": [Interval(numbers.Integral, MIN_LAYERS, MAX_LAYERS, closed="both")],
        "embedding_dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "width": [Interval(numbers.Integral, 1, None, closed="left")],
        "stem": [StrOptions(set(STEMS))],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "pretrain_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "triplet_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "margin": [Interval(numbers.Real, 0, None, closed="neither")],
        "mining": [StrOptions({"semi_hard", "batch_hard", "batch_all"})],
        "ce_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "n_classes_per_batch": [
            Interval(numbers.Integral, 2, None, closed="left"),
            None,
        ],
        "n_samples_per_class": [Interval(numbers.Integral, 2, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "triplet_lr": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "crop_frames": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "freq_masks": [Interval(numbers.Integral, 0, None, closed="left")],
        "freq_mask_width": [Interval(numbers.Integral, 0, None, closed="left")],
        "time_masks": [Interval(numbers.Integral, 0, None, closed="left")],
        "time_mask_width": [Interval(numbers.Integral, 0, None, closed="left")],
        "standardize": [StrOptions({"global", "clip"})],
        "validation_fraction": [Interval(numbers.Real, 0, 0.5, closed="left")],
        "patience": [Interval(numbers.Integral, 1, None, closed="left")],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    def __init__(
        self,
        *,
        architecture="resnet",
        n_layers=11,
        embedding_dim=128,
        width=64,
        stem="conv1d",
        dropout=0.1,
        pretrain_epochs=150,
        triplet_epochs=30,
        margin=0.2,
        mining="semi_hard",
        ce_weight=0.0,
        n_classes_per_batch=None,
        n_samples_per_class=8,
        batch_size=32,
        lr=3e-3,
        triplet_lr=None,
        weight_decay=1e-4,
        crop_frames=200,
        freq_masks=2,
        freq_mask_width=8,
        time_masks=2,
        time_mask_width=20,
        standardize="global",
        validation_fraction=0.0,
        patience=30,
        device="auto",
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.architecture = architecture
        self.n_layers = n_layers
        self.embedding_dim = embedding_dim
        self.width = width
        self.stem = stem
        self.dropout = dropout
        self.pretrain_epochs = pretrain_epochs
        self.triplet_epochs = triplet_epochs
        self.margin = margin
        self.mining = mining
        self.ce_weight = ce_weight
        self.n_classes_per_batch = n_classes_per_batch
        self.n_samples_per_class = n_samples_per_class
        self.batch_size = batch_size
        self.lr = lr
        self.triplet_lr = triplet_lr
        self.weight_decay = weight_decay
        self.crop_frames = crop_frames
        self.freq_masks = freq_masks
        self.freq_mask_width = freq_mask_width
        self.time_masks = time_masks
        self.time_mask_width = time_mask_width
        self.standardize = standardize
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------------ fit

    def fit(self, X, y, groups=None):
        """Train the embedding network, then compute the emotion centroids.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_mels, n_frames)
            Log-mel spectrograms, NaN-padded after each clip's last frame (the
            output of :class:`LogMelTransformer`). A 2-D array
            ``(n_clips, n_features)`` is read as clips of one frame.
        y : array-like of shape (n_clips,)
            Emotion labels of any type (e.g. strings such as ``"angry"``).
        groups : array-like of shape (n_clips,), default=None
            Speaker (or session) of each clip. With ``validation_fraction > 0``,
            the validation split keeps groups apart, so early stopping measures
            speaker-independent performance; unused otherwise. In a Pipeline pass
            ``clf__groups=groups``.

        Returns
        -------
        self : EmotionEmbeddingClassifier

        Raises
        ------
        TrainingDivergedError
            If the loss stops being finite; lower ``lr`` or check the input scale.

        Notes
        -----
        A fit that fails, or is interrupted outside an epoch, leaves the
        estimator as it was before (unfitted, or the previous model with
        ``warm_start=True``). A ``KeyboardInterrupt`` (Ctrl-C) during an epoch
        stops training: the remaining epochs and phases are skipped with a
        warning, and the centroids are computed from the weights reached so far,
        so the estimator is usable.
        """
        previous = dict(self.__dict__)
        if self.warm_start and hasattr(self, "net_"):
            previous["net_"] = copy.deepcopy(self.net_)  # trained in place
        try:
            return self._fit(X, y, groups)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(previous)
            raise

    def _fit(self, X, y, groups):
        self._validate_params()
        get_miner(self.mining, self.margin)  # validates the pair
        X, lengths = check_spectrograms(X)
        y = self._check_targets(y, len(X))
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != (len(X),):
                raise ValueError(
                    f"groups has shape {groups.shape}; expected one group per clip, "
                    f"shape ({len(X)},)."
                )
        device = resolve_device(self.device)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))

        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            X = self._fit_standardizer(X, lengths)
            train, valid = self._split(y, groups, seed)
            try:
                self._train(X, lengths, y, train, valid, device, seed)
            except RuntimeError as exc:
                if isinstance(exc, TrainingDivergedError) or "overflow" not in str(exc):
                    raise
                raise TrainingDivergedError(
                    f"Training overflowed ({exc}). Lower the learning rate "
                    f"(lr={self.lr}, triplet_lr={self.triplet_lr}) or the weight "
                    f"decay (weight_decay={self.weight_decay}), or check the "
                    "input scale."
                ) from exc
            emb = self._fit_centroids(X[train], lengths[train], y[train])
            if len(valid):  # calibrate on held-out clips when there are some
                emb = self._embed(X[valid], lengths[valid])
            self._fit_proba_scale(emb, y[valid] if len(valid) else y[train])
        return self

    def _check_targets(self, y, n_clips):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None. Pass the emotion label of every clip."
            )
        y = column_or_1d(y, warn=True)  # a column vector is raveled, with a warning
        if len(y) != n_clips:
            raise ValueError(
                f"X has {n_clips} clips but y has {len(y)} labels; they must match."
            )
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) < 2:
            raise ValueError(
                f"y holds a single class ({encoder.classes_.tolist()[0]!r}): one "
                "class is not enough, at least two emotions are needed to learn "
                "embeddings."
            )
        if self.warm_start and hasattr(self, "classes_"):
            if not np.array_equal(encoder.classes_, self.classes_):
                raise ValueError(
                    "warm_start=True needs the classes of the first fit "
                    f"{self.classes_.tolist()}, got {encoder.classes_.tolist()}. "
                    "Set warm_start=False to train a new model on these classes."
                )
        self.classes_ = encoder.classes_
        return encoder.transform(y)

    def _fit_standardizer(self, X, lengths):
        self.n_features_in_ = X.shape[1]
        if self.standardize == "global":
            valid = np.arange(X.shape[2]) < lengths[:, None]  # (n, T)
            count = valid.sum()
            mean = (X * valid[:, None, :]).sum(axis=(0, 2)) / count
            sq = ((X - mean[None, :, None]) ** 2 * valid[:, None, :]).sum(axis=(0, 2))
            std = np.sqrt(sq / count)
            self.feature_mean_ = mean.astype(np.float32)
            self.feature_std_ = np.maximum(std, 1e-3).astype(np.float32)
        return self._standardize(X, lengths)

    def _standardize(self, X, lengths):
        """Standardise the valid frames; padding stays 0."""
        valid = (np.arange(X.shape[2]) < lengths[:, None])[:, None, :]
        if self.standardize == "global":
            mean = self.feature_mean_[None, :, None]
            std = self.feature_std_[None, :, None]
        else:
            n = lengths[:, None, None].astype(np.float32)
            mean = (X * valid).sum(axis=2, keepdims=True) / n
            var = (((X - mean) * valid) ** 2).sum(axis=2, keepdims=True) / n
            std = np.maximum(np.sqrt(var), 1e-3)
        return np.where(valid, (X - mean) / std, 0.0).astype(np.float32)

    def _split(self, y, groups, seed):
        """Indices of the training and validation clips."""
        all_idx = np.arange(len(y))
        if self.validation_fraction == 0:
            return all_idx, all_idx[:0]
        if groups is not None:
            if len(np.unique(groups)) < 2:
                return all_idx, all_idx[:0]
            splitter = GroupShuffleSplit(
                n_splits=1, test_size=self.validation_fraction, random_state=seed
            )
        else:
            n_valid = int(np.ceil(self.validation_fraction * len(y)))
            if np.bincount(y).min() < 2 or n_valid < len(self.classes_):
                return all_idx, all_idx[:0]
            splitter = StratifiedShuffleSplit(
                n_splits=1, test_size=self.validation_fraction, random_state=seed
            )
        train, valid = next(splitter.split(all_idx, y, groups))
        return np.sort(train), np.sort(valid)

    def _dataset(self, X, lengths, y, seed, training):
        if not training:
            return SpectrogramDataset(X, lengths, y)
        return SpectrogramDataset(
            X,
            lengths,
            y,
            crop_frames=self.crop_frames,
            freq_masks=self.freq_masks,
            freq_mask_width=self.freq_mask_width,
            time_masks=self.time_masks,
            time_mask_width=self.time_mask_width,
            seed=seed,
        )

    def _build_net(self, n_mels, device, has_valid, probe):
        from skorch.callbacks import GradientNormClipping

        callbacks = [
            ("clip", GradientNormClipping(gradient_clip_value=10.0)),
            (
                "lr_schedule",
                CosineAnnealing(T_max=max(1, self.pretrain_epochs)),
            ),
            ("collapse", CollapseMonitor(probe)),
        ]
        if self.verbose == 1:
            callbacks.append(("progress", EpochProgressBar()))
        if has_valid:
            callbacks.append(
                (
                    "early_stopping",
                    PhaseEarlyStopping(
                        patience=self.patience, load_best=True, sink=_noop
                    ),
                )
            )
        return EmbeddingNet(
            EmbeddingNetwork,
            module__architecture=self.architecture,
            module__n_layers=self.n_layers,
            module__n_mels=n_mels,
            module__n_classes=len(self.classes_),
            module__embedding_dim=self.embedding_dim,
            module__width=self.width,
            module__stem=self.stem,
            module__dropout=self.dropout,
            criterion=torch.nn.CrossEntropyLoss,
            optimizer=torch.optim.AdamW,
            optimizer__weight_decay=self.weight_decay,
            lr=self.lr,
            batch_size=self.batch_size,
            max_epochs=self.pretrain_epochs,
            iterator_train__collate_fn=collate_spectrograms,
            iterator_train__shuffle=True,
            iterator_valid__collate_fn=collate_spectrograms,
            train_split=None,
            callbacks=callbacks,
            margin=self.margin,
            mining=self.mining,
            ce_weight=self.ce_weight,
            device=str(device),
            verbose=int(self.verbose >= 2),
        )

    def _train(self, X, lengths, y, train, valid, device, seed):
        """Phase 1 (softmax) then phase 2 (triplet) on the training clips."""
        from skorch.helper import predefined_split

        rng = np.random.default_rng(seed)
        probe_idx = valid if len(valid) else train
        probe_idx = rng.permutation(probe_idx)[:256]
        probe_X, probe_len = X[probe_idx], lengths[probe_idx]

        def probe(module):
            return self._embed_with(module, probe_X, probe_len, device, normalize=False)

        warm = self.warm_start and hasattr(self, "net_")
        if warm:
            net = self.net_
            net.set_params(device=str(device), verbose=int(self.verbose >= 2))
        else:
            net = self._build_net(X.shape[1], device, len(valid) > 0, probe)
            net.initialize()
        if len(valid):
            valid_set = self._dataset(X[valid], lengths[valid], y[valid], seed, False)
            net.set_params(train_split=predefined_split(valid_set))
        train_set = self._dataset(X[train], lengths[train], y[train], seed, True)
        net.set_params(callbacks__collapse__probe=probe)
        net.interrupted_ = False  # not left over from an earlier (warm) fit

        if self.pretrain_epochs:
            net.set_params(
                phase="softmax",
                lr=self.lr,
                callbacks__lr_schedule__T_max=self.pretrain_epochs,
            )
            _set_progress_total(net, self.pretrain_epochs)
            _set_iterator(
                net, batch_sampler=None, batch_size=self.batch_size, shuffle=True
            )
            net.initialize_optimizer()
            net.partial_fit(train_set, None, epochs=self.pretrain_epochs)
        if getattr(net, "interrupted_", False):
            warnings.warn(
                f"Training was interrupted at epoch {len(net.history)} of the "
                "softmax phase; the triplet phase is skipped and the centroids "
                "are computed from the weights reached so far.",
                UserWarning,
                stacklevel=3,
            )
        elif self.triplet_epochs:
            n_classes = len(self.classes_)
            P = min(self.n_classes_per_batch or n_classes, n_classes)
            sampler = ClassBalancedBatchSampler(
                y[train],
                n_classes_per_batch=P,
                n_samples_per_class=self.n_samples_per_class,
                random_state=seed,
            )
            net.set_params(
                phase="triplet",
                lr=self.lr / 3 if self.triplet_lr is None else self.triplet_lr,
                callbacks__lr_schedule__T_max=self.triplet_epochs,
            )
            _set_progress_total(net, self.triplet_epochs)
            _set_iterator(net, batch_sampler=sampler, batch_size=1, shuffle=False)
            net.iterator_valid__batch_size = max(self.batch_size, 128)
            net.initialize_optimizer()
            net.partial_fit(train_set, None, epochs=self.triplet_epochs)
        # Keep the fitted net light: no data or samplers stay referenced.
        net.set_params(train_split=None, callbacks__collapse__probe=None)
        _set_iterator(net, batch_sampler=None, batch_size=self.batch_size, shuffle=True)
        self.net_ = net

    def _fit_centroids(self, X, lengths, y):
        """Set the centroids and their angles; return the clips' embeddings."""
        emb = self._embed(X, lengths)
        self.collapse_score_ = float(embedding_collapse_score(torch.from_numpy(emb)))
        centroids = np.stack(
            [emb[y == k].mean(axis=0) for k in range(len(self.classes_))]
        )
        self.centroids_ = _l2_normalize(centroids)
        cos = np.clip(self.centroids_ @ self.centroids_.T, -1.0, 1.0)
        self.angles_ = np.degrees(np.arccos(cos))
        np.fill_diagonal(self.angles_, 0.0)
        return emb

    def _fit_proba_scale(self, emb, y):
        """Temperature scaling: the inverse temperature minimising the log loss."""
        from scipy.optimize import minimize_scalar
        from scipy.special import log_softmax

        sim = emb @ self.centroids_.T

        def nll(log_scale):
            logp = log_softmax(np.exp(log_scale) * sim, axis=1)
            return -logp[np.arange(len(y)), y].mean()

        res = minimize_scalar(
            nll, bounds=(np.log(0.1), np.log(200.0)), method="bounded"
        )
        self.proba_scale_ = float(np.exp(res.x))

    # ------------------------------------------------------------ inference

    def _embed_with(self, module, X, lengths, device, normalize=True):
        """Embeddings of standardised clips, batched by similar lengths."""
        was_training = module.training
        module.eval()
        order = np.argsort(lengths, kind="stable")
        out = torch.empty((len(X), self.embedding_dim), dtype=torch.float32)
        step = max(self.batch_size, 64)
        with torch.inference_mode():
            for start in range(0, len(order), step):
                idx = order[start : start + step]
                width = int(lengths[idx].max())
                x = torch.from_numpy(X[idx, :, :width]).to(device)
                n = torch.from_numpy(lengths[idx]).to(device)
                out[torch.from_numpy(idx)] = module.embed(x, n).float().cpu()
        module.train(was_training)
        if normalize:
            out = torch.nn.functional.normalize(out, dim=1)
        return out

    def _embed(self, X, lengths):
        module = self.net_.module_
        # Inference leaves the module in eval mode (training sets train mode at
        # every epoch): toggling it back would race with predict in other threads.
        module.eval()
        device = next(module.parameters()).device
        return self._embed_with(module, X, lengths, device).numpy()

    def _checked_embeddings(self, X):
        check_is_fitted(self)
        X, lengths = check_spectrograms(X, n_mels=self.n_features_in_)
        emb = self._embed(self._standardize(X, lengths), lengths)
        bad = ~np.isfinite(emb).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"Clip {i} of X gives a non-finite embedding: its values (up to "
                f"{np.abs(X[i, :, : lengths[i]]).max():.3g}) are far outside the "
                "range of the training spectrograms. Check the input scale: use "
                "the same LogMelTransformer (log-mel in dB) as at fit time."
            )
        return emb

    def transform(self, X):
        """L2-normalised emotion embeddings of the clips.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_mels, n_frames)
            NaN-padded log-mel spectrograms.

        Returns
        -------
        embeddings : ndarray of shape (n_clips, embedding_dim)
            Unit-norm embeddings, whole clips.
        """
        return self._checked_embeddings(X)

    def decision_function(self, X):
        """Cosine similarity of each clip's embedding to each emotion centroid.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_mels, n_frames)
            NaN-padded log-mel spectrograms.

        Returns
        -------
        scores : ndarray of shape (n_clips, n_classes) or (n_clips,)
            Cosine similarities, in ``[-1, 1]``; with two classes, the similarity
            to ``classes_[1]`` minus that to ``classes_[0]``.
        """
        sim = self._checked_embeddings(X) @ self.centroids_.T
        return sim[:, 1] - sim[:, 0] if len(self.classes_) == 2 else sim

    def predict_proba(self, X):
        """Calibrated class probabilities: a softmax over scaled similarities.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_mels, n_frames)
            NaN-padded log-mel spectrograms.

        Returns
        -------
        proba : ndarray of shape (n_clips, n_classes)
            ``softmax(proba_scale_ * cos_similarities)``; rows sum to 1.
        """
        from scipy.special import softmax

        sim = self._checked_embeddings(X) @ self.centroids_.T
        return softmax(self.proba_scale_ * sim, axis=1)

    def predict(self, X):
        """The emotion whose centroid makes the smallest angle with each clip.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_mels, n_frames)
            NaN-padded log-mel spectrograms.

        Returns
        -------
        y_pred : ndarray of shape (n_clips,)
            Labels from ``classes_``.
        """
        sim = self._checked_embeddings(X) @ self.centroids_.T
        return self.classes_[np.argmax(sim, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # 3-D NaN-padded spectrograms; a 2-D array is read as one-frame clips.
        tags.input_tags.three_d_array = True
        # NaN marks padding after a clip's last frame only; missing values (NaN
        # inside a clip) are rejected, so the estimator does not "allow NaN".
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float32"]  # embeddings
        tags.non_deterministic = self.random_state is None
        return tags


def _l2_normalize(a):
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def _set_iterator(net, **params):
    """Set training-iterator parameters of an initialised skorch net.

    skorch's ``set_params`` refuses ``iterator_train__*`` once the net is
    initialised; these are plain attributes read at each ``fit_loop``.
    """
    for key, value in params.items():
        setattr(net, f"iterator_train__{key}", value)


def _set_progress_total(net, total):
    for name, callback in net.callbacks_:
        if name == "progress":
            callback.total = total


def _noop(*args, **kwargs):
    pass
