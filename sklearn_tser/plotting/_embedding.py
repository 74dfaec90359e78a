"""EmbeddingDisplay: emotion embeddings in 2-D, coloured by emotion."""

import warnings

import numpy as np

from .._warnings import user_stacklevel
from ._base import class_colors, final_classifier, import_pyplot

__all__ = ["EmbeddingDisplay"]

PROJECTIONS = ("pca", "tsne")


def _check_projection(projection):
    if projection not in PROJECTIONS:
        raise ValueError(
            f"projection must be one of {list(PROJECTIONS)}, got {projection!r}."
        )


def project(embeddings, centroids, *, projection="pca", random_state=0):
    """Project embeddings and centroids together into the same 2-D space.

    Parameters
    ----------
    embeddings : ndarray of shape (n_clips, embedding_dim)
        The clips' embeddings.
    centroids : ndarray of shape (n_classes, embedding_dim) or None
        Emotion centroids, projected with the points.
    projection : {"pca", "tsne"}, default="pca"
        PCA is fitted on the clips and applied to the centroids; t-SNE, which
        has no ``transform``, embeds the clips and the centroids together.
    random_state : int, RandomState instance or None, default=0
        Seed of the projection.

    Returns
    -------
    points_2d : ndarray of shape (n_clips, 2)
    centroids_2d : ndarray of shape (n_classes, 2) or None
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    _check_projection(projection)
    embeddings = np.asarray(embeddings, dtype=np.float64)
    n = len(embeddings)
    if projection == "pca":
        pca = PCA(n_components=2, random_state=random_state).fit(embeddings)
        points = pca.transform(embeddings)
        return points, None if centroids is None else pca.transform(centroids)
    stacked = embeddings if centroids is None else np.vstack([embeddings, centroids])
    perplexity = float(min(30.0, max(2.0, (len(stacked) - 1) / 3)))
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        init="pca",
        metric="cosine",
        # Exact gradients are faster than Barnes-Hut for a few hundred points.
        method="exact" if len(stacked) <= 500 else "barnes_hut",
        random_state=random_state,
    )
    out = tsne.fit_transform(stacked)
    return out[:n], None if centroids is None else out[n:]


# Where a centroid's name may go, in points from its star, nearest first:
# ((dx, dy), horizontal alignment, vertical alignment).
_LABEL_SLOTS = (
    ((0, 11), "center", "bottom"),
    ((0, -11), "center", "top"),
    ((12, 0), "left", "center"),
    ((-12, 0), "right", "center"),
    ((9, 9), "left", "bottom"),
    ((-9, 9), "right", "bottom"),
    ((9, -9), "left", "top"),
    ((-9, -9), "right", "top"),
)
_STAR_RADIUS = 9.0  # points, for the star marker of area 380 points^2


def _place_labels(ax, texts, centroids):
    """Move the centroid names so that none overlaps another name or star.

    Each name takes the first free slot around its star (above, below, right,
    left, diagonals), then the same slots farther out with a leader line. The
    layout of the figure is computed once for that; a name that fits nowhere
    keeps the slot above its star.
    """
    from matplotlib.text import Text

    fig = ax.figure
    if not hasattr(fig.canvas, "get_renderer"):  # pragma: no cover - rare backends
        return
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72.0
    stars = ax.transData.transform(centroids)
    radius = _STAR_RADIUS * px
    frame = ax.get_window_extent(renderer)
    placed = []

    def fits(box, i):
        if not (
            box.x0 >= frame.x0
            and box.x1 <= frame.x1
            and box.y0 >= frame.y0
            and box.y1 <= frame.y1
        ):
            return False
        if any(box.overlaps(other) for other in placed):
            return False
        return not any(
            j != i
            and box.x0 - radius < sx < box.x1 + radius
            and box.y0 - radius < sy < box.y1 + radius
            for j, (sx, sy) in enumerate(stars)
        )

    def extent(text):
        text.update_positions(renderer)
        return Text.get_window_extent(text, renderer).expanded(1.04, 1.08)

    for i in np.argsort(-centroids[:, 1], kind="stable"):
        text = texts[i]
        choice = None
        for scale in (1.0, 2.2, 3.5):
            for (dx, dy), ha, va in _LABEL_SLOTS:
                text.set_position((dx * scale, dy * scale))
                text.set_horizontalalignment(ha)
                text.set_verticalalignment(va)
                box = extent(text)
                if fits(box, i):
                    choice = (scale, (dx, dy), ha, va, box)
                    break
            if choice is not None:
                break
        if choice is None:  # nowhere free: back above the star
            (dx, dy), ha, va = _LABEL_SLOTS[0]
            choice = (1.0, (dx, dy), ha, va, None)
        scale, (dx, dy), ha, va, box = choice
        text.set_position((dx * scale, dy * scale))
        text.set_horizontalalignment(ha)
        text.set_verticalalignment(va)
        placed.append(extent(text) if box is None else box)
        if text.arrow_patch is not None:
            text.arrow_patch.set_visible(scale > 1.0)


class EmbeddingDisplay:
    """Emotion embeddings projected to 2-D, with the emotion centroids.

    The picture of the paper's Fig. 3: each clip is a dot coloured by its
    emotion, each emotion centroid a large star labelled with its name. Build
    it with :meth:`from_estimator` (projects for you) or
    :meth:`from_embeddings`; the constructor takes points already in 2-D.

    Parameters
    ----------
    points_2d : ndarray of shape (n_clips, 2)
        The projected embeddings.
    y : ndarray of shape (n_clips,)
        Emotion of each clip.
    centroids_2d : ndarray of shape (n_classes, 2) or None, default=None
        Projected centroids, in the order of ``display_labels``.
    display_labels : ndarray of shape (n_classes,) or None, default=None
        Class names; ``None`` uses the sorted unique values of ``y``. Clips of
        other labels are not drawn, with a warning.
    projection : str or None, default=None
        Name of the projection, used in the axis labels.
    centroid_label : str, default="centroid"
        What the stars are, in the legend; :meth:`from_estimator` says
        "centroid of the training clips".

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes with the plot.
    figure_ : matplotlib Figure
        Figure holding ``ax_``.
    scatter_ : list of matplotlib PathCollection
        One scatter per class.
    centroid_markers_ : matplotlib PathCollection or None
        The centroid stars.
    centroid_texts_ : list of matplotlib Text
        The centroid labels.

    See Also
    --------
    CentroidAnglesDisplay : Angles between the emotion centroids.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_tser.plotting import EmbeddingDisplay
    >>> rng = np.random.default_rng(0)
    >>> emb = rng.standard_normal((20, 8))
    >>> y = np.repeat(["angry", "sad"], 10)
    >>> disp = EmbeddingDisplay.from_embeddings(emb, y)  # doctest: +SKIP
    """

    def __init__(
        self,
        points_2d,
        y,
        *,
        centroids_2d=None,
        display_labels=None,
        projection=None,
        centroid_label="centroid",
    ):
        self.points_2d = points_2d
        self.y = y
        self.centroids_2d = centroids_2d
        self.display_labels = display_labels
        self.projection = projection
        self.centroid_label = centroid_label

    def plot(
        self,
        *,
        ax=None,
        point_size=18,
        alpha=0.7,
        legend=True,
        title=None,
    ):
        """Draw the points and centroids.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
            Axes to draw on; ``None`` makes a new figure.
        point_size : float, default=18
            Marker area of the clips.
        alpha : float, default=0.7
            Opacity of the clips.
        legend : bool, default=True
            Draw a legend of the emotions (outside the axes, on the right).
        title : str or None, default=None
            Axes title; ``None`` names the projection.

        Returns
        -------
        display : EmbeddingDisplay
        """
        plt = import_pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(7.5, 5.5), layout="constrained")
        y = np.asarray(self.y)
        labels = np.unique(y) if self.display_labels is None else self.display_labels
        left_out = ~np.isin(y, np.asarray(labels))
        if left_out.any():
            others = np.unique(y[left_out]).tolist()
            warnings.warn(
                f"{left_out.sum()} of {len(y)} clips are not drawn: their labels "
                f"{others} are not among the display labels {list(labels)} "
                "(from_estimator: the classes the model was fitted on). Pass "
                "labels of those classes, or display_labels that include them.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        colors = class_colors(len(labels))
        self.scatter_ = []
        for label, color in zip(labels, colors, strict=True):
            mask = y == label
            self.scatter_.append(
                ax.scatter(
                    self.points_2d[mask, 0],
                    self.points_2d[mask, 1],
                    s=point_size,
                    color=color,
                    alpha=alpha,
                    edgecolors="none",
                    label=str(label),
                )
            )
        self.centroid_markers_, self.centroid_texts_ = None, []
        if self.centroids_2d is not None:
            self._plot_centroids(ax, labels, colors)
            # Head-room for the centroid names, drawn above the stars.
            ax.margins(x=0.06, y=0.12)
        name = {"pca": "PCA", "tsne": "t-SNE"}.get(self.projection, "component")
        ax.set_xlabel(f"{name} 1")
        ax.set_ylabel(f"{name} 2")
        ax.set_title(f"Emotion embeddings ({name})" if title is None else title)
        if legend and self.centroids_2d is not None:
            # A legend entry saying what the stars are.
            ax.scatter(
                [],
                [],
                s=150,
                marker="*",
                c="white",
                edgecolors="black",
                label=self.centroid_label,
            )
        if legend:
            ax.legend(
                title="emotion",
                loc="upper left",
                bbox_to_anchor=(1.02, 1.0),
                borderaxespad=0.0,
                markerscale=1.5,
            )
        if self.centroid_texts_:
            _place_labels(ax, self.centroid_texts_, np.asarray(self.centroids_2d))
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    def _plot_centroids(self, ax, labels, colors):
        import matplotlib.patheffects as pe

        c = np.asarray(self.centroids_2d)
        self.centroid_markers_ = ax.scatter(
            c[:, 0],
            c[:, 1],
            s=380,
            marker="*",
            c=colors,
            edgecolors="black",
            linewidths=1.2,
            zorder=3,
        )
        for (x, y), label in zip(c, labels, strict=True):
            self.centroid_texts_.append(
                ax.annotate(
                    str(label),
                    (x, y),
                    xytext=(0, 11),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=10,
                    fontweight="bold",
                    zorder=4,
                    path_effects=[pe.withStroke(linewidth=3, foreground="white")],
                    # A leader line, shown only when the name is moved away.
                    arrowprops={
                        "arrowstyle": "-",
                        "color": "0.25",
                        "linewidth": 0.8,
                        "shrinkA": 1,
                        "shrinkB": 8,
                        "visible": False,
                    },
                )
            )

    @classmethod
    def from_embeddings(
        cls,
        embeddings,
        y,
        *,
        centroids=None,
        display_labels=None,
        projection="pca",
        random_state=0,
        centroid_label="centroid",
        ax=None,
        point_size=18,
        alpha=0.7,
        legend=True,
        title=None,
    ):
        """Project embeddings (and centroids) to 2-D and plot them.

        Parameters
        ----------
        embeddings : array-like of shape (n_clips, embedding_dim)
            The clips' embeddings.
        y : array-like of shape (n_clips,)
            Emotion of each clip.
        centroids : array-like of shape (n_classes, embedding_dim) or None, \
