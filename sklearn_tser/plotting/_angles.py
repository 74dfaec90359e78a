"""CentroidAnglesDisplay: angles between emotion centroids as a heat map."""

import numpy as np

from ._base import final_classifier, import_pyplot

__all__ = ["CentroidAnglesDisplay"]


class CentroidAnglesDisplay:
    """Angles in degrees between the emotion centroids, as an annotated heat map.

    Well-separated emotions have centroids far apart (up to 180 degrees);
    emotions the embedding confuses have a small angle between them.

    Parameters
    ----------
    angles : ndarray of shape (n_classes, n_classes)
        Angles in degrees (``EmotionEmbeddingClassifier.angles_``).
    display_labels : array-like of shape (n_classes,)
        Class names, in the order of the rows of ``angles``.

    Attributes
    ----------
    im_ : matplotlib AxesImage
        The heat map.
    text_ : ndarray of shape (n_classes, n_classes), dtype object
        The annotations (matplotlib Text).
    ax_ : matplotlib Axes
        Axes with the heat map.
    figure_ : matplotlib Figure
        Figure holding ``ax_``.

    See Also
    --------
    EmbeddingDisplay : The embeddings and centroids in 2-D.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_tser.plotting import CentroidAnglesDisplay
    >>> angles = np.array([[0.0, 95.0], [95.0, 0.0]])
    >>> disp = CentroidAnglesDisplay(angles, ["angry", "sad"])
    >>> disp.plot()  # doctest: +SKIP
    """

    def __init__(self, angles, display_labels):
        self.angles = angles
        self.display_labels = display_labels

    def plot(
        self,
        *,
        ax=None,
        cmap="viridis",
        values_format=".0f",
        colorbar=True,
        xticks_rotation=45,
        title="Angles between emotion centroids (degrees)",
    ):
        """Draw the heat map.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
            Axes to draw on; ``None`` makes a new figure.
        cmap : str or matplotlib Colormap, default="viridis"
            Colour map; the scale is fixed to 0-180 degrees.
        values_format : str, default=".0f"
            Format of the annotations.
        colorbar : bool, default=True
            Add a colour bar.
        xticks_rotation : float, default=45
            Rotation of the column labels, in degrees.
        title : str or None, default="Angles between emotion centroids (degrees)"
            Axes title.

        Returns
        -------
        display : CentroidAnglesDisplay
        """
        plt = import_pyplot()
        angles = np.asarray(self.angles, dtype=float)
        labels = [str(label) for label in self.display_labels]
        n = len(labels)
        if angles.shape != (n, n):
            raise ValueError(
                f"angles has shape {angles.shape}; expected ({n}, {n}) for the "
                f"{n} display_labels."
            )
        if ax is None:
            size = min(4.0 + 0.6 * n, 12.0)
            _, ax = plt.subplots(figsize=(size + 1.2, size), layout="constrained")
        self.im_ = ax.imshow(angles, cmap=cmap, vmin=0.0, vmax=180.0)
        cmap_obj = self.im_.cmap
        fontsize = 10 if n <= 8 else 8
        self.text_ = np.empty((n, n), dtype=object)
        for i in range(n):
            for j in range(n):
                value = angles[i, j]
                # Dark text on the bright end of the map, white on the dark end.
                rgba = cmap_obj(value / 180.0)
                luminance = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
                self.text_[i, j] = ax.text(
                    j,
                    i,
                    format(value, values_format),
                    ha="center",
                    va="center",
                    fontsize=fontsize,
                    color="black" if luminance > 0.5 else "white",
                )
        ax.set_xticks(np.arange(n), labels=labels)
        ax.set_yticks(np.arange(n), labels=labels)
        ax.set_xlabel("emotion")
        ax.set_ylabel("emotion")
        plt.setp(
            ax.get_xticklabels(),
            rotation=xticks_rotation,
            ha="right" if xticks_rotation else "center",
            rotation_mode="anchor",
        )
        if colorbar:
            ax.figure.colorbar(
                self.im_,
                ax=ax,
                label="angle (degrees): larger = emotions better separated",
            )
        if title:
            ax.set_title(title)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_estimator(
        cls,
        estimator,
        *,
        ax=None,
        cmap="viridis",
        values_format=".0f",
        colorbar=True,
        xticks_rotation=45,
        title="Angles between emotion centroids (degrees)",
    ):
        """Plot the centroid angles of a fitted classifier (no data needed).

        Parameters
        ----------
        estimator : EmotionEmbeddingClassifier or Pipeline
            A fitted classifier, or a fitted Pipeline ending in one.
        ax, cmap, values_format, colorbar, xticks_rotation, title
            See :meth:`plot`.

        Returns
        -------
        display : CentroidAnglesDisplay
        """
        clf = final_classifier(estimator)
        return cls(clf.angles_, clf.classes_).plot(
            ax=ax,
            cmap=cmap,
            values_format=values_format,
            colorbar=colorbar,
            xticks_rotation=xticks_rotation,
            title=title,
        )
