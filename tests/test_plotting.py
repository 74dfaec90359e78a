"""Tests of the Display objects in sklearn_tser.plotting."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

from sklearn_tser import EmotionEmbeddingClassifier, LogMelTransformer  # noqa: E402
from sklearn_tser.datasets import make_emotional_speech  # noqa: E402
from sklearn_tser.plotting import CentroidAnglesDisplay, EmbeddingDisplay  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return make_emotional_speech(
        n_samples=48, n_classes=3, max_duration=1.5, random_state=0
    )


@pytest.fixture(scope="module")
def pipe(data):
    pipe = Pipeline(
        [
            ("mel", LogMelTransformer(n_mels=16)),
            (
                "clf",
                EmotionEmbeddingClassifier(
                    n_layers=6,
                    width=8,
                    embedding_dim=8,
                    pretrain_epochs=2,
                    triplet_epochs=1,
                    random_state=0,
                ),
            ),
        ]
    )
    return pipe.fit(data.data, data.target)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("projection", ["pca", "tsne"])
def test_embedding_display_from_pipeline(pipe, data, projection):
    disp = EmbeddingDisplay.from_estimator(
        pipe, data.data, data.target, projection=projection
    )
    n_classes = len(pipe.classes_)
    assert disp.points_2d.shape == (len(data.data), 2)
    assert disp.centroids_2d.shape == (n_classes, 2)
    assert np.all(np.isfinite(disp.points_2d))
    assert list(disp.display_labels) == list(pipe.classes_)
    assert disp.projection == projection
    assert disp.figure_ is disp.ax_.figure
    assert len(disp.scatter_) == n_classes
    assert [t.get_text() for t in disp.centroid_texts_] == list(pipe.classes_)
    legend = [t.get_text() for t in disp.ax_.get_legend().get_texts()]
    assert legend == [*pipe.classes_, "centroid of the training clips"]


def test_embedding_display_pca_centroids_match_projection(pipe, data):
    """PCA centroids are the projection of the classifier's centroids."""
    from sklearn.decomposition import PCA

    disp = EmbeddingDisplay.from_estimator(pipe, data.data, data.target)
    pca = PCA(n_components=2, random_state=0).fit(pipe.transform(data.data))
    np.testing.assert_allclose(
        disp.centroids_2d, pca.transform(pipe[-1].centroids_), atol=1e-5
    )


def test_embedding_display_from_classifier_uses_given_ax(pipe, data):
    S = pipe[0].transform(data.data)
    fig, ax = plt.subplots()
    disp = EmbeddingDisplay.from_estimator(pipe[-1], S, data.target, ax=ax)
    assert disp.ax_ is ax
    assert disp.figure_ is fig


def test_embedding_display_from_embeddings_without_centroids():
    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b"], 10)
    disp = EmbeddingDisplay.from_embeddings(rng.standard_normal((20, 4)), y)
    assert disp.centroids_2d is None
    assert disp.centroid_markers_ is None
    assert disp.centroid_texts_ == []


def test_embedding_display_warns_about_clips_it_does_not_draw():
    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b", "c"], 4)
    with pytest.warns(UserWarning, match=r"4 of 12 clips are not drawn: .*\['c'\]"):
        disp = EmbeddingDisplay.from_embeddings(
            rng.standard_normal((12, 4)), y, display_labels=["a", "b"]
        )
    assert sum(len(s.get_offsets()) for s in disp.scatter_) == 8


def test_embedding_display_bad_projection(pipe, data):
    with pytest.raises(ValueError, match="projection must be one of.*'umap'"):
        EmbeddingDisplay.from_estimator(pipe, data.data, data.target, projection="umap")


def test_embedding_display_bad_shape():
    with pytest.raises(ValueError, match="one row per label"):
        EmbeddingDisplay.from_embeddings(np.zeros((5, 3)), ["a", "b"])


