"""Tests for the embedding networks: shapes, layer counts, padding invariance."""

import inspect
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from sklearn_tser._networks import (
    ARCHITECTURES,
    MAX_LAYERS,
    MIN_LAYERS,
    EmbeddingNetwork,
    _AttentiveStatisticsPooling,
    check_architecture,
    initialize_weights,
    time_deltas,
    use_generator,
)

# A small configuration keeps the parametrised tests fast.
SMALL = {"n_mels": 8, "n_classes": 3, "embedding_dim": 16, "width": 8}
LAYER_COUNTS = [6, 11, 15]


def _small_net(architecture, n_layers, **params):
    return EmbeddingNetwork(
        architecture=architecture, n_layers=n_layers, **{**SMALL, **params}
    )


def _count_weight_layers(net):
    """Count layers as the module docstring defines them."""
    count = 0
    for module in net.modules():
        if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d):
            count += 1
        elif isinstance(module, nn.RNNBase):
            count += module.num_layers
    return count


def _padded_batch(lengths, n_mels, n_frames, *, seed=0, garbage=100.0):
    """Random clips, padded with large random (finite) values."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), n_mels, n_frames, generator=generator)
    garbage_values = garbage * torch.randn(x.shape, generator=generator)
    frames = torch.arange(n_frames)
    padding = frames[None, :] >= torch.as_tensor(lengths)[:, None]
    x = torch.where(padding[:, None, :], garbage_values, x)
    return x, torch.as_tensor(lengths, dtype=torch.int64)


def _assert_each_clip_alone_matches_the_batch(net, x, lengths):
    """Each clip of the padded batch ``x`` embedded alone, without its
    padding, gets the embedding it gets in the batch."""
    with torch.no_grad():
        embeddings = net.embed(x, lengths)
        for i, n in enumerate(lengths.tolist()):
            alone = net.embed(x[i : i + 1, :, :n], lengths[i : i + 1])
            torch.testing.assert_close(alone[0], embeddings[i], rtol=0, atol=1e-5)


def _warm_up_running_statistics(net, n_mels):
    """Run a few training batches so that batch norm has non-trivial statistics."""
    net.train()
    with torch.no_grad():
        for seed in range(3):
            x, lengths = _padded_batch([30, 17, 5], n_mels, 30, seed=seed)
            net(2.0 * x + 0.5, lengths)
    return net.eval()


@pytest.mark.parametrize("n_layers", LAYER_COUNTS)
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_output_shapes(architecture, n_layers):
    net = _small_net(architecture, n_layers)
    x, lengths = _padded_batch([20, 7, 1, 13], SMALL["n_mels"], 20)
    logits, embeddings = net(x, lengths)
    assert logits.shape == (4, SMALL["n_classes"])
    assert embeddings.shape == (4, SMALL["embedding_dim"])
    assert net.embed(x, lengths).shape == (4, SMALL["embedding_dim"])
    assert torch.isfinite(logits).all() and torch.isfinite(embeddings).all()


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_logits_are_computed_from_the_embedding(architecture):
    net = _small_net(architecture, 8).eval()
    x, lengths = _padded_batch([12, 9, 3], SMALL["n_mels"], 12)
    with torch.no_grad():
        logits, embeddings = net(x, lengths)
        torch.testing.assert_close(logits, net.head(embeddings))
        torch.testing.assert_close(net.embed(x, lengths), embeddings)
        net.head.weight.add_(1.0)
        new_logits, new_embeddings = net(x, lengths)
    torch.testing.assert_close(new_embeddings, embeddings, rtol=0, atol=0)
    assert not torch.allclose(new_logits, logits)


@pytest.mark.parametrize("n_layers", LAYER_COUNTS)
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_embedding_alone_equals_embedding_in_padded_batch(architecture, n_layers):
    net = _warm_up_running_statistics(
        _small_net(architecture, n_layers), SMALL["n_mels"]
    )
    clip_lengths = [37, 1, 2, 16, 50, 7]
    x, lengths = _padded_batch(clip_lengths, SMALL["n_mels"], 64)
    with torch.no_grad():
        logits, embeddings = net(x, lengths)
        for i, length in enumerate(clip_lengths):
            alone = x[i : i + 1, :, :length]
            alone_logits, alone_embedding = net(alone, lengths[i : i + 1])
            torch.testing.assert_close(
                alone_embedding[0], embeddings[i], rtol=0, atol=1e-5
            )
            torch.testing.assert_close(alone_logits[0], logits[i], rtol=0, atol=1e-5)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_default_size_embedding_is_invariant_to_padding(architecture):
    net = _warm_up_running_statistics(
        EmbeddingNetwork(architecture=architecture, n_layers=7), 64
    )
    x, lengths = _padded_batch([75, 1, 40], 64, 80, seed=1)
    _assert_each_clip_alone_matches_the_batch(net, x, lengths)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_training_mode_ignores_padding_values(architecture):
    # Batch statistics are taken over valid frames only, so in training mode the
    # padding values do not matter either (dropout off to compare two passes).
    net = _small_net(architecture, 9, dropout=0.0).train()
    clip_lengths = [25, 4, 1, 18]
    x_small, lengths = _padded_batch(clip_lengths, SMALL["n_mels"], 32, garbage=0.0)
    x_large, _ = _padded_batch(clip_lengths, SMALL["n_mels"], 32, garbage=1e3)
    logits_small, embeddings_small = net(x_small, lengths)
    logits_large, embeddings_large = net(x_large, lengths)
    torch.testing.assert_close(embeddings_large, embeddings_small, rtol=0, atol=1e-5)
    torch.testing.assert_close(logits_large, logits_small, rtol=0, atol=1e-5)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_nan_padding_is_ignored(architecture):
    net = _small_net(architecture, 8).eval()
    x, lengths = _padded_batch([10, 3], SMALL["n_mels"], 10, garbage=0.0)
    x_nan = x.clone()
    x_nan[1, :, 3:] = float("nan")
    with torch.no_grad():
        torch.testing.assert_close(net.embed(x_nan, lengths), net.embed(x, lengths))


@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("n_layers", [6, 15])
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_one_frame_clips_give_finite_outputs_and_gradients(
    architecture, n_layers, batch_size
):
    net = _small_net(architecture, n_layers).train()
    x = torch.randn(batch_size, SMALL["n_mels"], 1, requires_grad=True)
    lengths = torch.ones(batch_size, dtype=torch.int64)
    logits, embeddings = net(x, lengths)
    assert torch.isfinite(logits).all() and torch.isfinite(embeddings).all()
    loss = F.cross_entropy(logits, torch.zeros(batch_size, dtype=torch.int64))
    loss = loss + embeddings.square().mean()
    loss.backward()
    assert torch.isfinite(x.grad).all()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
    with torch.no_grad():
        assert torch.isfinite(net.eval()(x, lengths)[1]).all()


@pytest.mark.parametrize("n_layers", range(MIN_LAYERS, MAX_LAYERS + 1))
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_number_of_weight_layers_is_n_layers(architecture, n_layers):
    net = _small_net(architecture, n_layers)
    assert _count_weight_layers(net) == n_layers
    # No other module holds weights than those counted and batch norms.
    counted = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.RNNBase, nn.BatchNorm1d)
    for name, module in net.named_modules():
        if any(True for _ in module.parameters(recurse=False)):
            assert isinstance(module, counted), name
    # Every family ends with the embedding layer and the softmax head.
    assert net.embedding.out_features == SMALL["embedding_dim"]
    assert net.head.in_features == SMALL["embedding_dim"]
    assert net.head.out_features == SMALL["n_classes"]


def test_resnet_11_structure():
    net = EmbeddingNetwork()
    convs = [m for m in net.modules() if isinstance(m, nn.Conv1d)]
    assert len(convs) == 9
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == [
        (64, 48, 2),  # stem: 64 mel bins -> width 48
        (48, 48, 2),  # block 1
        (48, 48, 1),
        (48, 48, 1),  # block 2
        (48, 48, 1),
        (48, 96, 2),  # block 3
        (96, 96, 1),
        (96, 192, 2),  # block 4
        (192, 192, 1),
    ]
    assert net.embedding.in_features == 2 * 192
    # The CNN has the same convolutions, without skip connections.
    cnn = EmbeddingNetwork(architecture="cnn")
    cnn.load_state_dict(net.state_dict())
    x, lengths = _padded_batch([40, 30], 64, 40)
    with torch.no_grad():
        assert not torch.allclose(
            cnn.eval().embed(x, lengths), net.eval().embed(x, lengths)
        )


@pytest.mark.parametrize("architecture", ["resnet", "cnn"])
def test_time_resolution_is_halved_by_strided_layers(architecture):
    # With 300 frames, ResNet-11 pools over ceil(300 / 16) = 19 frames.
    net = EmbeddingNetwork(architecture=architecture).eval()
    x = torch.randn(1, 64, 300)
    lengths = torch.tensor([300])
    [(features, out_lengths)] = net.backbone(x, lengths)
    assert features.shape == (1, 192, 19)
    assert out_lengths.tolist() == [19]
    # Every block: ResNet-11's 4 blocks at 1/4, 1/4, 1/8 and 1/16 of the frames.
    levels = net.backbone(x, lengths, every_block=True)
    assert [f.shape[1:] for f, _ in levels] == [
        (48, 75),
        (48, 75),
        (96, 38),
        (192, 19),
    ]
    assert [n.tolist() for _, n in levels] == [[75], [75], [38], [19]]


@pytest.mark.parametrize("pooling", ["blocks", "attentive"])
@pytest.mark.parametrize("architecture", ["resnet", "cnn", "fc", "gru"])
def test_other_poolings_are_length_aware(architecture, pooling):
    """With every pooling, a clip's embedding ignores the padding."""
    net = EmbeddingNetwork(architecture=architecture, pooling=pooling).eval()
    x = torch.randn(2, 64, 120)
    alone = net.embed(x[:1, :, :70], torch.tensor([70]))
    batched = net.embed(x, torch.tensor([70, 120]))
    torch.testing.assert_close(batched[:1], alone, atol=1e-5, rtol=1e-4)
    if pooling == "blocks" and architecture == "resnet":
        assert net.embedding.in_features == 2 * (48 + 48 + 96 + 192)
    if pooling == "attentive":
        # Two 1 x 1 convolutions of attention, not counted in n_layers.
        convs = [m for m in net.pool.modules() if isinstance(m, torch.nn.Conv1d)]
        assert len(convs) == 2