default=None
            Emotion centroids in the order of ``display_labels``.
        display_labels : array-like of shape (n_classes,) or None, default=None
            Class names; ``None`` uses the sorted unique values of ``y``.
        projection : {"pca", "tsne"}, default="pca"
            How to reduce the embeddings to 2-D.
        random_state : int, RandomState instance or None, default=0
            Seed of the projection.
        centroid_label : str, default="centroid"
            What the stars are, in the legend.
        ax, point_size, alpha, legend, title
            See :meth:`plot`.

        Returns
        -------
        display : EmbeddingDisplay
        """
        _check_projection(projection)
        y = np.asarray(y)
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 2 or len(embeddings) != len(y):
            raise ValueError(
                f"embeddings must have shape (n_clips, embedding_dim) with one row "
                f"per label; got shape {embeddings.shape} for {len(y)} labels."
            )
        points, cents = project(
            embeddings,
            None if centroids is None else np.asarray(centroids),
            projection=projection,
            random_state=random_state,
        )
        disp = cls(
            points,
            y,
            centroids_2d=cents,
            display_labels=display_labels,
            projection=projection,
            centroid_label=centroid_label,
        )
        return disp.plot(
            ax=ax, point_size=point_size, alpha=alpha, legend=legend, title=title
        )

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        y,
        *,
        groups=None,
        projection="pca",
        random_state=0,
        ax=None,
        point_size=18,
        alpha=0.7,
        legend=True,
        title=None,
    ):
        """Embed clips with a fitted classifier and plot them in 2-D.

        Parameters
        ----------
        estimator : EmotionEmbeddingClassifier or Pipeline
            A fitted classifier, or a fitted Pipeline ending in one (e.g.
            ``LogMelTransformer`` then ``EmotionEmbeddingClassifier``).
        X : clips, paths or spectrograms
            Input of ``estimator.transform``.
        y : array-like of shape (n_clips,)
            True emotion of each clip (the colours).
        groups : array-like of shape (n_clips,) or None, default=None
            Speaker of each clip, given to the classifier's ``transform`` (read
            with ``standardize="group"``).
        projection : {"pca", "tsne"}, default="pca"
            How to reduce the embeddings to 2-D; the centroids are projected
            with the points.
        random_state : int, RandomState instance or None, default=0
            Seed of the projection.
        ax, point_size, alpha, legend, title
            See :meth:`plot`.

        Returns
        -------
        display : EmbeddingDisplay
        """
        _check_projection(projection)
        clf = final_classifier(estimator)
        if groups is None:
            embeddings = estimator.transform(X)
        else:  # a Pipeline passes transform's groups on only with routing
            if clf is not estimator:
                X = estimator[:-1].transform(X)
            embeddings = clf.transform(X, groups=groups)
        return cls.from_embeddings(
            embeddings,
            y,
            centroids=clf.centroids_,
            display_labels=clf.classes_,
            projection=projection,
            random_state=random_state,
            centroid_label="centroid of the training clips",
            ax=ax,
            point_size=point_size,
            alpha=alpha,
            legend=legend,
            title=title,
        )