def test_centroid_angles_display(pipe):
    disp = CentroidAnglesDisplay.from_estimator(pipe)
    n = len(pipe.classes_)
    np.testing.assert_array_equal(disp.angles, pipe[-1].angles_)
    assert list(disp.display_labels) == list(pipe.classes_)
    assert disp.text_.shape == (n, n)
    assert disp.text_[0, 0].get_text() == "0"
    assert [t.get_text() for t in disp.ax_.get_xticklabels()] == list(pipe.classes_)
    assert [t.get_text() for t in disp.ax_.get_yticklabels()] == list(pipe.classes_)
    assert disp.im_.get_clim() == (0.0, 180.0)
    assert disp.figure_ is disp.ax_.figure
    assert "larger = emotions better separated" in disp.im_.colorbar.ax.get_ylabel()


def test_centroid_angles_display_uses_given_ax(pipe):
    fig, ax = plt.subplots()
    disp = CentroidAnglesDisplay.from_estimator(pipe[-1], ax=ax, colorbar=False)
    assert disp.ax_ is ax and disp.figure_ is fig


def test_centroid_angles_display_bad_shape():
    with pytest.raises(ValueError, match=r"expected \(3, 3\)"):
        CentroidAnglesDisplay(np.zeros((2, 2)), ["a", "b", "c"]).plot()


@pytest.mark.parametrize("display", [EmbeddingDisplay, CentroidAnglesDisplay])
def test_displays_unfitted_estimator(display, data):
    pipe = Pipeline(
        [("mel", LogMelTransformer(n_mels=16)), ("clf", EmotionEmbeddingClassifier())]
    )
    args = (data.data, data.target) if display is EmbeddingDisplay else ()
    with pytest.raises(NotFittedError):
        display.from_estimator(pipe, *args)
    with pytest.raises(NotFittedError):
        display.from_estimator(pipe[-1], *args)


def test_displays_reject_other_estimators(data):
    from sklearn.dummy import DummyClassifier

    dummy = DummyClassifier().fit(np.zeros((4, 1)), ["a", "b", "a", "b"])
    with pytest.raises(TypeError, match="no centroids_"):
        CentroidAnglesDisplay.from_estimator(dummy)


def test_confusion_matrix_display_works_with_pipeline(pipe, data):
    disp = ConfusionMatrixDisplay.from_estimator(pipe, data.data, data.target)
    assert disp.confusion_matrix.shape == (len(pipe.classes_),) * 2
    assert disp.confusion_matrix.sum() == len(data.data)
    assert list(disp.display_labels) == list(pipe.classes_)


def test_save_pngs(pipe, data, tmp_path):
    """Every display renders to a PNG file."""
    displays = [
        EmbeddingDisplay.from_estimator(pipe, data.data, data.target),
        CentroidAnglesDisplay.from_estimator(pipe),
    ]
    for k, disp in enumerate(displays):
        disp.figure_.savefig(tmp_path / f"{k}.png", dpi=60)
        assert (tmp_path / f"{k}.png").stat().st_size > 1000


def test_embedding_display_centroid_names_do_not_overlap():
    """Close centroids get their names moved apart, inside the axes."""
    from matplotlib.text import Text

    rng = np.random.default_rng(0)
    labels = np.array(["angry", "fearful", "happy", "surprised", "sad"])
    centroids = np.array(
        [[0.0, 0.0], [0.02, 0.01], [0.04, 0.0], [0.03, 0.03], [1.0, 1.0]]
    )
    y = np.repeat(labels, 10)
    points = centroids[np.repeat(np.arange(5), 10)] + rng.normal(0, 0.2, (50, 2))
    disp = EmbeddingDisplay(
        points, y, centroids_2d=centroids, display_labels=labels, projection="pca"
    ).plot()
    fig = disp.figure_
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, renderer) for t in disp.centroid_texts_]
    frame = disp.ax_.get_window_extent(renderer)
    for i, box in enumerate(boxes):
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1, labels[i]
        assert frame.y0 <= box.y0 and box.y1 <= frame.y1, labels[i]
        for j in range(i):
            assert not box.overlaps(boxes[j]), (labels[i], labels[j])
    # The first name placed (the highest star) stays just above its star.
    assert disp.centroid_texts_[4].get_position() == (0, 11)
    assert not disp.centroid_texts_[4].arrow_patch.get_visible()