def test_attentive_pooling_matches_a_frame_by_frame_reference():
    torch.manual_seed(0)
    pool = _AttentiveStatisticsPooling(channels=5, hidden=3).requires_grad_(False)
    x = torch.randn(2, 5, 9)
    n = [9, 4]
    mask = (torch.arange(9)[None, :] < torch.tensor(n)[:, None]).unsqueeze(1)
    out = pool(x, mask.float())
    first, second = pool.score[0], pool.score[2]
    for i, length in enumerate(n):
        for c in range(5):
            scores = []
            for t in range(length):
                hidden = torch.tanh(first.weight[:, :, 0] @ x[i, :, t] + first.bias)
                score = second.weight[c, :, 0] @ hidden + second.bias[c]
                scores.append(score.item())
            w = torch.softmax(torch.tensor(scores), dim=0)
            values = x[i, c, :length]
            mean = float((w * values).sum())
            std = float((w * (values - mean) ** 2).sum()) ** 0.5
            assert out[i, c].item() == pytest.approx(mean, abs=1e-5)
            assert out[i, 5 + c].item() == pytest.approx(std, abs=1e-4)


@pytest.mark.parametrize("architecture", ["ResNet", "transformer", "", None, 11])
def test_unknown_architecture_raises(architecture):
    with pytest.raises(ValueError, match="architecture must be one of"):
        EmbeddingNetwork(architecture=architecture)
    with pytest.raises(ValueError, match=repr(architecture)):
        check_architecture(architecture, 11)


