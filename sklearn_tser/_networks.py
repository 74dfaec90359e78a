"""Embedding networks: ResNet-x and the ablation family (FC, CNN, RNN, LSTM, GRU).

Kumar et al. compare six network families of ``x`` weight layers each (FC-x,
CNN-x, RNN-x, LSTM-x, GRU-x and ResNet-x, ``6 <= x <= 15``) and find ResNet-11
best. Every network here maps a padded batch of log-mel spectrograms of shape
``(batch, n_mels, n_frames)`` plus the true length of each clip to

* an *embedding* of shape ``(batch, embedding_dim)``: the raw output of the
  fully connected -> embedding :class:`torch.nn.Linear` layer, used by the
  triplet loss and by the cosine-centroid classifier;
* *logits* of shape ``(batch, n_classes)``: a linear softmax head applied to the
  embedding, used only during softmax pre-training.

Counting layers
---------------
``n_layers`` counts weight layers: every :class:`torch.nn.Conv1d`, every
:class:`torch.nn.Linear` and every recurrent layer (one per ``num_layers`` of a
:class:`torch.nn.RNN`, :class:`torch.nn.LSTM` or :class:`torch.nn.GRU`).
Batch normalisation, activations, dropout, pooling and parameter-free
shortcuts are not counted. The network built has
exactly ``n_layers`` weight layers:

* every family ends with the same **two** layers: the embedding layer
  ``Linear(n_pooled -> embedding_dim)`` and the softmax head
  ``Linear(embedding_dim -> n_classes)``;
* the remaining ``n_backbone = n_layers - 2`` layers (4 to 13) form the
  backbone, which maps the spectrogram to frame-level features that are then
  pooled over valid frames (statistics pooling: masked mean and masked standard
  deviation, concatenated, so ``n_pooled = 2 * n_channels``).

Backbones:

``"resnet"``
    A 1-D ResNet over time, with the mel bins as input channels. One stem
    convolution ``Conv1d(n_mels -> width, stride 2)``, then, if
    ``n_backbone - 1`` is odd, one plain extra convolution
    ``Conv1d(width -> width)``, then ``(n_backbone - 1) // 2`` residual blocks
    of two convolutions each. Blocks are split into up to three stages of
    ``width``, ``2 * width`` and ``4 * width`` channels; the first block of
    every stage halves the time resolution (stride 2), so the pooled features
    have 1/16 of the input frame rate once there are three stages. Shortcuts are
    parameter-free (He et al.'s "option A": subsample in time, zero-pad the new
    channels), so they add no layer. ResNet-11: stem, then 4 blocks of
    ``width``, ``width``, ``2 * width`` and ``4 * width`` channels.
``"cnn"``
    The same convolutions as ``"resnet"`` with the skip connections removed.
``"fc"``
    ``n_backbone`` frame-wise ``Linear`` layers (``n_mels -> 2 * width``, then
    ``2 * width -> 2 * width``), applied to each valid frame independently.
``"rnn"``, ``"lstm"``, ``"gru"``
    One :class:`torch.nn.RNN` (``tanh`` units), :class:`torch.nn.LSTM` or
    :class:`torch.nn.GRU` of ``n_backbone`` stacked unidirectional layers of
    ``2 * width`` units, with the mel bins as input features.

All convolutions use kernel 3 and padding 1 and are followed by batch
normalisation and ReLU, as are the frame-wise ``Linear`` layers. With
``dilation > 1`` the convolutions of stride 1 after the stem are dilated, with
padding ``dilation``: a longer context for the same weights. With
``squeeze_excitation=True`` every block of the ResNet and CNN scales the
channels of its second convolution's output by gates computed from the
clip's mean of each channel over its valid frames (SE-ResNet). With
``zero_init_residual=True`` the batch normalisation that ends each residual
block starts with zero scales, so that every block of the ResNet starts as
its shortcut and the network as a shallow one (Goyal et al., 2017).

With ``deltas > 0`` the network first appends time derivatives of the log-mel
values to its input (see :func:`time_deltas`): every family then reads
``n_mels * (1 + deltas)`` input channels. They are computed inside the network,
after the training augmentation, so that a time mask or a warp of the
spectrogram moves its derivatives with it.

Length-aware computation
------------------------
Frames at index ``>= lengths[i]`` are padding and never influence clip ``i``:
the input padding is zeroed, and after every convolution, normalisation and
activation the padded positions are set to exactly zero again, so that a
convolution at the last valid frame sees the same zeros it would see from its
own zero padding if the clip were alone. A stride-2 convolution maps ``L``
valid frames to ``ceil(L / 2)``. Batch normalisation computes its batch
statistics over valid positions only, and pooling averages over valid frames
only. Frame-wise layers only transform the valid frames. Recurrent layers
are unidirectional, hence causal: the output at a valid frame depends only on
that frame and the earlier ones, never on the padding that follows (the batch
is not packed because packed sequences are several times slower on CPU; the
final hidden state, which would see the padding, is not used). In
evaluation mode a clip therefore gets the same embedding alone as inside any
padded batch (up to floating point rounding).
A batch without padding (every clip lasts all its frames, as the random
training crops do) skips all of this: no masks are built or applied, and
batch normalisation is torch's own, with the same statistics (the layers
receive ``lengths=None``), which makes a training step faster.

Memory layout
-------------
The convolutional backbones keep their ``(batch, channels, n_frames)``
features channels-last in memory (the channels of a frame side by side, as a
``(batch, n_frames, channels)`` tensor would hold them): each convolution runs
as a 2-D convolution of height 1 on that memory, and batch normalisation,
the shortcuts and the statistics pooling read it in place, forward and
backward, with no copy between layers (the 1x1 convolutions of
``pooling="attentive"`` are torch's own, and copy their input). The CPU's
convolution library (oneDNN) and torch's batch normalisation compute this
layout faster than the plain one. It changes no value but for float
rounding: every shape, parameter and state dict stays that of
:class:`torch.nn.Conv1d` and :class:`torch.nn.BatchNorm1d`.
"""

