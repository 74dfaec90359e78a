"""EmotionEmbeddingClassifier: triplet-loss emotion embeddings, cosine centroids."""

import copy
import numbers
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ._device import resolve_device, torch_threads
from ._losses import (
    MINERS,
    class_centroids,
    embedding_collapse_score,
    get_miner,
    group_centered,
)
from ._networks import ARCHITECTURES, MAX_LAYERS, MIN_LAYERS, POOLINGS, STEMS
from ._training import (
    NETWORK_PARAMS,
    NOISE_SPECTRA,
    PRECISIONS,
    SpectrogramDataset,
    group_standardization,
    make_net,
    member_nets,
    optimizer_settings,
    serves_scales,
    speech_regions,
    standardization,
    training_params,
)
from ._validation import check_spectrograms
from ._warnings import user_stacklevel
from .exceptions import MissingGroupsWarning, TrainingDivergedError

__all__ = ["EmotionEmbeddingClassifier"]

# Options added after models were saved and benchmark fits cached, each with
# the value at which training is what it was before the option existed (off,
# rooms for every crop as before reverberation_fraction, AdamW as before
# softmax_optimizer): a model file without one was trained so and loads so,
# and a benchmark's cache key leaves one out at that value.
PARAMS_BEFORE_ADDED = {
    "reverberation": 0.0,
    "reverberation_fraction": 1.0,
    "noise_snr": None,
    "noise_spectrum": "speech",
    "noise_fraction": 1.0,
    "zero_init_residual": False,
    "softmax_optimizer": "adamw",
}


def needs_speakers(clf):
    """The first setting of ``clf`` that needs the speakers in training, as
    ``(setting, how to turn it off)``, or None; ``fit`` and the command line
    ask it."""
    if clf.speaker_adversarial:
        return (
            f"speaker_adversarial={clf.speaker_adversarial}",
            "speaker_adversarial=0",
        )
    return reads_speakers(clf)


def reads_speakers(clf):
    """The first setting of ``clf`` that reads the speakers at prediction
    too, as ``(setting, how to turn it off)``, or None: the clips of each
    speaker are then normalised together, and ``predict`` without ``groups``
    takes the clips passed together as one speaker."""
    if clf.standardize == "group":
        return "standardize='group'", "standardize='global'"
    if clf.center_embeddings == "group":
        return "center_embeddings='group'", "center_embeddings=None"
    return None