@pytest.mark.parametrize("n_layers", [5, 16, 0, -11, 11.5, 11.0, "11", True, None])
def test_invalid_n_layers_raises(n_layers):
    message = rf"n_layers must be an integer from 6 to 15; got {n_layers!r}\."
    with pytest.raises(ValueError, match=message):
        EmbeddingNetwork(n_layers=n_layers)
    with pytest.raises(ValueError, match=message):
        check_architecture("lstm", n_layers)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("n_layers", [MIN_LAYERS, np.int64(11), MAX_LAYERS])
def test_check_architecture_accepts_valid_values(architecture, n_layers):
    assert check_architecture(architecture, n_layers) is None


def test_numpy_scalar_hyperparameters_are_accepted():
    net = EmbeddingNetwork(
        architecture="gru",
        n_layers=np.int64(7),
        n_mels=np.int32(8),
        n_classes=np.int64(3),
        embedding_dim=np.int64(16),
        width=np.int64(8),
        dropout=np.float32(0.2),
    )
    assert type(net.n_layers) is int and type(net.n_mels) is int
    x, lengths = _padded_batch([5, 2], 8, 5)
    assert net(x, lengths)[1].shape == (2, 16)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_classes": 1}, r"n_classes must be an integer >= 2; got 1\."),
        ({"n_classes": 2.0}, r"n_classes must be an integer >= 2; got 2\.0\."),
        ({"n_mels": 0}, r"n_mels must be an integer >= 1; got 0\."),
        ({"embedding_dim": -3}, r"embedding_dim must be an integer >= 1; got -3\."),
        ({"width": "64"}, r"width must be an integer >= 1; got '64'\."),
        ({"dropout": 1.0}, r"dropout must be a float in \[0, 1\); got 1\.0\."),
        ({"dropout": -0.1}, r"dropout must be a float in \[0, 1\); got -0\.1\."),
        ({"dropout": "0.1"}, r"dropout must be a float in \[0, 1\); got '0\.1'\."),
        ({"dilation": 0}, r"dilation must be an integer >= 1; got 0\."),
        ({"dilation": 1.5}, r"dilation must be an integer >= 1; got 1\.5\."),
        ({"deltas": 3}, r"deltas must be an integer from 0 to 2; got 3\."),
        ({"deltas": -1}, r"deltas must be an integer from 0 to 2; got -1\."),
    ],
)
def test_invalid_hyperparameters_raise(params, message):
    with pytest.raises(ValueError, match=message):
        EmbeddingNetwork(**params)


def test_forward_rejects_inconsistent_input():
    net = _small_net("resnet", 6)
    x = torch.randn(2, SMALL["n_mels"], 10)
    with pytest.raises(ValueError, match="x has 9 mel bins but the network expects"):
        net(torch.randn(2, 9, 10), torch.tensor([10, 5]))
    with pytest.raises(ValueError, match=r"shape \(batch, n_mels, n_frames\)"):
        net(x[0], torch.tensor([10]))
    with pytest.raises(ValueError, match=r"lengths must be an integer tensor"):
        net(x, torch.tensor([10.0, 5.0]))
    with pytest.raises(ValueError, match=r"lengths must be an integer tensor"):
        net(x, torch.tensor([10]))
    with pytest.raises(ValueError, match=r"lengths must be in \[1, n_frames=10\]"):
        net(x, torch.tensor([10, 0]))
    with pytest.raises(ValueError, match=r"lengths must be in \[1, n_frames=10\]"):
        net(x, torch.tensor([11, 5]))