import math
import numbers

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._validation import check_integer

ARCHITECTURES = ("resnet", "cnn", "fc", "rnn", "lstm", "gru")
STEMS = ("conv1d", "conv2d")
POOLINGS = ("last", "blocks", "attentive")
MIN_LAYERS, MAX_LAYERS = 6, 15

# Layers shared by every family: the embedding layer and the softmax head.
_N_HEAD_LAYERS = 2
# Floor on the pooled variance, so that one-frame clips get a finite standard
# deviation with a finite gradient.
_POOLING_VARIANCE_FLOOR = 1e-5

_RECURRENT_MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def check_architecture(architecture, n_layers):
    """Check an architecture name and its number of weight layers.

    Parameters
    ----------
    architecture : str
        One of ``"resnet"``, ``"cnn"``, ``"fc"``, ``"rnn"``, ``"lstm"`` and
        ``"gru"``.
    n_layers : int
        Total number of weight layers, ``6 <= n_layers <= 15``.

    Raises
    ------
    ValueError
        If ``architecture`` is unknown, or ``n_layers`` is not an integer or is
        outside ``[6, 15]``.
    """
    if not isinstance(architecture, str) or architecture not in ARCHITECTURES:
        raise ValueError(
            f"architecture must be one of {ARCHITECTURES}; got {architecture!r}."
        )
    check_integer(n_layers, "n_layers", low=MIN_LAYERS, high=MAX_LAYERS)


def _check_dropout(dropout):
    if (
        not isinstance(dropout, numbers.Real)
        or isinstance(dropout, bool)
        or not 0 <= dropout < 1
    ):
        raise ValueError(f"dropout must be a float in [0, 1); got {dropout!r}.")


def _time_mask(lengths, n_frames, dtype):
    """Return a ``(batch, 1, n_frames)`` mask, 1 on valid frames and 0 on padding.

    ``lengths=None`` stands for a batch without padding (every clip fills all
    ``n_frames``): the mask is then ``None``, and the layers skip masking.
    """
    if lengths is None:
        return None
    frames = torch.arange(n_frames, device=lengths.device)
    return (frames < lengths[:, None]).unsqueeze(1).to(dtype)


def _apply_mask(x, mask):
    """``x * mask``, or ``x`` itself for a batch without padding (``mask=None``)."""
    return x if mask is None else x * mask


def _halve_lengths(lengths):
    """Valid lengths after a kernel-3, padding-1, stride-2 layer: ``ceil(L / 2)``;
    ``None`` (no padding) stays ``None``."""
    if lengths is None:
        return None
    return torch.div(lengths + 1, 2, rounding_mode="floor")


def _frames_view(x):
    """``x`` (batch, channels, n_frames) seen as (batch, n_frames, channels).

    Reductions over time taken on this view give gradients laid out as
    channels-last features are (see "Memory layout" above), so that the
    layers behind them do not mix two layouts in their backward pass.
    """
    return x.transpose(1, 2)


def _time_mean(x, mask, n_valid=None):
    """The mean of ``x`` (batch, channels, n_frames) over each clip's valid
    frames, of shape (batch, channels), in float32 under any autocast;
    ``mask=None`` for a batch without padding. ``n_valid`` (batch, 1), the
    mask's count, when the caller has it."""
    x = x.float()
    if mask is None:  # over a (batch, n_frames, channels) view, see _frames_view
        return _frames_view(x).mean(dim=1)
    mask = mask.float()
    n_valid = mask.sum(dim=2) if n_valid is None else n_valid.float()
    return (x * mask).sum(dim=2) / n_valid


def _masked_statistics_pooling(x, mask, n_valid):
    """Concatenate the masked mean and standard deviation over time.

    Parameters
    ----------
    x : torch.Tensor of shape (batch, channels, n_frames)
        Frame-level features.
    mask : torch.Tensor of shape (batch, 1, n_frames) or None
        1 on valid frames and 0 on padding; ``None`` when no clip is padded.
    n_valid : torch.Tensor of shape (batch, 1) or None
        Number of valid frames of each clip, as floats; ``None`` when no clip
        is padded.

    Returns
    -------
    pooled : torch.Tensor of shape (batch, 2 * channels)
    """
    mean = _time_mean(x, mask, n_valid)
    if mask is None:  # no padding: plain means (faster than torch.var_mean)
        frames = _frames_view(x.float())
        variance = (frames - mean.unsqueeze(1)).square().mean(dim=1)
    else:
        centred = (x - mean.unsqueeze(2)) * mask
        variance = centred.square().sum(dim=2) / n_valid
    std = variance.clamp_min(_POOLING_VARIANCE_FLOOR).sqrt()
    return torch.cat([mean, std], dim=1)


