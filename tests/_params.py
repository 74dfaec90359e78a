"""Shared test settings; pytest puts tests/ on the path, so modules import them."""

# A classifier small enough to fit in about a second on a few short clips;
# test modules override what they need, e.g. ``{**TINY, "batch_size": 64}``.
TINY = dict(
    n_layers=6,
    width=8,
    embedding_dim=8,
    pretrain_epochs=2,
    triplet_epochs=1,
    batch_size=16,
    crop_frames=None,
    random_state=0,
)