def test_default_resnet_learns_to_separate_two_classes():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    y = torch.arange(16) % 2
    lengths = torch.randint(40, 81, (16,), generator=generator)
    x = torch.randn(16, 64, 80, generator=generator) + 0.5 * (2 * y - 1)[:, None, None]
    x = x * (torch.arange(80)[None, None, :] < lengths[:, None, None])
    net = EmbeddingNetwork(n_classes=2)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        logits, _ = net(x, lengths)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        predictions = net.eval()(x, lengths)[0].argmax(dim=1)
    assert (predictions == y).all()


@pytest.mark.parametrize("n_layers", [6, 7, 11, 15])
@pytest.mark.parametrize("architecture", ["resnet", "cnn"])
def test_conv2d_stem_counts_layers_and_ignores_padding(architecture, n_layers):
    net = _small_net(architecture, n_layers, stem="conv2d")
    assert _count_weight_layers(net) == n_layers
    assert sum(isinstance(m, nn.Conv2d) for m in net.modules()) == 1
    _warm_up_running_statistics(net, SMALL["n_mels"])
    x, lengths = _padded_batch([23, 9, 1], SMALL["n_mels"], 23)
    _assert_each_clip_alone_matches_the_batch(net, x, lengths)


def test_conv2d_stem_training_mode_ignores_padding_values():
    net = _small_net("resnet", 11, stem="conv2d").train()
    x, lengths = _padded_batch([20, 12], SMALL["n_mels"], 20, garbage=0.0)
    y, _ = _padded_batch([20, 12], SMALL["n_mels"], 20, garbage=1e3)
    torch.manual_seed(0)
    a = net(x, lengths)[1]
    torch.manual_seed(0)
    b = net(y, lengths)[1]
    torch.testing.assert_close(a, b, rtol=0, atol=1e-4)


def test_unknown_stem_raises():
    with pytest.raises(ValueError, match="stem must be one of"):
        EmbeddingNetwork(stem="conv3d")


@pytest.mark.parametrize("architecture", ["resnet", "lstm"])
def test_initialize_weights_draws_torch_defaults_from_a_generator(architecture):
    net = EmbeddingNetwork(architecture=architecture, n_layers=6, width=8)
    initialize_weights(net, torch.Generator().manual_seed(3))
    again = EmbeddingNetwork(architecture=architecture, n_layers=6, width=8)
    torch.manual_seed(99)  # the global generator plays no part
    initialize_weights(again, torch.Generator().manual_seed(3))
    for (name, a), b in zip(
        net.state_dict().items(), again.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    # The distributions of torch's reset_parameters: weights uniform in
    # +-1/sqrt(fan_in) (Kaiming-uniform with a=sqrt(5)), or +-1/sqrt(hidden).
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Linear)):
            bound = 1 / m.weight[0].numel() ** 0.5
            assert m.weight.abs().max() <= bound
            assert m.weight.abs().max() > 0.8 * bound
        if isinstance(m, torch.nn.LSTM):
            assert all(w.abs().max() <= 1 / 16**0.5 for w in m.parameters())