def clip_statistics(x, lengths):
    """The mean and standard deviation of every channel of each clip over its
    valid frames, as the statistics pooling takes them (float32, the standard
    deviation at least ``sqrt(1e-5)``), and the valid frames' mask.

    Parameters
    ----------
    x : torch.Tensor of shape (batch, channels, n_frames)
    lengths : torch.Tensor of shape (batch,)
        Valid frames of each clip, at least one.

    Returns
    -------
    mean, std : torch.Tensor of shape (batch, channels)
    mask : torch.Tensor of shape (batch, 1, n_frames), float32
        1 on valid frames and 0 on padding.
    """
    mask = _time_mask(lengths, x.shape[2], torch.float32)
    n_valid = lengths[:, None].to(torch.float32)
    mean, std = _masked_statistics_pooling(x, mask, n_valid).chunk(2, dim=1)
    return mean, std, mask


class _AttentiveStatisticsPooling(nn.Module):
    """Attentive statistics pooling: a weighted mean and standard deviation.

    Each channel gets its own weights over the valid frames, a softmax of
    ``Conv1d(hidden -> channels)(tanh(Conv1d(channels -> hidden)(x)))``
    (Okabe et al., 2018, with the channel-wise weights of Desplanques et al.,
    2020), so that frames that carry the emotion count more than silence or
    neutral stretches.

    Parameters
    ----------
    channels : int
        Channels of the frame-level features.
    hidden : int, default=128
        Channels of the attention's hidden layer.
    """

    def __init__(self, channels, hidden=128):
        super().__init__()
        self.score = nn.Sequential(
            nn.Conv1d(channels, hidden, kernel_size=1),
            nn.Tanh(),
            nn.Conv1d(hidden, channels, kernel_size=1),
        )

    def forward(self, x, mask, n_valid=None):
        """Same signature and output as :func:`_masked_statistics_pooling`;
        ``n_valid`` is not needed (the weights of each clip sum to 1)."""
        # In float32, with the centred variance: bfloat16 (CUDA autocast)
        # loses a small spread around a large mean otherwise.
        scores = self.score(x).float()
        if mask is not None:
            scores = scores.masked_fill(mask == 0, float("-inf"))
        weights = torch.softmax(scores, dim=2)
        x = x.float()
        mean = (weights * x).sum(dim=2)
        variance = (weights * (x - mean.unsqueeze(2)).square()).sum(dim=2)
        std = variance.clamp_min(_POOLING_VARIANCE_FLOOR).sqrt()
        return torch.cat([mean, std], dim=1)


class _Dropout(nn.Dropout):
    """:class:`torch.nn.Dropout` drawing its masks from ``generator`` when it
    is set (a fit's own :class:`torch.Generator`, see
    :func:`use_generator`), so that fits in threads do not share torch's
    global generator."""

    generator = None

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self.generator)
        return x * keep / (1.0 - self.p)


def use_generator(module, generator):
    """Make the dropout of ``module`` draw from ``generator`` (``None``: torch's
    global generator). The dropout between stacked recurrent layers
    (``architecture`` in rnn, lstm, gru with ``n_layers >= 4``) is torch's own
    and always draws from the global generator."""
    for m in module.modules():
        if isinstance(m, _Dropout):
            m.generator = generator


def initialize_weights(module, generator):
    """Draw the weights of ``module`` as torch's default initialisation does
    (``reset_parameters`` of each layer), but from ``generator``.

    Convolutions and linear layers: Kaiming-uniform weights (``a = sqrt(5)``)
    and biases uniform in ``+-1 / sqrt(fan_in)``; recurrent layers: every
    weight uniform in ``+-1 / sqrt(hidden_size)``; batch normalisation: its
    own ``reset_parameters`` (ones and zeros, or zero scales where built so).
    """
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
                if m.bias is not None:
                    bound = 1.0 / math.sqrt(m.weight[0].numel())
                    nn.init.uniform_(m.bias, -bound, bound, generator=generator)
            elif isinstance(m, nn.RNNBase):
                bound = 1.0 / math.sqrt(m.hidden_size)
                for weight in m.parameters():
                    nn.init.uniform_(weight, -bound, bound, generator=generator)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.reset_parameters()


