"""scikit-learn's estimator checks on every public estimator.

Both estimators declare their true input kinds with ``__sklearn_tags__``:
``LogMelTransformer`` reads waveforms (a 2-D array ``(n_clips, n_samples)`` or a
list of 1-D clips), ``EmotionEmbeddingClassifier`` reads 3-D NaN-padded
spectrograms ``(n_clips, n_mels, n_frames)`` and takes a 2-D array as clips of one
frame. So scikit-learn's 2-D test data is valid input for both, and every check
runs; the few that cannot apply are listed below with the reason.
"""

import pytest

# A tiny configuration: the checks fit on 2-D blobs (one-frame clips), so a
# 6-layer network of width 8 and large batches keep each fit well under a second.
from _params import TINY as TINY_BASE
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_tser import EmotionEmbeddingClassifier, LogMelTransformer

TINY = {**TINY_BASE, "batch_size": 64}

EXPECTED_FAILED_CHECKS = {
    "LogMelTransformer": {
        "check_n_features_in_after_fitting": (
            "stateless transformer of clips of any length: a clip with another "
            "number of samples than at fit is valid input, not a feature mismatch"
        ),
    },
    "EmotionEmbeddingClassifier": {},
}


def expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS[type(estimator).__name__]


ESTIMATORS = [LogMelTransformer(), EmotionEmbeddingClassifier(**TINY)]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_tags_declare_the_true_input_kinds(estimator):
    tags = get_tags(estimator)
    assert not tags.input_tags.sparse
    assert not tags.input_tags.allow_nan  # NaN is padding, not missing values
    assert tags.transformer_tags.preserves_dtype == ["float32"]
    if isinstance(estimator, LogMelTransformer):
        assert tags.input_tags.two_d_array  # (n_clips, n_samples) waveforms
        assert not tags.input_tags.three_d_array
        assert not tags.requires_fit  # stateless
    else:
        assert tags.input_tags.three_d_array  # (n_clips, n_mels, n_frames)
        assert tags.input_tags.two_d_array  # one-frame clips
        assert tags.target_tags.required