def test_dropout_draws_from_its_generator():
    drop = EmbeddingNetwork(dropout=0.5).dropout.train()
    x = torch.ones(4, 100)
    use_generator(drop, torch.Generator().manual_seed(0))
    first = drop(x)
    use_generator(drop, torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    torch.testing.assert_close(drop(x), first)
    assert set(first.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(drop.eval()(x), x)


def test_attentive_pooling_keeps_a_small_spread_in_bfloat16():
    """The centred variance in float32: bfloat16 inputs (CUDA autocast) with a
    large mean keep their standard deviation."""
    torch.manual_seed(0)
    pool = _AttentiveStatisticsPooling(channels=4, hidden=3)
    x = 20.0 + torch.randn(2, 4, 200)
    mask = torch.ones(2, 1, 200)
    full = pool(x, mask)
    half = pool.to(torch.bfloat16)(x.to(torch.bfloat16), mask.to(torch.bfloat16))
    torch.testing.assert_close(half[:, 4:].float(), full[:, 4:], atol=0.1, rtol=0.1)


@pytest.mark.parametrize(
    "architecture, params",
    [(a, {}) for a in ARCHITECTURES]
    + [("resnet", {"stem": "conv2d"})]
    + [("resnet", {"pooling": p}) for p in ("blocks", "attentive")]
    + [("resnet", {"dilation": 2}), ("cnn", {"dilation": 3})]
    + [("resnet", {"deltas": 2}), ("resnet", {"deltas": 1, "stem": "conv2d"})]
    + [("resnet", {"squeeze_excitation": True}), ("cnn", {"squeeze_excitation": True})],
)
def test_unpadded_batches_skip_masking_with_the_same_result(
    architecture, params, monkeypatch
):
    # A batch whose clips all fill it (random training crops) takes the fast
    # path: no masks, torch's batch norm. It must train exactly as the masked
    # path does on the same clips padded by a frame: outputs, gradients and
    # running statistics, in training mode.
    from sklearn_tser import _networks

    masked = _small_net(architecture, 11, dropout=0.0, **params).train()
    fast = _small_net(architecture, 11, dropout=0.0, **params).train()
    fast.load_state_dict(masked.state_dict())
    x, lengths = _padded_batch([21, 21, 21], SMALL["n_mels"], 21)
    padded = F.pad(x, (0, 1), value=7.0)

    masks_built = []
    time_mask = _networks._time_mask
    monkeypatch.setattr(
        _networks,
        "_time_mask",
        lambda n, *args: masks_built.append(n is not None) or time_mask(n, *args),
    )
    outputs_fast = fast(x, lengths)
    assert not any(masks_built)  # not a mask on the fast path
    outputs_masked = masked(padded, lengths)
    assert any(masks_built)

    for a, b in zip(outputs_fast, outputs_masked, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    sum(o.square().sum() for o in outputs_fast).backward()
    sum(o.square().sum() for o in outputs_masked).backward()
    for (name, a), b in zip(fast.named_parameters(), masked.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-4, msg=name)
    for (name, a), b in zip(fast.named_buffers(), masked.buffers(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)


def test_unpadded_pooling_is_taken_in_float32():
    # Without padding the statistics are plain means; in float32 even for
    # bfloat16 features (CUDA autocast), as the masked sums are.
    from sklearn_tser._networks import _masked_statistics_pooling

    x = (20.0 + torch.randn(2, 4, 200, generator=torch.Generator().manual_seed(0))).to(
        torch.bfloat16
    )
    pooled = _masked_statistics_pooling(x, None, None)
    assert pooled.dtype == torch.float32
    reference = x.double()
    mean = reference.mean(dim=2)
    std = (reference - mean[:, :, None]).square().mean(dim=2).sqrt()
    torch.testing.assert_close(pooled.double(), torch.cat([mean, std], dim=1))


def test_unpadded_batch_norm_returns_float32():
    # The masked statistics come out in float32 under CUDA autocast (their sums
    # are taken in float32); torch's batch norm on the unpadded path would keep
    # bfloat16, so it is cast.
    from sklearn_tser._networks import _MaskedBatchNorm1d

    norm = _MaskedBatchNorm1d(4).train()
    x = torch.randn(3, 4, 10, generator=torch.Generator().manual_seed(0))
    out = norm(x.to(torch.bfloat16))
    assert out.dtype == torch.float32
    reference = _MaskedBatchNorm1d(4).train()(x.to(torch.bfloat16).float())
    torch.testing.assert_close(out, reference, rtol=1e-2, atol=1e-2)


def test_network_defaults_are_the_classifiers():
    """EmbeddingNetwork() is the network the default classifier trains: every
    parameter the classifier passes to it has the same default in both (the
    classifier's width once became 48 while the network's stayed 64)."""
    from sklearn_tser import EmotionEmbeddingClassifier
    from sklearn_tser._training import NETWORK_PARAMS

    classifier = EmotionEmbeddingClassifier().get_params()
    network = inspect.signature(EmbeddingNetwork).parameters
    assert {name: network[name].default for name in NETWORK_PARAMS} == {
        name: classifier[name] for name in NETWORK_PARAMS
    }


def _receptive_field_by_gradient(net, n_frames=600):
    """Input frames that reach the middle output frame of the backbone.

    Positive weights and input keep every ReLU open, so that no path from an
    input frame is cut by a zero gradient.
    """
    net.eval()
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.abs_()
    x = torch.rand(1, net.n_mels, n_frames, requires_grad=True)
    (features, _), *_ = net.backbone(x, None)
    features[0, :, features.shape[2] // 2].sum().backward()
    reached = torch.nonzero(x.grad[0].abs().sum(dim=0)).squeeze(1)
    return int(reached[-1] - reached[0]) + 1


def _receptive_field_by_formula(net):
    """1 + sum over kernel-3 convolutions of 2 * dilation * jump, where jump
    is the product of the strides before the convolution."""
    field, jump = 1, 1
    for module in net.backbone.modules():
        if isinstance(module, nn.Conv1d):
            field += 2 * module.dilation[0] * jump
            jump *= module.stride[0]
    return field


@pytest.mark.parametrize("dilation", [1, 2, 3])
@pytest.mark.parametrize("n_layers", [6, 11, 12])
@pytest.mark.parametrize("architecture", ["resnet", "cnn"])
def test_dilation_widens_the_receptive_field_as_documented(
    architecture, n_layers, dilation
):
    net = _small_net(architecture, n_layers, dilation=dilation)
    field = _receptive_field_by_gradient(net)
    assert field == _receptive_field_by_formula(net)
    if dilation == 1:
        return
    # Only the stride-1 convolutions after the stem are dilated; widening is
    # linear in the dilation; ResNet-11 is the one the docs describe.
    undilated = _receptive_field_by_gradient(_small_net(architecture, n_layers))
    strided = [
        m
        for m in net.backbone.modules()
        if isinstance(m, nn.Conv1d) and m.stride[0] > 1
    ]
    assert all(m.dilation == (1,) for m in strided)
    assert field > undilated
    if architecture == "resnet" and n_layers == 11:
        # Stem, then blocks at jumps 2, 4, 4, 8: 103 frames, and 72 more per
        # unit of dilation (stride-1 convolutions at jumps 4, 4, 4, 8, 16).
        assert undilated == 103
        assert field == 103 + 72 * (dilation - 1)


@pytest.mark.parametrize("n_layers", [6, 11, 15])
@pytest.mark.parametrize("architecture", ["resnet", "cnn"])
def test_dilated_network_is_invariant_to_padding(architecture, n_layers):
    net = _warm_up_running_statistics(
        _small_net(architecture, n_layers, dilation=3), SMALL["n_mels"]
    )
    clip_lengths = [60, 1, 3, 17, 33]
    x, lengths = _padded_batch(clip_lengths, SMALL["n_mels"], 64, seed=2)
    _assert_each_clip_alone_matches_the_batch(net, x, lengths)


@pytest.mark.parametrize("n_layers", [6, 11, 12, 15])
@pytest.mark.parametrize("architecture", ["resnet", "cnn"])
def test_default_dilation_builds_the_undilated_network(architecture, n_layers):
    """The default (dilation 1) is the network as it was before the option:
    every convolution of kernel 3, padding 1, dilation 1, without bias."""
    net = _small_net(architecture, n_layers)
    convolutions = [m for m in net.modules() if isinstance(m, nn.Conv1d)]
    assert len(convolutions) == n_layers - 2
    for m in convolutions:
        assert (m.kernel_size, m.padding, m.dilation) == ((3,), (1,), (1,))
        assert m.bias is None


def test_dilation_is_ignored_by_families_without_convolutions():
    torch.manual_seed(0)
    plain = _small_net("gru", 8)
    torch.manual_seed(0)
    dilated = _small_net("gru", 8, dilation=4)
    x, lengths = _padded_batch([9, 4], SMALL["n_mels"], 9)
    with torch.no_grad():
        torch.testing.assert_close(
            plain.eval().embed(x, lengths), dilated.eval().embed(x, lengths)
        )


def _deltas_by_loop(x, order, width=9):
    """Slow reference of time_deltas for one unpadded clip ``(n_mels, n_frames)``:
    the HTK regression formula frame by frame, edges repeated."""
    half = width // 2
    n_frames = x.shape[1]
    bands, current = [x], x
    for _ in range(order):
        delta = np.zeros_like(current)
        for t in range(n_frames):
            for n in range(1, half + 1):
                ahead = current[:, min(t + n, n_frames - 1)]
                behind = current[:, max(t - n, 0)]
                delta[:, t] += n * (ahead - behind)
        current = delta / (2 * sum(n * n for n in range(1, half + 1)))
        bands.append(current)
    return np.concatenate(bands)


@pytest.mark.parametrize("order", [1, 2])
def test_time_deltas_match_a_frame_by_frame_reference(order):
    lengths = [30, 3, 17]
    x, lengths_t = _padded_batch(lengths, 4, 30, seed=2)
    out = time_deltas(x, lengths_t, order).numpy()
    assert out.shape == (3, 4 * (1 + order), 30)
    for i, length in enumerate(lengths):
        expected = _deltas_by_loop(x[i, :, :length].numpy().astype(np.float64), order)
        np.testing.assert_allclose(out[i, :, :length], expected, rtol=0, atol=1e-5)
        assert not out[i, :, length:].any()  # padding: zeros, never garbage
    # Without padding (lengths=None), the same values; librosa agrees on order 1.
    full = time_deltas(x[:1], None, order).numpy()
    np.testing.assert_allclose(full, out[:1], rtol=0, atol=1e-6)
    import librosa

    np.testing.assert_allclose(
        full[0, 4:8],
        librosa.feature.delta(x[0].numpy(), width=9, mode="nearest"),
        rtol=0,
        atol=1e-5,
    )


def test_time_deltas_of_order_0_return_the_input():
    x = torch.randn(2, 4, 10)
    assert time_deltas(x, None, 0) is x


@pytest.mark.parametrize("stem", ["conv1d", "conv2d"])
@pytest.mark.parametrize("architecture", ["resnet", "fc", "gru"])
def test_deltas_widen_the_input_and_ignore_padding(architecture, stem):
    net = _warm_up_running_statistics(
        _small_net(architecture, 7, deltas=2, stem=stem), SMALL["n_mels"]
    )
    first = next(
        m
        for m in net.modules()
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear, nn.GRU))
    )
    if isinstance(first, nn.Conv2d):
        assert first.in_channels == 3  # static, delta, delta-delta planes
    elif isinstance(first, nn.Conv1d):
        assert first.in_channels == 3 * SMALL["n_mels"]
    elif isinstance(first, nn.Linear):
        assert first.in_features == 3 * SMALL["n_mels"]
    else:
        assert first.input_size == 3 * SMALL["n_mels"]
    clip_lengths = [37, 1, 2, 16]
    x, lengths = _padded_batch(clip_lengths, SMALL["n_mels"], 40)
    _assert_each_clip_alone_matches_the_batch(net, x, lengths)


@pytest.mark.parametrize("n_layers", [6, 11, 15])
@pytest.mark.parametrize("architecture", ["resnet", "cnn"])
def test_squeeze_excitation_gates_every_block_and_ignores_padding(
    architecture, n_layers
):
    net = _warm_up_running_statistics(
        _small_net(architecture, n_layers, squeeze_excitation=True), SMALL["n_mels"]
    )
    blocks = [m for m in net.backbone.layers if hasattr(m, "gate")]
    assert blocks and all(b.gate is not None for b in blocks)
    # The gates' Linear layers are not counted in n_layers.
    assert _count_weight_layers(net) == n_layers + 2 * len(blocks)
    clip_lengths = [60, 1, 3, 17, 33]
    x, lengths = _padded_batch(clip_lengths, SMALL["n_mels"], 64, seed=3)
    _assert_each_clip_alone_matches_the_batch(net, x, lengths)


def test_squeeze_excitation_matches_a_channel_by_channel_reference():
    from sklearn_tser._networks import _SqueezeExcitation

    torch.manual_seed(0)
    gate = _SqueezeExcitation(channels=8).requires_grad_(False)
    assert (gate.squeeze.in_features, gate.squeeze.out_features) == (8, 2)
    x = torch.randn(2, 8, 9)
    n = [9, 4]
    mask = (torch.arange(9)[None, :] < torch.tensor(n)[:, None]).unsqueeze(1)
    out = gate(x, mask.float())
    for i, length in enumerate(n):
        means = [
            sum(x[i, c, t].item() for t in range(length)) / length for c in range(8)
        ]
        hidden = [
            max(
                0.0,
                sum(gate.squeeze.weight[h, c].item() * means[c] for c in range(8))
                + gate.squeeze.bias[h].item(),
            )
            for h in range(2)
        ]
        for c in range(8):
            z = sum(gate.excite.weight[c, h].item() * hidden[h] for h in range(2))
            weight = 1.0 / (1.0 + math.exp(-(z + gate.excite.bias[c].item())))
            for t in range(length):
                assert out[i, c, t].item() == pytest.approx(
                    weight * x[i, c, t].item(), abs=1e-5
                )
    # Without a mask (no padding) the squeeze is the plain mean.
    torch.testing.assert_close(gate(x, None)[:1], out[:1])


def test_squeeze_excitation_off_builds_the_network_without_gates():
    """The default is the network as it was before the option."""
    plain = _small_net("resnet", 11)
    assert not any("gate" in name for name, _ in plain.named_parameters())
    gated = _small_net("resnet", 11, squeeze_excitation=True)
    plain_names = {name for name, _ in plain.named_parameters()}
    gated_names = {name for name, _ in gated.named_parameters()}
    assert plain_names < gated_names
    assert all(".gate." in name for name in gated_names - plain_names)


@pytest.mark.parametrize("value", [1, 0, "yes", None, 1.0])
def test_squeeze_excitation_must_be_a_bool(value):
    with pytest.raises(TypeError, match="squeeze_excitation must be a bool; got"):
        EmbeddingNetwork(squeeze_excitation=value)


def test_squeeze_excitation_accepts_numpy_bools():
    # As from a GridSearchCV grid of np.array([False, True]).
    for value in (True, False):
        net = _small_net("resnet", 11, squeeze_excitation=np.bool_(value))
        blocks = [m for m in net.backbone.layers if hasattr(m, "gate")]
        assert len(blocks) == 4  # ResNet-11: four blocks
        assert all((b.gate is not None) == value for b in blocks)


@pytest.mark.parametrize(("stride", "dilation"), [(1, 1), (2, 1), (1, 2), (1, 3)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_convolutions_compute_torch_conv1d(stride, dilation, channels_last):
    # The backbone's convolutions run as 2-D ones on channels-last memory:
    # the same values and gradients as torch's Conv1d, whatever the input's
    # layout.
    from sklearn_tser._networks import _conv3

    torch.manual_seed(0)
    conv = _conv3(5, 7, stride=stride, dilation=dilation)
    x = torch.randn(3, 5, 23)
    if channels_last:
        x = x.transpose(1, 2).contiguous().transpose(1, 2)
    x.requires_grad_()
    reference_x = x.detach().contiguous().requires_grad_()
    out = conv(x)
    expected = F.conv1d(
        reference_x, conv.weight, stride=stride, padding=dilation, dilation=dilation
    )
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    weights = torch.randn(out.shape)
    (grad_x, grad_w) = torch.autograd.grad((out * weights).sum(), (x, conv.weight))
    (expected_x, expected_w) = torch.autograd.grad(
        (expected * weights).sum(), (reference_x, conv.weight)
    )
    torch.testing.assert_close(grad_x, expected_x, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_w, expected_w, rtol=1e-5, atol=1e-5)
    assert out.stride(1) == 1  # channels-last out


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_computes_torch_batch_norm(training):
    # Unpadded batches take torch's batch norm over a 4-D view: the outputs,
    # gradients and running statistics of torch.nn.BatchNorm1d, in training
    # and, after it, in evaluation mode.
    from sklearn_tser._networks import _MaskedBatchNorm1d

    generator = torch.Generator().manual_seed(0)
    ours, reference = _MaskedBatchNorm1d(4), nn.BatchNorm1d(4)
    for norm in (ours, reference):
        with torch.no_grad():
            norm.weight.copy_(torch.tensor([1.0, 2.0, 0.5, -1.0]))
            norm.bias.copy_(torch.tensor([0.0, 1.0, -1.0, 3.0]))

    def compare():
        x = 2.0 + 3.0 * torch.randn(5, 4, 9, generator=generator)
        x_ours = x.transpose(1, 2).contiguous().transpose(1, 2).requires_grad_()
        x_reference = x.clone().requires_grad_()
        out, expected = ours(x_ours), reference(x_reference)
        torch.testing.assert_close(out, expected)
        out.square().sum().backward()
        expected.square().sum().backward()
        torch.testing.assert_close(x_ours.grad, x_reference.grad)

    for _ in range(3):
        compare()
    if not training:
        ours.eval(), reference.eval()
        compare()
    for a, b in zip(ours.buffers(), reference.buffers(), strict=True):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(ours.weight.grad, reference.weight.grad)
    torch.testing.assert_close(ours.bias.grad, reference.bias.grad)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("lengths", [[23, 23, 23], [23, 16, 9]])
def test_block_shortcut_is_every_other_frame_and_zero_channels(lengths, training):
    # A block of stride 2 adds to its convolutions' output every other frame
    # of its input, first frame included (ceil(L / 2) of them), and zeros
    # for its new channels: the reference here slices and pads.
    from sklearn_tser._networks import _apply_mask, _Block, _time_mask

    torch.manual_seed(0)
    block = _Block(4, 6, stride=2, residual=True).train(training)
    x, lengths = _padded_batch(lengths, 4, 23)
    x = _apply_mask(x, _time_mask(lengths, 23, x.dtype))  # as layers leave it
    n = None if len(set(lengths.tolist())) == 1 else lengths
    out, out_lengths = block(x, n)

    convolved, halved = block.conv1(x, n)
    mask = _time_mask(halved, convolved.shape[2], convolved.dtype)
    shortcut = F.pad(x[:, :, ::2], (0, 0, 0, 2))
    expected = block.norm2(block.conv2(convolved), mask) + shortcut
    expected = _apply_mask(F.relu(expected), mask)
    assert out.shape == (3, 6, 12)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("architecture", ["resnet", "cnn"])
def test_backbone_trains_channels_last(architecture):
    # Every layer's features and their gradients stay channels-last in a
    # training step: a layer that mixed layouts would copy its tensors or
    # take torch's slow strided kernels.
    net = _small_net(architecture, 11).train()
    layouts = []

    def record(module, inputs, output):
        features = output[0]
        layouts.append(("features", type(module).__name__, features.stride(1)))
        features.register_hook(
            lambda grad: layouts.append(
                ("gradient", type(module).__name__, grad.stride(1))
            )
        )

    for layer in net.backbone.layers:
        layer.register_forward_hook(record)
    x, lengths = _padded_batch([32, 32, 32, 32], SMALL["n_mels"], 32)
    logits, embeddings = net(x, lengths)
    (logits.square().sum() + embeddings.square().sum()).backward()
    assert len(layouts) == 2 * len(net.backbone.layers)
    assert all(stride == 1 for *_, stride in layouts), layouts


@pytest.mark.parametrize("n_layers", [6, 11, 15])
def test_zero_init_residual_starts_every_block_as_its_shortcut(n_layers):
    """With zero scales at the end of each branch, a block's output at
    initialisation is its shortcut through the ReLU: the input subsampled by
    the stride, the new channels zero (computed here frame by frame)."""
    from sklearn_tser._networks import _Block

    net = _small_net("resnet", n_layers, zero_init_residual=True)
    blocks = [m for m in net.backbone.layers if isinstance(m, _Block)]
    assert blocks  # zero as built, and as drawn again
    assert all(not b.norm2.weight.any() for b in blocks)
    initialize_weights(net, torch.Generator().manual_seed(0))
    net.train()  # batch statistics: the branch is zero whatever they are
    torch.manual_seed(1)
    for block in blocks:
        assert torch.equal(block.norm2.weight, torch.zeros_like(block.norm2.weight))
        n_in = block.conv1.conv.in_channels
        x = torch.relu(torch.randn(3, n_in, 11))
        lengths = torch.tensor([11, 7, 4])
        x = x * (torch.arange(11)[None, :] < lengths[:, None])[:, None, :]
        out, out_lengths = block(x, lengths)
        n_out = block.conv2.out_channels
        for i, length in enumerate(out_lengths.tolist()):
            for t in range(out.shape[2]):
                for c in range(n_out):
                    source = t * block.stride
                    expected = (
                        x[i, c, source].item() if c < n_in and t < length else 0.0
                    )
                    assert out[i, c, t].item() == pytest.approx(expected, abs=1e-6)


def test_zero_init_residual_leaves_the_cnn_and_the_default_alone():
    """The CNN's blocks have no shortcut (a zero branch would zero them) and
    the default draws the batch normalisation's ones."""
    for architecture, zero in (("cnn", True), ("resnet", False)):
        net = _small_net(architecture, 11, zero_init_residual=zero)
        for _ in range(2):  # as built, then as drawn again
            scales = [m.weight for m in net.modules() if isinstance(m, nn.BatchNorm1d)]
            assert scales and all(torch.equal(w, torch.ones_like(w)) for w in scales)
            initialize_weights(net, torch.Generator().manual_seed(0))


def test_zero_init_residual_must_be_a_bool():
    with pytest.raises(TypeError, match="zero_init_residual must be a bool; got 1"):
        _small_net("resnet", 11, zero_init_residual=1)