def _is_missing(value):
    """Whether ``value`` is a missing value: None, NaN, NaT or pandas' NA
    (whose comparisons are neither true nor false)."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:  # pd.NA
        return True


class EmotionEmbeddingClassifier(ClassifierMixin, TransformerMixin, BaseEstimator):
    """Speech emotion classifier on learned, triplet-trained emotion embeddings.

    The method of Kumar et al. (ICPR 2020): an embedding network (a ResNet by default)
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

    By default two such networks are trained from seeds of their own, at once
    in two threads where there are two cores (``n_networks=2``, ``n_jobs=-1``),
    and a clip's embedding joins theirs; ``n_networks=1`` is the paper's single
    network. What the second network buys, and costs, is measured in
    :doc:`/benchmarks`.

    Training clips are randomly cropped to ``crop_frames``, half of them heard in
    a random room (``reverberation``), and masked in time and frequency
    (SpecAugment); prediction reads each whole clip. Time pooling is
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
    width : int > 0, default=48
        Channels (or hidden units) of the first block; deeper blocks widen.
    stem : {"conv1d", "conv2d"}, default="conv1d"
        First layers of the ResNet and CNN: a 1-D convolution reading the mel
        bins as channels, or a 2-D convolution over (mel, time) followed by a
        1-D projection (two weight layers). Ignored by the other families.
    pooling : {"last", "blocks", "attentive"}, default="last"
        The statistics pooling over time: mean and standard deviation of the
        last layer's features; ``"blocks"``, those of every residual block of
        the ResNet and CNN, each pooled over its own valid frames and
        concatenated (every time scale of the network reaches the embedding);
        ``"attentive"``, a mean and standard deviation of the last layer's
        features weighted by learned attention over the frames (attentive
        statistics pooling).
    dilation : int >= 1, default=1
        Dilation of the ResNet and CNN convolutions of stride 1 after the
        stem: their taps are ``dilation`` frames apart, which widens the
        receptive field without adding weights (see
        :class:`sklearn_tser._networks.EmbeddingNetwork`). Ignored by the other
        families.
    deltas : {0, 1, 2}, default=0
        Time derivatives of the log-mel values that the network reads beside
        them: ``1``, the deltas (regression slope over 9 frames, as
        :func:`librosa.feature.delta`); ``2``, the deltas and the
        delta-deltas. They are computed in the network, after the training
        augmentation, so the input spectrograms stay ``(n_clips, n_mels,
        n_frames)``.
    squeeze_excitation : bool, default=False
        Whether every block of the ResNet and CNN gates its channels with
        squeeze-and-excitation (SE-ResNet, Hu et al., 2018): each channel
        scaled by a weight computed from the clip's mean of every channel over
        its valid frames, a clip-level context for the frame-level features (see
        :class:`sklearn_tser._networks.EmbeddingNetwork`). Ignored by the
        families other than the ResNet and CNN.
    zero_init_residual : bool, default=False
        Whether each residual block of the ResNet starts as its shortcut: the
        batch normalisation that ends the block's branch starts with zero
        scales (Goyal et al., 2017; torchvision's option of the same name), so
        the network starts shallow and grows the branches as it trains.
        Ignored by the other families.
    dropout : float in [0, 1), default=0.1
        Dropout before the embedding layer.
    n_networks : int >= 1, default=2
        Number of embedding networks, an ensemble: each is trained on the same
        clips from a seed of its own (its own initial weights, batches, crops,
        masks and dropout), ``n_jobs`` at a time, so a fit takes up to
        ``n_networks`` times as long as one network's when they run one after
        the other (less in threads, on spare cores), and a prediction
        ``n_networks`` times as long. ``1`` is the paper's single network. A
        clip's embedding joins theirs: each member's L2-normalised embedding,
        concatenated, divided by ``sqrt(n_networks)``, so that the cosine of
        two clips is the mean of the members' cosines, and the embeddings have
        ``n_networks * embedding_dim`` dimensions. What it buys is measured in
        :doc:`/benchmarks`.
    pretrain_epochs : int >= 0, default=360
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
    batch_size : int > 0, default=64
        Batch size of softmax pre-training. Inference (and the validation loss)
        runs in batches of up to 128 clips of similar length.
    softmax_optimizer : {"adamw", "sgd"}, default="sgd"
        Optimizer of the softmax phase: AdamW, or SGD with Nesterov momentum
        0.9. Each has its own rate and weight decay (``lr`` and
        ``weight_decay`` of None, below). The triplet phase uses AdamW.
    lr : float > 0 or None, default=None
        Peak learning rate of the softmax phase, annealed with a cosine
        schedule. None is the optimizer's own: ``4.243e-3`` for AdamW
        (``3e-3`` chosen for batches of 32, scaled with the square root of
        the batch size to 64) and ``0.05`` for SGD (residual networks' usual
        0.1 for batches of 128, scaled linearly to 64); scale it likewise
        with ``batch_size``.
    triplet_lr : float > 0 or None, default=1e-3
        Learning rate of the triplet phase, whose class-balanced batches do not
        depend on ``batch_size``; ``None`` means a third of the softmax
        phase's AdamW rate (of ``lr`` when ``softmax_optimizer="adamw"``, of
        ``4.243e-3`` after SGD).
    weight_decay : float >= 0 or None, default=None
        Weight decay of the softmax phase's optimizer (torch's
        ``weight_decay``: decoupled for AdamW, an L2 term of the gradient for
        SGD). None is the optimizer's own: ``1e-4`` for AdamW, ``5e-4`` for
        SGD.
    triplet_weight_decay : float >= 0 or None, default=None
        AdamW weight decay of the triplet phase; ``None`` means the softmax
        phase's when that phase is AdamW too, and AdamW's ``1e-4`` after SGD
        (whose L2 decay is on another scale).
    crop_frames : int > 0 or None, default=200
        Length of the random training crops in frames (2 s at the default 10 ms
        hop); ``None`` trains on whole clips.
    freq_masks, time_masks : int >= 0, default=2
        Number of frequency and time masks per training crop.
    freq_mask_width : int >= 0, default=8
        Largest frequency mask, in mel bands.
    time_mask_width : int >= 0, default=20
        Largest time mask, in frames.
    softmax_loss : {"cross_entropy", "aam"}, default="cross_entropy"
        Loss of the softmax phase (and of the ``ce_weight`` term):
        cross-entropy on the softmax head's logits, or additive angular margin
        softmax (ArcFace) on the cosines between the L2-normalised embedding and
        the head's class rows, which trains the cosine geometry the centroids
        use.
    aam_margin : float >= 0, default=0.2
        Angular margin, in radians, of ``softmax_loss="aam"``.
    aam_scale : float > 0, default=30.0
        Scale of the cosines of ``softmax_loss="aam"``.
    label_smoothing : float in [0, 1), default=0.1
        Label smoothing of the cross-entropy (softmax phase, and the
        ``ce_weight`` term of the triplet phase); 0 is plain cross-entropy.
    mixup_alpha : float >= 0, default=0.4
        Mixup in the softmax phase: each batch is mixed with a shuffled copy of
        itself, ``lam * x + (1 - lam) * x'``, ``lam ~ Beta(alpha, alpha)``, and
        so are the losses of both labels. Below 1 the draws of ``lam`` stay
        near 0 or 1 (most batches barely mixed); 1 draws it uniformly from
        [0, 1]; above 1 they gather around 0.5. 0 turns it off.
    tempo_perturbation : float in [0, 0.5], default=0.0
        Tempo perturbation of training clips: each is stretched in time by a
        random rate in ``[1 - t, 1 + t]`` (0.1: up to 10% faster or slower
        speech), by linear interpolation between frames, before its crop. The
        pitch is kept. 0 turns it off.
    frequency_warping : float in [0, 0.5], default=0.05
        Frequency warping of training clips, a spectrogram form of vocal tract
        length perturbation (Jaitly & Hinton, 2013): the mel bands of each
        crop are resampled by a random rate in ``[1 - w, 1 + w]`` (0.05: band
        ``b`` reads band ``0.95 b`` to ``1.05 b``), which moves formants and
        pitch as other speakers' voices would, so that the network learns
        emotion rather than the training speakers' voices. 0 turns it off;
        :doc:`/benchmarks` reports what it does with unseen and with known
        speakers.
    freq_mixstyle : float in [0, 1], default=0.0
        Probability that a training batch goes through frequency MixStyle
        (Zhou et al., 2021, with statistics per mel band as Schmid et al.,
        2022, use it): each crop is standardised band by band over its valid
        frames and given the band means and standard deviations of a mixture
        of its own and those of a random clip of the batch (at times itself),
        ``lam * own + (1 - lam) * other``, ``lam ~ Beta(freq_mixstyle_alpha,
        freq_mixstyle_alpha)`` for each clip. The spectral envelope that a
        voice or a microphone gives every frame is changed, the emotion's
        course over time is kept, and the label too. Applied after the
        frequency warp and before the masks. With ``standardize="clip"`` the
        crops' statistics are already near 0 and 1, so it does little. 0
        turns it off.
    freq_mixstyle_alpha : float > 0, default=0.3
        The Beta distribution of ``freq_mixstyle``'s mixing weights: below 1,
        ``lam`` stays near 0 or 1 (a clip keeps mostly its own statistics or
        takes mostly its partner's); 1 draws it uniformly from [0, 1]; above
        1 it gathers around 0.5.
    filter_augment : float >= 0, default=0.0
        Random filters on the training crops, in both phases (a variant of
        the linear FilterAugment of Nam et al., 2022, with 6 points and no
        least spacing between them): each crop's mel bands are shifted by a
        gain that varies linearly along the mel axis between 6 points, the
        first and last band and 4 positions drawn uniformly between them,
        each point's gain drawn uniformly from
        ``[-filter_augment, filter_augment]``. The gains are in units
        of the standardised features, a band's standard deviation over the
        training clips (with ``standardize="global"``): divide a gain in dB
        by that deviation of the log-mel values (``feature_std_``). The
        spectral tilt and resonances that a microphone, a room or a voice
        give a recording vary, while the emotion's course over time is
        kept. Applied after ``freq_mixstyle`` and before the masks. 0 turns
        it off.
    reverberation : float >= 0, default=50.0
        Random reverberation on the training crops, in both phases: each
        crop is heard in a room whose reverberation time (the time its
        sound takes to decay by 60 dB) is drawn uniformly from
        ``(0, reverberation]`` frames (``reverberation * hop_length / sr``
        seconds, 0.01 s a frame with the default ``LogMelTransformer``), and
        whose direct-to-reverberant ratio is drawn uniformly from [0, 10]
        dB: every band's power gets an exponentially decaying sum of its
        power in that frame and the frames before (a diffuse room's late
        reverberation, in the mel power domain). Recordings of other corpora
        come from other rooms, while the emotion's course over time is kept.
        It reads the features as power in dB (``LogMelTransformer``'s with
        its default ``power=2``) to return to power: set 0 for features of
        another kind. Applied after the crop, before the frequency warp. 0
        turns it off.
    reverberation_fraction : float in (0, 1], default=0.5
        Fraction of each training batch's crops heard in a room with
        ``reverberation``, drawn at random (``round(fraction * n)`` of a
        batch of ``n``); the others stay as recorded, and their
        reverberation is not computed.
        Unused when ``reverberation`` is 0.
    noise_snr : float or None, default=None
        Random noise on the training crops, in both phases: each crop gets
        stationary noise whose spectrum is the crop's own long-term
        spectrum (speech-shaped noise), at a signal-to-noise ratio drawn
        uniformly from ``[noise_snr, noise_snr + 20]`` dB, added in the mel
        power domain (every band's power gets its mean power over the crop
        times ``10 ** (-snr / 10)``): the floor that a noisy recording
        raises under the quiet frames and between the harmonics. Recordings
        of other corpora come with other noise, while the emotion's course
        over time is kept. Like ``reverberation``, it reads the features as
        power in dB. Applied after the rooms, before the frequency warp.
        ``None`` turns it off. What it buys is measured in
        :doc:`/benchmarks`.
    noise_spectrum : {"speech", "tilted"}, default="speech"
        Spectrum of the noise of ``noise_snr``. ``"speech"``: the crop's own
        long-term spectrum, at the ratio in every band (above).
        ``"tilted"``: a spectrum that falls linearly in dB over the mel
        bands, by a tilt drawn for each crop from 0 dB (white noise, in
        ``LogMelTransformer``'s bands) to 40 dB (about brown noise) between
        the bottom band and the top one, at the ratio of the crop's mean
        power to the noise's over all bands, in the features' absolute
        units: the bands where speech is quiet may drown, as they do under
        a recording's hiss or hum. Unused when ``noise_snr`` is None.
    noise_fraction : float in (0, 1], default=1.0
        Fraction of each training batch's crops that get the noise of
        ``noise_snr``, drawn at random (``round(fraction * n)`` of a batch
        of ``n``); the others stay as recorded, as with
        ``reverberation_fraction``. Unused when ``noise_snr`` is None.
    copy_paste : float in [0, 1], default=0.0
        Probability that a training clip is followed by another clip of its
        batch with the same label, before the crop, in both phases
        (CopyPaste, Pappagari et al., 2021, who concatenate utterances of one
        emotion and keep the label): crops then also span two clips, often
        of two speakers, of one emotion. A clip whose label no other clip of
        the batch has stays as it is. With ``speaker_adversarial``, a pasted
        clip keeps its first speaker's label. 0 turns it off.
    speaker_adversarial : float >= 0, default=0.0
        Weight of a speaker-adversarial loss, which pushes the embeddings to
        carry less of who is speaking: a linear speaker classifier reads the
        embeddings through a gradient reversal layer during training, in both
        phases (Ganin & Lempitsky, 2015). It needs the speakers:
        ``fit(X, y, groups=speakers)``. 0 turns it off; :doc:`/benchmarks`
        reports what it does on unseen speakers.
    ema_epochs : float >= 1 or 0, default=0.0
        Exponential moving average of the network's weights (Polyak
        averaging), with a time constant of this many epochs: after the
        ``t``-th training epoch of a phase, the average moves
        ``max(1 / ema_epochs, 1 / t)`` of the way to the current weights (so
        it starts as the mean of the phase's first epochs). Each phase ends
        with its average; with ``validation_fraction > 0``, early stopping
        watches and keeps the averaged weights, so the history's
        ``valid_loss`` is that of the average and its ``train_loss`` that of
        the weights being trained. Batch-norm statistics are averaged too.
        It smooths out the noise of the last steps (of mixup, of small
        batches). 0 turns it off.
    trim_db : float > 0 or None, default=None
        Leading and trailing frames whose energy is more than ``trim_db`` dB
        below the clip's loudest frame are silence, and are left out, in
        training and in prediction (as :func:`librosa.effects.trim` does with
        waveforms). ``None`` reads whole clips.
    standardize : {"global", "clip", "group"}, default="global"
        ``"global"``: each mel band is standardised with the mean and standard
        deviation of the training set; ``"clip"``: with those of the clip itself
        (removes loudness and channel differences between recordings);
        ``"group"``: with those of the clip's group, a speaker's clips
        standardised together (speaker normalisation: removes the speaker's
        voice and recording from what the network reads, and keeps how each
        clip differs from the speaker's other clips). ``"group"`` needs the
        speakers in training, ``fit(X, y, groups=speakers)``, and at
        prediction takes them too (``predict(X, groups=speakers)``: the
        statistics of a new speaker come from the clips of that speaker passed
        together, no labels); without them, the clips passed together are
        standardised as one group, with a
        :class:`~sklearn_tser.exceptions.MissingGroupsWarning`.
    center_embeddings : {None, "group"}, default=None
        ``"group"``: speaker normalisation of the embeddings. Each speaker's
        mean embedding is taken from its clips' embeddings (which are then
        normalised again) before the centroids are computed and before every
        prediction, so that a clip is compared by how it differs from the
        same speaker's other clips. A speaker's mean is shrunk towards the
        mean training embedding as if the speaker had one more clip there
        (see :func:`sklearn_tser._losses.group_centered`). Like
        ``standardize="group"``, with which it combines, it needs the
        speakers in training and takes them at prediction (the clips of a
        new speaker passed together, no labels; without ``groups``, the clips
        passed together are centred as one group, with a
        :class:`~sklearn_tser.exceptions.MissingGroupsWarning`). A speaker's
        mean is only free of emotion when the speaker's clips cover the
        emotions about evenly: pass many clips of each speaker.
        :doc:`/benchmarks` reports what it does on unseen speakers. ``None``
        compares the embeddings as they are, as the paper does.
    validation_fraction : float in [0, 0.5), default=0.0
        Fraction of the training clips held out to stop each phase early (keeping
        its best weights) and to calibrate ``predict_proba``; when ``groups`` are
        given to ``fit``, whole groups (speakers) are held out (with few
        groups, more than asked: a warning says so past 1.5 times the
        fraction), and the training part keeps every class. The
        default, 0, trains on every clip for the whole schedule, which is more
        accurate (see :doc:`/benchmarks`);
        ``predict_proba`` is then calibrated on cropped and masked views of the
        training clips (see Notes).
    patience : int > 0, default=30
        With ``validation_fraction > 0``: epochs without improvement of the
        validation loss before a phase stops; the best weights of the phase are
        restored.
    n_threads : int >= 1 or None, default=1
        torch intra-op threads of ``fit`` and of prediction, restored after
        each call; ``None`` leaves torch's setting (all cores by default).
        One thread is the default because these small networks gain a little
        from more on an idle machine and lose much more when another process
        needs the cores (measured in :doc:`/benchmarks`, "Threads"). For
        parallel work, fit several models at once instead (``n_jobs`` of
        ``cross_val_score`` or ``GridSearchCV``), or an ensemble's networks
        (``n_jobs``).
    n_jobs : int or None, default=-1
        With ``n_networks > 1``, networks trained at the same time, each in a
        thread of its own with ``n_threads`` torch threads; no effect on a
        single network. ``-1`` means all processors (as in joblib), so by
        default the two networks train at once where there are two cores;
        ``None`` means 1 (unless in a :func:`joblib.parallel_config`
        context); at most ``n_networks`` run at once. Inside
        ``cross_val_score(n_jobs=k)`` or ``GridSearchCV(n_jobs=k)``, whose
        workers already take the cores, set ``n_jobs=1`` to keep to one
        thread per fit (``None`` follows a joblib context there). On the CPU
        the networks are the same as those trained one after the other (their
        random draws come from generators of their own). Ctrl-C stops every
        network at its next batch. With ``n_threads=None`` each thread uses
        all cores, and with ``verbose`` their progress lines interleave.
    device : str, default="auto"
        ``"auto"`` trains on CUDA when available, on the CPU otherwise; or
        ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    precision : {"auto", "float32", "bfloat16"}, default="auto"
        Arithmetic of the training steps' forward pass: ``"bfloat16"`` runs
        it under :func:`torch.autocast` in bfloat16 (mixed precision; the
        weights and the optimizer stay in float32), ``"float32"`` in full
        precision, ``"auto"`` in bfloat16 on a CUDA GPU that computes it
        natively (compute capability 8.0 or later) and in float32 otherwise.
        On the CPU, bfloat16 can only be faster where it has bfloat16 units
        (AMX or AVX512-BF16); what it changes in speed and accuracy is measured
        in :doc:`/benchmarks`. Prediction always computes in float32.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, dropout, batches, crops, masks and the
        validation split, each fit with generators of its own (not torch's
        global one). With an integer, two fits on the CPU with the same number
        of torch threads give identical models, also when they run at the same
        time in threads. Another number of threads (a joblib worker process
        runs with one) changes the rounding of sums, and so the model slightly.
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
    centroids_ : ndarray of shape (n_classes, n_networks * embedding_dim)
        L2-normalised mean training embedding of each class.
    angles_ : ndarray of shape (n_classes, n_classes)
        Angles in degrees between the class centroids.
    proba_scale_ : float
        Inverse temperature of ``predict_proba`` (see Notes).
    net_ : EmbeddingNet or EmbeddingEnsemble
        The fitted skorch net; ``net_.module_`` is the embedding network and
        ``net_.history`` the per-epoch log of both phases. With
        ``n_networks > 1``, an ensemble of such nets (``net_.nets``), whose
        ``module_`` lists the members' and whose history holds the members'
        epochs one after the other (each row's ``"network"`` says whose).
    feature_mean_, feature_std_ : ndarray of shape (n_mels,)
        Standardisation of the input (``standardize="global"``).
    embedding_mean_ : ndarray of shape (n_networks * embedding_dim,)
        Mean embedding of the training clips, towards which every speaker's
        mean is shrunk (``center_embeddings="group"``).
    collapse_score_ : float
        Mean pairwise cosine similarity of the training embeddings (near 1 means
        the embeddings collapsed to one point).
    interrupted_ : bool
        Whether the last fit was cut short by ``KeyboardInterrupt`` (see
        :meth:`fit`).
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
    minimising the log loss (temperature scaling) of the validation clips, or,
    with ``validation_fraction=0``, of the training clips as training sees them:
    one random crop of ``crop_frames`` with random rooms and masks each. The
    network fits whole training clips almost perfectly, so a temperature fitted
    on them makes the probabilities far too confident on new clips; the
    cropped, masked views are harder, and the temperature fitted on them is
    close to the one new clips would give. :doc:`/benchmarks` reports the
    expected calibration error on the test folds.

    With ``standardize="group"`` or ``center_embeddings="group"``, what a clip
    gives depends on the other clips of its speaker in the same call: their
    statistics normalise it, so
    ``predict(X[:1], groups=g[:1])`` may differ from ``predict(X, groups=g)[:1]``,
    a speaker with one clip is standardised as with ``"clip"`` (and centred
    along its difference to the mean training embedding), and statistics of a
    few clips are noisier than those of training, where each speaker has many.
    Pass a new speaker's clips together. ``score`` takes ``groups`` too;
    scikit-learn's scorers (``cross_val_score``, ``GridSearchCV``) call
    ``predict(X)`` without them, so each test fold is then normalised as one
    group, with a warning. In a :class:`~sklearn.pipeline.Pipeline`,
    ``predict`` and ``predict_proba`` pass ``groups=`` on to the classifier;
    ``transform`` and ``decision_function`` do so only with scikit-learn's
    metadata routing (else call ``pipe[-1].transform(pipe[:-1].transform(X),
    groups=g)``).

    Gradients are clipped to a norm of 10. A loss that stops being finite raises
    :class:`~sklearn_tser.exceptions.TrainingDivergedError`.

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
        "pooling": [StrOptions(set(POOLINGS))],
        "dilation": [Interval(numbers.Integral, 1, None, closed="left")],
        "deltas": [Interval(numbers.Integral, 0, 2, closed="both")],
        "squeeze_excitation": ["boolean"],
        "zero_init_residual": ["boolean"],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "n_networks": [Interval(numbers.Integral, 1, None, closed="left")],
        "pretrain_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "triplet_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "margin": [Interval(numbers.Real, 0, None, closed="neither")],
        "mining": [StrOptions(set(MINERS))],
        "ce_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "n_classes_per_batch": [
            Interval(numbers.Integral, 2, None, closed="left"),
            None,
        ],
        "n_samples_per_class": [Interval(numbers.Integral, 2, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "softmax_optimizer": [StrOptions({"adamw", "sgd"})],
        "lr": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "triplet_lr": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left"), None],
        "triplet_weight_decay": [Interval(numbers.Real, 0, None, closed="left"), None],
        "crop_frames": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "freq_masks": [Interval(numbers.Integral, 0, None, closed="left")],
        "freq_mask_width": [Interval(numbers.Integral, 0, None, closed="left")],
        "time_masks": [Interval(numbers.Integral, 0, None, closed="left")],
        "time_mask_width": [Interval(numbers.Integral, 0, None, closed="left")],
        "softmax_loss": [StrOptions({"cross_entropy", "aam"})],
        "aam_margin": [Interval(numbers.Real, 0, None, closed="left")],
        "aam_scale": [Interval(numbers.Real, 0, None, closed="neither")],
        "label_smoothing": [Interval(numbers.Real, 0, 1, closed="left")],
        "mixup_alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "tempo_perturbation": [Interval(numbers.Real, 0, 0.5, closed="both")],
        "frequency_warping": [Interval(numbers.Real, 0, 0.5, closed="both")],
        "freq_mixstyle": [Interval(numbers.Real, 0, 1, closed="both")],
        "freq_mixstyle_alpha": [Interval(numbers.Real, 0, None, closed="neither")],
        "filter_augment": [Interval(numbers.Real, 0, None, closed="left")],
        "reverberation": [Interval(numbers.Real, 0, None, closed="left")],
        "reverberation_fraction": [Interval(numbers.Real, 0, 1, closed="right")],
        "noise_snr": [Interval(numbers.Real, None, None, closed="neither"), None],
        "noise_spectrum": [StrOptions(set(NOISE_SPECTRA))],
        "noise_fraction": [Interval(numbers.Real, 0, 1, closed="right")],
        "copy_paste": [Interval(numbers.Real, 0, 1, closed="both")],
        "speaker_adversarial": [Interval(numbers.Real, 0, None, closed="left")],
        "ema_epochs": [
            Interval(numbers.Real, 1, None, closed="left"),
            Options(numbers.Real, {0}),
        ],
        "trim_db": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "standardize": [StrOptions({"global", "clip", "group"})],
        "center_embeddings": [StrOptions({"group"}), None],
        "validation_fraction": [Interval(numbers.Real, 0, 0.5, closed="left")],
        "patience": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_threads": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "n_jobs": [
            Interval(numbers.Integral, 1, None, closed="left"),
            Interval(numbers.Integral, None, -1, closed="right"),
            None,
        ],
        "device": [str],
        "precision": [StrOptions(set(PRECISIONS))],
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
        width=48,
        stem="conv1d",
        pooling="last",
        dilation=1,
        deltas=0,
        squeeze_excitation=False,
        zero_init_residual=False,
        dropout=0.1,
        n_networks=2,
        pretrain_epochs=360,
        triplet_epochs=30,
        margin=0.2,
        mining="semi_hard",
        ce_weight=0.0,
        n_classes_per_batch=None,
        n_samples_per_class=8,
        batch_size=64,
        softmax_optimizer="sgd",
        lr=None,
        triplet_lr=1e-3,
        weight_decay=None,
        triplet_weight_decay=None,
        crop_frames=200,
        freq_masks=2,
        freq_mask_width=8,
        time_masks=2,
        time_mask_width=20,
        softmax_loss="cross_entropy",
        aam_margin=0.2,
        aam_scale=30.0,
        label_smoothing=0.1,
        mixup_alpha=0.4,
        tempo_perturbation=0.0,
        frequency_warping=0.05,
        freq_mixstyle=0.0,
        freq_mixstyle_alpha=0.3,
        filter_augment=0.0,
        reverberation=50.0,
        reverberation_fraction=0.5,
        noise_snr=None,
        noise_spectrum="speech",
        noise_fraction=1.0,
        copy_paste=0.0,
        speaker_adversarial=0.0,
        ema_epochs=0.0,
        trim_db=None,
        standardize="global",
        center_embeddings=None,
        validation_fraction=0.0,
        patience=30,
        n_threads=1,
        n_jobs=-1,
        device="auto",
        precision="auto",
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.architecture = architecture
        self.n_layers = n_layers
        self.embedding_dim = embedding_dim
        self.width = width
        self.stem = stem
        self.pooling = pooling
        self.dilation = dilation
        self.deltas = deltas
        self.squeeze_excitation = squeeze_excitation
        self.zero_init_residual = zero_init_residual
        self.dropout = dropout
        self.n_networks = n_networks
        self.pretrain_epochs = pretrain_epochs
        self.triplet_epochs = triplet_epochs
        self.margin = margin
        self.mining = mining
        self.ce_weight = ce_weight
        self.n_classes_per_batch = n_classes_per_batch
        self.n_samples_per_class = n_samples_per_class
        self.batch_size = batch_size
        self.softmax_optimizer = softmax_optimizer
        self.lr = lr
        self.triplet_lr = triplet_lr
        self.weight_decay = weight_decay
        self.triplet_weight_decay = triplet_weight_decay
        self.crop_frames = crop_frames
        self.freq_masks = freq_masks
        self.freq_mask_width = freq_mask_width
        self.time_masks = time_masks
        self.time_mask_width = time_mask_width
        self.softmax_loss = softmax_loss
        self.aam_margin = aam_margin
        self.aam_scale = aam_scale
        self.label_smoothing = label_smoothing
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
        self.speaker_adversarial = speaker_adversarial
        self.ema_epochs = ema_epochs
        self.trim_db = trim_db
        self.standardize = standardize
        self.center_embeddings = center_embeddings
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.n_threads = n_threads
        self.n_jobs = n_jobs
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------------ fit

    def fit(self, X, y, groups=None):
        """Train the embedding network, then compute the emotion centroids.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_mels, n_frames), sequence of arrays \
of shape (n_mels, n_frames_i), or SpectrogramStore
            Log-mel spectrograms: NaN-padded after each clip's last frame (the
            output of :class:`LogMelTransformer`), ragged (its
            ``output="ragged"``), or on disk (its ``transform_to_store``); read
            a batch at a time, never copied whole. A 2-D array
            ``(n_clips, n_features)`` is read as clips of one frame.
        y : array-like of shape (n_clips,)
            Emotion labels of any type (e.g. strings such as ``"angry"``).
        groups : array-like of shape (n_clips,), default=None
            Speaker (or session) of each clip. With ``validation_fraction > 0``,
            the validation split keeps groups apart, so early stopping measures
            speaker-independent performance; with ``speaker_adversarial > 0``,
            they are the speakers to unlearn (required); with
            ``standardize="group"``, each speaker's clips are standardised with
            the statistics of that speaker's training clips (required); with
            ``center_embeddings="group"``, each speaker's mean embedding is
            taken from its clips' embeddings (required). In a Pipeline pass
            ``clf__groups=groups``.

        Returns
        -------
        self : EmotionEmbeddingClassifier

        Raises
        ------
        TrainingDivergedError
            If the loss stops being finite; lower ``lr`` or check the input scale.
        KeyboardInterrupt
            If training is interrupted (Ctrl-C) during an epoch; see Notes.

        Notes
        -----
        A fit that fails leaves the estimator as it was before (unfitted, or the
        previous model with ``warm_start=True``). A ``KeyboardInterrupt``
        (Ctrl-C) during an epoch skips the remaining epochs and phases; the
        centroids are computed from the weights reached so far (their average,
        with ``ema_epochs``), so the estimator is usable (``interrupted_`` is
        True), and the ``KeyboardInterrupt`` is raised again, so that a script,
        a ``GridSearchCV`` or a cross-validation loop stops instead of scoring
        a half-trained model.
        """
        previous = dict(self.__dict__)
        if self.warm_start and hasattr(self, "net_"):
            previous["net_"] = copy.deepcopy(self.net_)  # trained in place
        try:
            self._validate_params()  # here: n_threads is used before _fit
            with torch_threads(self.n_threads):
                self._fit(X, y, groups)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(previous)
            raise
        if self.interrupted_:
            raise KeyboardInterrupt(
                f"Training was interrupted at {self.net_.interrupted_at}; the "
                "classifier is fitted with the weights reached so far "
                "(interrupted_=True)."
            )
        return self

    def _fit(self, X, y, groups):
        get_miner(self.mining, self.margin)  # validates the pair
        X = check_spectrograms(X)
        y = self._check_targets(y, len(X))
        groups = self._check_groups(groups, len(X))
        if groups is None and (needs := needs_speakers(self)):
            setting, off = needs
            raise ValueError(
                f"{setting} needs the speaker of every clip: pass fit(X, y, "
                "groups=speakers) (in a Pipeline, clf__groups=speakers), or set "
                f"{off}."
            )
        regions = speech_regions(X, self.trim_db)
        device = resolve_device(self.device)
        seed = int(
            check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        )
        self.n_features_in_ = X.n_mels
        train, valid = self._split(y, groups, seed)
        if self.standardize == "global":
            self.feature_mean_, self.feature_std_ = standardization(X, *regions, train)
        else:  # a refit with another setting leaves no statistics of the last
            for name in ("feature_mean_", "feature_std_"):
                self.__dict__.pop(name, None)
        speakers = None
        if self.speaker_adversarial:  # encoded 0 .. n_speakers - 1 in training
            speakers = np.full(len(X), -1)
            speakers[train] = np.unique(groups[train], return_inverse=True)[1]
        # With standardize="group", each speaker's statistics come from its own
        # clips: the validation speakers' from theirs, as a new speaker's at
        # prediction.
        train_set = self._dataset(
            X,
            regions,
            y,
            train,
            speakers=speakers,
            groups=groups,
            scales=serves_scales(self),
        )
        valid_set = (
            self._dataset(X, regions, y, valid, groups=groups) if len(valid) else None
        )

        # Every random draw of the model (weights, dropout, batches, crops,
        # masks) comes from generators seeded here, never from torch's global
        # one, so that fits in threads do not disturb each other. torch's data
        # loader and the layers' default initialisation still draw from the
        # global one: restored, so a fit leaves the caller's state as it was.
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            if self.warm_start and hasattr(self, "net_"):
                self._check_same_network(n_mels=X.n_mels)
                net = self.net_.set_params(
                    **training_params(
                        self.get_params(), device=device, random_state=seed
                    )
                )
            else:
                net = make_net(
                    self.get_params(),
                    n_mels=X.n_mels,
                    n_classes=len(self.classes_),
                    device=device,
                    random_state=seed,
                )
            try:
                # An ensemble trains its networks n_jobs at a time.
                jobs = {"n_jobs": self.n_jobs} if self.n_networks > 1 else {}
                net.fit_phases(train_set, valid_set, **jobs)
            except RuntimeError as exc:
                if isinstance(exc, TrainingDivergedError) or "overflow" not in str(exc):
                    raise
                rates = optimizer_settings(self.get_params())
                raise TrainingDivergedError(
                    f"Training overflowed ({exc}). Lower the learning rate "
                    f"(lr={rates['lr']:g}, triplet_lr={rates['triplet_lr']:g}) or "
                    f"the weight decay (weight_decay={rates['weight_decay']:g}), "
                    "or check the input scale."
                ) from exc
        self.net_ = net
        self.interrupted_ = net.interrupted_
        emb = net.embed(train_set)
        if self.center_embeddings == "group":
            self.embedding_mean_ = emb.mean(axis=0)
        else:  # a refit with another setting leaves no mean of the last
            self.__dict__.pop("embedding_mean_", None)

        def centered(emb, part):  # each speaker's clips together, when asked
            return emb if groups is None else self._centered(emb, groups[part])

        self._fit_centroids(centered(emb, train), y[train])
        if len(valid):  # calibrate on held-out clips when there are some
            emb, part = net.embed(valid_set), valid
        else:  # else on training clips as training saw them: cropped, masked
            emb, part = net.embed(train_set, augmented=True), train
        self._fit_proba_scale(centered(emb, part), y[part])
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

    def _check_same_network(self, n_mels):
        """A warm start trains the network it has: its shape cannot change."""
        built = self.net_.get_params()
        wanted = {k: getattr(self, k) for k in NETWORK_PARAMS} | {"n_mels": n_mels}
        changed = {
            k: (built[f"module__{k}"], v)
            for k, v in wanted.items()
            if built[f"module__{k}"] != v
        }
        n_built = len(member_nets(self.net_))
        if n_built != self.n_networks:
            changed["n_networks"] = (n_built, self.n_networks)
        if changed:
            diff = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
            raise ValueError(
                f"warm_start=True continues training the fitted network, whose "
                f"shape these changes would alter ({diff}). Set them back, or set "
                "warm_start=False to train a new network."
            )

    @staticmethod
    def _check_groups(groups, n_clips):
        if groups is None:
            return None
        groups = np.asarray(groups)
        if groups.shape != (n_clips,):
            raise ValueError(
                f"groups has shape {groups.shape}; expected one group per clip, "
                f"shape ({n_clips},)."
            )
        if groups.dtype.kind in "fcmMO":  # where a missing value can hide
            missing = [i for i, g in enumerate(groups) if _is_missing(g)]
            if missing:
                raise ValueError(
                    f"groups[{missing[0]}] is {groups[missing[0]]} ({len(missing)} "
                    "clips have no group): every clip needs its group (speaker). "
                    "Fill them in, or leave those clips out."
                )
            try:
                np.unique(groups)
            except TypeError:
                kinds = sorted({type(g).__name__ for g in groups})
                raise TypeError(
                    f"groups mixes values of types {kinds}, which cannot be "
                    "sorted together; give one type, e.g. groups.astype(str)."
                ) from None
        return groups

    def _split(self, y, groups, seed):
        """Indices of the training and validation clips.

        The validation part holds about ``validation_fraction`` of the clips,
        whole groups when ``groups`` is given; the training part keeps every
        class, or this raises. When no split can be made, validation is turned
        off, with a warning.
        """
        all_idx = np.arange(len(y))
        if self.validation_fraction == 0:
            return all_idx, all_idx[:0]
        counts = np.bincount(y, minlength=len(self.classes_))
        n_splits = max(2, round(1 / self.validation_fraction))
        reason = None
        if groups is not None:
            n_groups = len(np.unique(groups))
            if n_groups < 2:
                reason = "groups holds a single group, so no group can be held out"
            else:
                splitter = StratifiedGroupKFold(
                    min(n_splits, n_groups), shuffle=True, random_state=seed
                )
        elif counts.min() < 2:
            label = self.classes_[[np.argmin(counts)]].tolist()[0]
            reason = f"class {label!r} has a single clip"
        elif np.ceil(self.validation_fraction * len(y)) < len(counts):
            reason = f"{len(y)} clips are too few to hold out one per class"
        else:
            splitter = StratifiedShuffleSplit(
                n_splits=1, test_size=self.validation_fraction, random_state=seed
            )
        if reason is not None:
            warnings.warn(
                f"validation_fraction={self.validation_fraction} is ignored: "
                f"{reason}. Training uses every clip, without early stopping, and "
                "predict_proba is calibrated on the training clips.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
            return all_idx, all_idx[:0]
        train, valid = (
            np.sort(part) for part in next(splitter.split(all_idx, y, groups))
        )
        missing = np.flatnonzero(np.bincount(y[train], minlength=len(counts)) == 0)
        if len(missing):
            label = self.classes_[missing[:1]].tolist()[0]
            raise ValueError(
                f"validation_fraction={self.validation_fraction} holds out whole "
                f"groups (speakers), and every clip of class {label!r} belongs to "
                f"the held-out groups {np.unique(groups[valid]).tolist()}, so the "
                "training part has none. Give that class clips from more groups, "
                "fit without groups, or set validation_fraction=0."
            )
        if groups is not None and len(valid) > 1.5 * self.validation_fraction * len(y):
            warnings.warn(
                f"validation_fraction={self.validation_fraction} holds out whole "
                f"groups (speakers): of these {n_groups}, "
                f"{np.unique(groups[valid]).size}, with {len(valid)} of the "
                f"{len(y)} clips ({len(valid) / len(y):.0%}), well over the "
                "fraction asked. Give clips of more groups, fit without groups, "
                "or set validation_fraction=0.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        return train, valid

    def _dataset(
        self,
        X,
        regions,
        y=None,
        indices=None,
        *,
        speakers=None,
        groups=None,
        scales=False,
    ):
        """The clips as a :class:`SpectrogramDataset`, standardised as fitted.

        With ``standardize="group"``, the clips ``indices`` of each group are
        standardised with statistics of their own; ``groups=None`` makes those
        clips one group. With ``scales``, batches hold what each clip was
        divided by (for ``reverberation``).
        """
        if self.standardize == "global":
            scale = {"mean": self.feature_mean_, "std": self.feature_std_}
        elif self.standardize == "group":
            indices = np.arange(len(X)) if indices is None else np.asarray(indices)
            groups = np.zeros(len(X), int) if groups is None else np.asarray(groups)
            mean, std, codes = group_standardization(X, *regions, groups, indices)
            scale = {"mean": mean, "std": std, "stat_rows": codes}
        else:
            scale = {}
        return SpectrogramDataset(
            X, *regions, y, indices=indices, speakers=speakers, scales=scales, **scale
        )

    def _fit_centroids(self, emb, y):
        """Set the centroids and their angles from the training embeddings."""
        self.collapse_score_ = embedding_collapse_score(emb)
        # Every class has a training clip: see _split.
        self.centroids_ = class_centroids(emb, y, len(self.classes_))
        cos = np.clip(self.centroids_ @ self.centroids_.T, -1.0, 1.0)
        self.angles_ = np.degrees(np.arccos(cos))
        np.fill_diagonal(self.angles_, 0.0)

    def _centered(self, emb, groups):
        """``emb`` with each group's mean taken away (``center_embeddings=
        "group"``; ``groups=None`` is one group), else as it is."""
        if self.center_embeddings != "group":
            return emb
        groups = np.zeros(len(emb), int) if groups is None else groups
        return group_centered(emb, groups, self.embedding_mean_)

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

    def _checked_embeddings(self, X, groups=None):
        check_is_fitted(self)
        X = check_spectrograms(X, n_mels=self.n_features_in_)
        groups = self._check_groups(groups, len(X))
        if groups is None and (reads := reads_speakers(self)):
            warnings.warn(
                f"{reads[0]} normalises each speaker's clips together, and no "
                f"groups were given: the {len(X)} clips of X are taken as one "
                "speaker. Pass the speaker of every clip, e.g. "
                "predict(X, groups=speakers).",
                MissingGroupsWarning,
                stacklevel=user_stacklevel(),
            )
        regions = speech_regions(X, self.trim_db)
        with torch_threads(self.n_threads):
            emb = self.net_.embed(self._dataset(X, regions, groups=groups))
        bad = ~np.isfinite(emb).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"Clip {i} of X gives a non-finite embedding: its values (up to "
                f"{np.abs(X[i]).max():.3g}) are far outside the "
                "range of the training spectrograms. Check the input scale: use "
                "the same LogMelTransformer (log-mel in dB) as at fit time."
            )
        return self._centered(emb, groups)

    def transform(self, X, groups=None):
        """L2-normalised emotion embeddings of the clips.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_mels, n_frames), sequence of arrays \
of shape (n_mels, n_frames_i), or SpectrogramStore
            Log-mel spectrograms, NaN-padded, ragged or on disk (as for
            :meth:`fit`).
        groups : array-like of shape (n_clips,) or None, default=None
            The speaker of every clip, read with ``standardize="group"`` or
            ``center_embeddings="group"`` only (each speaker's clips are
            normalised together, see Notes of the class); ``None`` takes the
            clips of ``X`` as one speaker, with a warning.

        Returns
        -------
        embeddings : ndarray of shape (n_clips, n_networks * embedding_dim)
            Unit-norm embeddings, whole clips; with
            ``center_embeddings="group"``, after each speaker's mean is taken
            away (the embeddings the centroids are compared with).
        """
        return self._checked_embeddings(X, groups)

    def fit_transform(self, X, y, groups=None):
        """Fit, then return the embeddings of the training clips.

        The same as ``fit(X, y, groups).transform(X, groups)``.

        Parameters
        ----------
        X, y, groups
            As for :meth:`fit`.

        Returns
        -------
        embeddings : ndarray of shape (n_clips, n_networks * embedding_dim)
            Unit-norm embeddings, whole clips.
        """
        return self.fit(X, y, groups).transform(X, groups)

    def decision_function(self, X, groups=None):
        """Cosine similarity of each clip's embedding to each emotion centroid.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_mels, n_frames), sequence of arrays \
of shape (n_mels, n_frames_i), or SpectrogramStore
            Log-mel spectrograms, NaN-padded, ragged or on disk (as for
            :meth:`fit`).
        groups : array-like of shape (n_clips,) or None, default=None
            Speakers, as for :meth:`transform`.

        Returns
        -------
        scores : ndarray of shape (n_clips, n_classes) or (n_clips,)
            Cosine similarities, in ``[-1, 1]``; with two classes, the similarity
            to ``classes_[1]`` minus that to ``classes_[0]``.
        """
        sim = self._checked_embeddings(X, groups) @ self.centroids_.T
        return sim[:, 1] - sim[:, 0] if len(self.classes_) == 2 else sim

    def predict_proba(self, X, groups=None):
        """Calibrated class probabilities: a softmax over scaled similarities.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_mels, n_frames), sequence of arrays \
of shape (n_mels, n_frames_i), or SpectrogramStore
            Log-mel spectrograms, NaN-padded, ragged or on disk (as for
            :meth:`fit`).
        groups : array-like of shape (n_clips,) or None, default=None
            Speakers, as for :meth:`transform`.

        Returns
        -------
        proba : ndarray of shape (n_clips, n_classes)
            ``softmax(proba_scale_ * cos_similarities)``; rows sum to 1.
        """
        from scipy.special import softmax

        sim = self._checked_embeddings(X, groups) @ self.centroids_.T
        return softmax(self.proba_scale_ * sim, axis=1)

    def predict(self, X, groups=None):
        """The emotion whose centroid makes the smallest angle with each clip.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_mels, n_frames), sequence of arrays \
of shape (n_mels, n_frames_i), or SpectrogramStore
            Log-mel spectrograms, NaN-padded, ragged or on disk (as for
            :meth:`fit`).
        groups : array-like of shape (n_clips,) or None, default=None
            Speakers, as for :meth:`transform`.

        Returns
        -------
        y_pred : ndarray of shape (n_clips,)
            Labels from ``classes_``.
        """
        sim = self._checked_embeddings(X, groups) @ self.centroids_.T
        return self.classes_[np.argmax(sim, axis=1)]

    def score(self, X, y, sample_weight=None, groups=None):
        """Accuracy of :meth:`predict` on ``X`` against ``y``.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_mels, n_frames), sequence of arrays \
of shape (n_mels, n_frames_i), or SpectrogramStore
            Log-mel spectrograms, as for :meth:`predict`.
        y : array-like of shape (n_clips,)
            True labels.
        sample_weight : array-like of shape (n_clips,), default=None
            Weights of the clips.
        groups : array-like of shape (n_clips,) or None, default=None
            Speakers, as for :meth:`transform`.

        Returns
        -------
        score : float
            Mean accuracy.
        """
        from sklearn.metrics import accuracy_score

        return accuracy_score(
            y, self.predict(X, groups=groups), sample_weight=sample_weight
        )

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