class _MaskedBatchNorm1d(nn.BatchNorm1d):
    """Batch normalisation whose batch statistics ignore padded frames.

    Takes ``x`` of shape ``(batch, channels, n_frames)`` with a mask of shape
    ``(batch, 1, n_frames)`` (or ``mask=None`` when no frame is padding), or
    ``x`` of shape ``(n, channels)`` (only valid frames) with ``mask=None``. In
    training mode the mean and variance are taken over valid positions only;
    in evaluation mode the running statistics are used, as in
    :class:`torch.nn.BatchNorm1d`, which also does the work when there is no
    mask. Unlike the latter it accepts a single value per channel in training
    mode (a one-frame clip in a batch of one). Padded outputs are not zeroed
    here: the caller masks after the activation. With ``zero_scale`` its
    scales start (and :meth:`reset_parameters` resets them) at zero instead
    of one: what ends a residual branch that starts at zero.
    """

    def __init__(self, num_features, zero_scale=False):
        # Set first: the parent's __init__ calls reset_parameters.
        self.zero_scale = zero_scale
        super().__init__(num_features)

    def reset_parameters(self):
        super().reset_parameters()
        if self.zero_scale:
            nn.init.zeros_(self.weight)

    def forward(self, x, mask=None):
        if not self.training:
            return self._native(x)
        values_per_channel = x.shape[0] * (x.shape[2] if x.ndim == 3 else 1)
        # float32 out, and the masked statistics below taken in float32, under
        # any autocast (CUDA's would sum bfloat16 in float32 by itself, the
        # CPU's does not); a no-op on float32 input.
        if mask is None and values_per_channel > 1:
            return self._native(x).float()
        x = x.float()
        if mask is None:
            mask = x.new_ones(x.shape[0], 1, *x.shape[2:])
        dims = (0,) if x.ndim == 2 else (0, 2)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        n = mask.sum()
        mean = (x * mask).sum(dim=dims) / n
        centred = x - mean.view(shape)
        variance = (centred * mask).square().sum(dim=dims) / n
        with torch.no_grad():
            unbiased = variance * (n / (n - 1).clamp_min(1))
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(unbiased, self.momentum)
            self.num_batches_tracked.add_(1)
        scale = self.weight * torch.rsqrt(variance + self.eps)
        return centred * scale.view(shape) + self.bias.view(shape)

    def _native(self, x):
        """torch's batch normalisation, that of :class:`torch.nn.BatchNorm1d`,
        on a 4-D view ``(batch, channels, 1, n_frames)`` of 3-D input: torch
        has kernels for channels-last memory in 4-D only. Its bookkeeping is
        that of torch's for what this class is built with: running statistics
        kept, a set ``momentum``."""
        if x.ndim != 3:
            return super().forward(x)
        if self.training:
            self.num_batches_tracked.add_(1)
        out = F.batch_norm(
            x.unsqueeze(2),
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training,
            self.momentum,
            self.eps,
        )
        return out.squeeze(2)


def time_deltas(x, lengths, order, width=9):
    """Append time derivatives of a padded batch of spectrograms to its bands.

    The first derivative (delta) of frame ``t`` is the regression slope over
    ``width`` frames, as in HTK and :func:`librosa.feature.delta`::

        d[t] = sum(n * (x[t + n] - x[t - n]) for n in 1..N) / (2 * sum(n ** 2))

    with ``N = width // 2``, where a frame before the first or after the last
    valid frame of a clip repeats that frame. The second derivative is the
    delta of the delta, and so on.

    Parameters
    ----------
    x : torch.Tensor of shape (batch, n_mels, n_frames)
        Spectrograms; frames at index ``>= lengths[i]`` are padding and never
        influence clip ``i``.
    lengths : torch.Tensor of shape (batch,), integer, or None
        Valid frames of each clip; ``None`` when every clip fills ``n_frames``.
    order : int >= 0
        Highest derivative appended; ``0`` returns ``x``.
    width : odd int >= 3, default=9
        Frames of the regression window.

    Returns
    -------
    torch.Tensor of shape (batch, n_mels * (1 + order), n_frames)
        ``x``, then its first derivative, and so on, along the band axis;
        padded frames of the derivatives are 0.

    Examples
    --------
    >>> import torch
    >>> ramp = torch.arange(10.0).reshape(1, 1, 10)  # slope 1 per frame
    >>> time_deltas(ramp, None, 1)[0, 1, 4:6]
    tensor([1., 1.])
    """
    if not order:
        return x
    half = width // 2
    n_frames = x.shape[2]
    mask = _time_mask(lengths, n_frames, x.dtype)
    denominator = 2 * sum(n * n for n in range(1, half + 1))
    if mask is not None:  # each clip's padding will repeat its last valid frame
        valid = mask.bool()
        last = (lengths.long() - 1).view(-1, 1, 1).expand(-1, x.shape[1], 1)
    bands = [x]
    for _ in range(order):
        current = bands[-1]
        if mask is not None:
            current = torch.where(valid, current, current.gather(2, last))
        padded = F.pad(current, (half, half), mode="replicate")
        delta = sum(
            n
            * (
                padded[..., half + n : half + n + n_frames]
                - padded[..., half - n : half - n + n_frames]
            )
            for n in range(1, half + 1)
        )
        bands.append(delta / denominator)
    out = torch.cat(bands, dim=1)
    return out if mask is None else out.masked_fill(mask == 0, 0.0)


class _Conv1d(nn.Conv1d):
    """:class:`torch.nn.Conv1d` computed on channels-last memory.

    The input is made channels-last (a no-op when it is already, as every
    layer's output after the first is) and convolved as a 2-D convolution of
    height 1; the output is channels-last too. Same parameters and values as
    its parent, up to float rounding (see "Memory layout" above), for what
    the backbones build: batched input, integer zero padding.
    """

    def _conv_forward(self, x, weight, bias):
        x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        out = F.conv2d(
            x,
            weight.unsqueeze(2),
            bias,
            (1, self.stride[0]),
            (0, self.padding[0]),
            (1, self.dilation[0]),
            self.groups,
        )
        return out.squeeze(2)


def _conv3(in_channels, out_channels, stride=1, dilation=1):
    """``Conv1d`` of kernel 3 without bias, padded by ``dilation``: ``L`` valid
    frames give ``L`` (stride 1) or ``ceil(L / 2)`` (stride 2)."""
    return _Conv1d(
        in_channels,
        out_channels,
        3,
        stride=stride,
        padding=dilation,
        dilation=dilation,
        bias=False,
    )


class _ConvLayer(nn.Module):
    """Masked ``Conv1d(kernel 3) -> batch norm -> ReLU``; one weight layer.

    ``dilation`` spaces the kernel's taps (padding ``dilation`` keeps the
    length); a strided layer takes ``dilation=1``.
    """

    def __init__(self, in_channels, out_channels, stride, dilation=1):
        super().__init__()
        self.stride = stride
        self.conv = _conv3(in_channels, out_channels, stride, dilation)
        self.norm = _MaskedBatchNorm1d(out_channels)

    def forward(self, x, lengths):
        x = self.conv(x)
        if self.stride == 2:
            lengths = _halve_lengths(lengths)
        mask = _time_mask(lengths, x.shape[2], x.dtype)
        return _apply_mask(F.relu(self.norm(x, mask)), mask), lengths


class _SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation gate over channels (Hu et al., 2018).

    Each channel of ``x`` is scaled by a weight in (0, 1) computed from the
    clip's mean of every channel over its valid frames ("squeeze"), through
    ``Linear(channels -> channels // reduction) -> ReLU -> Linear -> sigmoid``
    ("excitation"): a clip-level context that reweights the frame-level
    features. Its two ``Linear`` layers are not counted in ``n_layers``.
    """

    def __init__(self, channels, reduction=4):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.squeeze = nn.Linear(channels, hidden)
        self.excite = nn.Linear(hidden, channels)

    def forward(self, x, mask):
        mean = _time_mean(x, mask)
        gate = torch.sigmoid(self.excite(F.relu(self.squeeze(mean))))
        return x * gate.unsqueeze(2).to(x.dtype)


class _Block(nn.Module):
    """Two masked convolutions, with a parameter-free shortcut if ``residual``.

    The first convolution has stride ``stride`` and maps ``in_channels`` to
    ``out_channels``. The shortcut subsamples time by ``stride`` and zero-pads
    the extra channels ("option A" of He et al.), so it aligns exactly with the
    strided convolution and adds no weight layer. Convolutions of stride 1 have
    dilation ``dilation``. With ``squeeze_excitation`` the second convolution's
    normalised output is gated per channel (:class:`_SqueezeExcitation`) before
    the shortcut is added, as in SE-ResNet. With ``zero_init`` (and
    ``residual``) the second normalisation's scales start at zero
    (``zero_scale``), so that the block starts as its shortcut.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        stride,
        residual,
        dilation=1,
        squeeze_excitation=False,
        zero_init=False,
    ):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError("A block cannot reduce the number of channels.")
        self.stride = stride
        self.residual = residual
        self.extra_channels = out_channels - in_channels
        self.conv1 = _ConvLayer(
            in_channels, out_channels, stride, dilation=1 if stride == 2 else dilation
        )
        self.conv2 = _conv3(out_channels, out_channels, dilation=dilation)
        self.norm2 = _MaskedBatchNorm1d(out_channels, zero_scale=zero_init and residual)
        self.gate = _SqueezeExcitation(out_channels) if squeeze_excitation else None

    def forward(self, x, lengths):
        out, lengths = self.conv1(x, lengths)
        mask = _time_mask(lengths, out.shape[2], out.dtype)
        out = self.norm2(self.conv2(out), mask)
        if self.gate is not None:
            out = self.gate(out, mask)
        if self.residual:
            # Every stride-th frame, with zeros for the new channels; taken by
            # a pooling of kernel 1 in 4-D, whose gradient keeps the layout
            # of x (a slice's would be a plain-layout tensor of zeros).
            shortcut = x.unsqueeze(2)
            if self.stride > 1:
                shortcut = F.avg_pool2d(shortcut, 1, (1, self.stride))
            if self.extra_channels:
                shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra_channels))
            out = out + shortcut.squeeze(2)
        return _apply_mask(F.relu(out), mask), lengths


class _Stem2d(nn.Module):
    """A 2-D convolution over (mel, time), then a projection to ``width``.

    ``Conv2d(planes -> channels, 3 x 3, stride 2)`` with masked batch
    normalisation and ReLU sees local time-frequency patterns (harmonics,
    formant movements) wherever they sit on the mel axis; its
    ``channels x ceil(n_mels / 2)`` output maps are then read as channels by a
    masked ``Conv1d(-> width)``. Two weight layers; halves the time resolution
    like the 1-D stem. The input holds ``planes`` spectrograms of ``n_mels``
    bands one after the other on the band axis (the log-mel values, then
    their time derivatives), read as the input planes of the 2-D convolution.
    """

    n_weight_layers = 2

    def __init__(self, n_mels, width, channels=16, planes=1):
        super().__init__()
        self.planes = planes
        self.conv = nn.Conv2d(planes, channels, 3, stride=2, padding=1, bias=False)
        self.norm = _MaskedBatchNorm1d(channels)
        self.project = _ConvLayer(channels * ((n_mels + 1) // 2), width, stride=1)

    def forward(self, x, lengths):
        batch, bands, n_frames = x.shape
        x = x.reshape(batch, self.planes, bands // self.planes, n_frames)
        x = self.conv(x)  # (batch, channels, n_freq, n_frames)
        lengths = _halve_lengths(lengths)
        batch, channels, n_freq, n_frames = x.shape
        mask = _time_mask(lengths, n_frames, x.dtype)
        if mask is not None:
            mask = mask.unsqueeze(2).expand(batch, 1, n_freq, n_frames)
            mask = mask.reshape(batch, 1, -1)
        x = _apply_mask(F.relu(self.norm(x.reshape(batch, channels, -1), mask)), mask)
        return self.project(x.reshape(batch, channels * n_freq, n_frames), lengths)


class _ConvBackbone(nn.Module):
    """Stem, optional extra convolution and blocks; see the module docstring."""

    def __init__(
        self,
        n_mels,
        width,
        n_backbone,
        residual,
        stem="conv1d",
        dilation=1,
        planes=1,
        squeeze_excitation=False,
        zero_init_residual=False,
    ):
        super().__init__()
        if stem == "conv2d":
            layers = [_Stem2d(n_mels, width, planes=planes)]
        else:
            layers = [_ConvLayer(n_mels * planes, width, stride=2)]
        n_stem = 2 if stem == "conv2d" else 1
        n_blocks, n_extra = divmod(n_backbone - n_stem, 2)
        if n_extra:
            layers.append(_ConvLayer(width, width, stride=1, dilation=dilation))
        channels, stage = width, 0
        for block in range(n_blocks):
            # Up to three stages; the first block of each stage has stride 2.
            block_stage = 3 * block // n_blocks
            stride = 2 if block == 0 or block_stage != stage else 1
            out_channels = width * 2**block_stage
            layers.append(
                _Block(
                    channels,
                    out_channels,
                    stride,
                    residual,
                    dilation=dilation,
                    squeeze_excitation=squeeze_excitation,
                    zero_init=zero_init_residual,
                )
            )
            channels, stage = out_channels, block_stage
        self.layers = nn.ModuleList(layers)
        self.out_channels = channels
        self.block_channels = [
            layer.conv2.out_channels for layer in layers if isinstance(layer, _Block)
        ]

    def forward(self, x, lengths, *, every_block=False):
        """The last layer's features, or those of every block, as a list of
        ``(features, lengths)``."""
        levels = []
        for layer in self.layers:
            x, lengths = layer(x, lengths)
            if every_block and isinstance(layer, _Block):
                levels.append((x, lengths))
        return levels if every_block and levels else [(x, lengths)]


class _FrameWiseBackbone(nn.Module):
    """Frame-wise ``Linear -> batch norm -> ReLU`` layers, no time context.

    Only the valid frames are gathered and transformed, so padding is never
    seen, and scattered back into a zero-padded ``(batch, channels, n_frames)``
    tensor for pooling.
    """

    def __init__(self, n_mels, width, n_backbone):
        super().__init__()
        hidden = 2 * width
        sizes = [n_mels] + [hidden] * n_backbone
        self.linears = nn.ModuleList(
            nn.Linear(n_in, n_out, bias=False)
            for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.norms = nn.ModuleList(_MaskedBatchNorm1d(hidden) for _ in self.linears)
        self.out_channels = hidden

    def forward(self, x, lengths):
        batch, _, n_frames = x.shape
        if lengths is None:  # no padding: every frame is valid
            frames = x.transpose(1, 2).reshape(batch * n_frames, -1)
        else:
            valid = _time_mask(lengths, n_frames, torch.bool).squeeze(1)
            frames = x.transpose(1, 2)[valid]
        for linear, norm in zip(self.linears, self.norms, strict=True):
            frames = F.relu(norm(linear(frames)))
        if lengths is None:
            out = frames.reshape(batch, n_frames, self.out_channels)
        else:
            out = frames.new_zeros(batch, n_frames, self.out_channels)
            out[valid] = frames
        return [(out.transpose(1, 2), lengths)]


class _RecurrentBackbone(nn.Module):
    """Stacked unidirectional recurrent layers, causal in time.

    The padded batch is run as is, without packing: a unidirectional layer's
    output at frame ``t`` depends only on frames ``<= t``, so the outputs at
    valid frames never depend on the padding that follows them, and the
    outputs at padded frames are masked out by the pooling. The final hidden
    state, which would see the padding, is not used. On CPU this is several
    times faster than running packed sequences.
    """

    def __init__(self, kind, n_mels, width, n_backbone, dropout):
        super().__init__()
        hidden = 2 * width
        self.rnn = _RECURRENT_MODULES[kind](
            n_mels, hidden, num_layers=n_backbone, batch_first=True, dropout=dropout
        )
        self.out_channels = hidden

    def forward(self, x, lengths):
        output, _ = self.rnn(x.transpose(1, 2))
        return [(output.transpose(1, 2), lengths)]


class EmbeddingNetwork(nn.Module):
    """Length-aware network mapping log-mel spectrograms to emotion embeddings.

    The backbone (see the module docstring for each family and for how
    ``n_layers`` is counted) is followed by masked statistics pooling over the
    valid frames, dropout, the embedding layer
    ``Linear(n_pooled -> embedding_dim)`` and the softmax head
    ``Linear(embedding_dim -> n_classes)`` applied to the embedding.

    Parameters
    ----------
    architecture : {"resnet", "cnn", "fc", "rnn", "lstm", "gru"}, \
            default="resnet"
        Network family.
    n_layers : int, default=11
        Total number of weight layers, ``6 <= n_layers <= 15``, including the
        embedding layer and the softmax head.
    n_mels : int > 0, default=64
        Number of mel bins of the input.
    n_classes : int >= 2, default=8
        Number of classes of the softmax head.
    embedding_dim : int > 0, default=128
        Size of the embedding.
    width : int > 0, default=48
        Base number of channels: ``width``, ``2 * width`` and ``4 * width``
        channels in the three ResNet/CNN stages, ``2 * width`` units in the
        frame-wise and recurrent layers.
    dropout : float in [0, 1), default=0.1
        Dropout rate on the pooled features, and between recurrent layers.
    stem : {"conv1d", "conv2d"}, default="conv1d"
        First layers of the ResNet and CNN families. ``"conv1d"``: one
        ``Conv1d(n_mels -> width, stride 2)`` reading the mel bins as channels.
        ``"conv2d"``: ``Conv2d(1 -> 16, 3 x 3, stride 2)`` over (mel, time)
        followed by ``Conv1d(16 * ceil(n_mels / 2) -> width)``; two weight layers,
        so one residual block fewer at the same ``n_layers``. Ignored by the
        other families.
    pooling : {"last", "blocks", "attentive"}, default="last"
        The statistics pooling. ``"last"``: mean and standard deviation of the
        last layer's features over the valid frames. ``"blocks"`` (ResNet and
        CNN families; ``"last"`` for the others): the same of every block's
        features, each over its own valid frames, concatenated, which gives
        the embedding layer every time scale of the network, from the first
        block's short context to the last block's long one. ``"attentive"``:
        attentive statistics pooling of the last layer's features, a mean and
        standard deviation weighted per channel by learned attention over the
        valid frames (Okabe et al., 2018; Desplanques et al., 2020); its two
        ``1 x 1`` convolutions are not counted in ``n_layers``.
    dilation : int >= 1, default=1
        Dilation of the ResNet and CNN convolutions of stride 1 after the stem
        (the second of every block, the first of a block that does not start
        a stage, and the extra convolution): their three taps are
        ``dilation`` frames apart, with padding ``dilation``, so the same
        weights see a longer context. A kernel-3 convolution widens the
        receptive field by ``2 * dilation * jump`` input frames, where
        ``jump`` is the product of the strides before it. Ignored by the
        other families.
    deltas : {0, 1, 2}, default=0
        Time derivatives appended to the input bands before the first layer
        (:func:`time_deltas`, over 9 frames): ``1`` adds the deltas, ``2``
        the deltas and the delta-deltas, so the first layer reads
        ``n_mels * (1 + deltas)`` channels (the 2-D stem reads them as
        ``1 + deltas`` input planes). ``n_mels`` stays the number of mel bins
        of the input.
    squeeze_excitation : bool, default=False
        Whether every block of the ResNet and CNN families gates its second
        convolution's channels with squeeze-and-excitation (Hu et al., 2018):
        each channel scaled by a weight in (0, 1) computed from the clip's
        mean of all channels over its valid frames, through a bottleneck of
        ``channels // 4`` units. A clip-level context for the frame-level
        features, for few weights (two small ``Linear`` layers a block) but a
        mean and a product over every frame; its ``Linear`` layers are not
        counted in ``n_layers``. Ignored by the other families.
    zero_init_residual : bool, default=False
        Whether the batch normalisation that ends each block of the ResNet
        starts with zero scales (torchvision's ``zero_init_residual``; Goyal
        et al., 2017), so that every block starts as its shortcut: the
        network starts as a shallow one and grows its blocks' branches as it
        trains. Ignored by the other families (the CNN's blocks have no
        shortcut to start as).

    Attributes
    ----------
    backbone : torch.nn.Module
        Frame-level feature extractor.
    embedding : torch.nn.Linear
        The fully connected -> embedding layer.
    head : torch.nn.Linear
        The softmax head, used only for pre-training.

    Notes
    -----
    The network does not normalise its input: feed per-mel standardised
    log-mel values (roughly zero mean and unit variance). Padding values are
    ignored: they are replaced by 0 before the first layer, so they may be
    anything, NaN included.

    Examples
    --------
    >>> import torch
    >>> net = EmbeddingNetwork(n_classes=4).eval()
    >>> x = torch.randn(2, 64, 50)
    >>> logits, embeddings = net(x, torch.tensor([50, 20]))
    >>> tuple(logits.shape), tuple(embeddings.shape)
    ((2, 4), (2, 128))
    """

    def __init__(
        self,
        *,
        architecture="resnet",
        n_layers=11,
        n_mels=64,
        n_classes=8,
        embedding_dim=128,
        width=48,
        dropout=0.1,
        stem="conv1d",
        pooling="last",
        dilation=1,
        deltas=0,
        squeeze_excitation=False,
        zero_init_residual=False,
    ):
        super().__init__()
        check_architecture(architecture, n_layers)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}; got {pooling!r}.")
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}; got {stem!r}.")
        check_integer(n_mels, "n_mels", low=1)
        check_integer(n_classes, "n_classes", low=2)
        check_integer(embedding_dim, "embedding_dim", low=1)
        check_integer(width, "width", low=1)
        check_integer(dilation, "dilation", low=1)
        check_integer(deltas, "deltas", low=0, high=2)
        _check_dropout(dropout)
        for name, value in (
            ("squeeze_excitation", squeeze_excitation),
            ("zero_init_residual", zero_init_residual),
        ):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(
                    f"{name} must be a bool; got {value!r} of type "
                    f"{type(value).__name__}."
                )
        # Plain Python numbers: hyper-parameters may come as NumPy scalars.
        n_layers, n_mels, n_classes = int(n_layers), int(n_mels), int(n_classes)
        embedding_dim, width, dropout = int(embedding_dim), int(width), float(dropout)
        dilation, deltas = int(dilation), int(deltas)
        self.architecture = architecture
        self.n_layers = n_layers
        self.n_mels = n_mels
        self.n_classes = n_classes
        self.embedding_dim = embedding_dim
        self.deltas = deltas
        n_channels = n_mels * (1 + deltas)

        n_backbone = n_layers - _N_HEAD_LAYERS
        if architecture in ("resnet", "cnn"):
            self.backbone = _ConvBackbone(
                n_mels,
                width,
                n_backbone,
                architecture == "resnet",
                stem,
                dilation,
                planes=1 + deltas,
                squeeze_excitation=bool(squeeze_excitation),
                zero_init_residual=bool(zero_init_residual),
            )
        elif architecture == "fc":
            self.backbone = _FrameWiseBackbone(n_channels, width, n_backbone)
        else:
            self.backbone = _RecurrentBackbone(
                architecture, n_channels, width, n_backbone, dropout
            )
        self.every_block = pooling == "blocks" and architecture in ("resnet", "cnn")
        pooled = self.backbone.out_channels
        if self.every_block and self.backbone.block_channels:
            pooled = sum(self.backbone.block_channels)
        self.pool = (
            _AttentiveStatisticsPooling(pooled)
            if pooling == "attentive"
            else _masked_statistics_pooling
        )
        self.dropout = _Dropout(dropout)
        self.embedding = nn.Linear(2 * pooled, embedding_dim)
        self.head = nn.Linear(embedding_dim, n_classes)

    def _check_input(self, x, lengths):
        """Raise ``ValueError`` on a bad batch; return whether no clip in it is
        padded (every length is ``n_frames``)."""
        if not isinstance(x, torch.Tensor) or x.ndim != 3:
            raise ValueError(
                "x must be a tensor of shape (batch, n_mels, n_frames); got "
                f"shape {tuple(getattr(x, 'shape', ()))}."
            )
        if x.shape[1] != self.n_mels:
            raise ValueError(
                f"x has {x.shape[1]} mel bins but the network expects "
                f"n_mels={self.n_mels}."
            )
        if (
            not isinstance(lengths, torch.Tensor)
            or lengths.ndim != 1
            or lengths.shape[0] != x.shape[0]
            or lengths.is_floating_point()
        ):
            raise ValueError(
                f"lengths must be an integer tensor of shape ({x.shape[0]},); got "
                f"{lengths!r}."
            )
        if not lengths.numel():
            return False
        shortest, longest = int(lengths.min()), int(lengths.max())
        if shortest < 1 or longest > x.shape[2]:
            raise ValueError(
                f"lengths must be in [1, n_frames={x.shape[2]}]; got values in "
                f"[{shortest}, {longest}]."
            )
        return shortest == x.shape[2]

    def embed(self, x, lengths):
        """Compute the embeddings of a padded batch.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, n_mels, n_frames)
            Log-mel spectrograms; frames at index ``>= lengths[i]`` are padding
            (any finite values) and never influence clip ``i``.
        lengths : torch.Tensor of shape (batch,), integer
            Number of valid frames of each clip, ``1 <= lengths[i] <= n_frames``.

        Returns
        -------
        embeddings : torch.Tensor of shape (batch, embedding_dim)
            Raw (un-normalised) output of the embedding layer.
        """
        full = self._check_input(x, lengths)
        if full:  # no padding: every layer skips its masking (lengths=None)
            lengths = None
        else:
            lengths = lengths.to(device=x.device, dtype=torch.int64)
            mask = _time_mask(lengths, x.shape[2], x.dtype)
            x = x.masked_fill(mask == 0, 0.0)
        x = time_deltas(x, lengths, self.deltas)
        if self.every_block:
            levels = self.backbone(x, lengths, every_block=True)
        else:
            levels = self.backbone(x, lengths)
        pooled = [
            self.pool(
                f,
                _time_mask(n, f.shape[2], f.dtype),
                None if n is None else n.to(f.dtype).unsqueeze(1),
            )
            for f, n in levels
        ]
        return self.embedding(self.dropout(torch.cat(pooled, dim=1)))

    def forward(self, x, lengths):
        """Compute the softmax-head logits and the embeddings of a padded batch.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, n_mels, n_frames)
            Log-mel spectrograms; frames at index ``>= lengths[i]`` are padding
            (any finite values) and never influence clip ``i``.
        lengths : torch.Tensor of shape (batch,), integer
            Number of valid frames of each clip, ``1 <= lengths[i] <= n_frames``.

        Returns
        -------
        logits : torch.Tensor of shape (batch, n_classes)
            Output of the softmax head, computed from the embeddings.
        embeddings : torch.Tensor of shape (batch, embedding_dim)
            Raw (un-normalised) output of the embedding layer.
        """
        embeddings = self.embed(x, lengths)
        return self.head(embeddings), embeddings
