"""Order of the examples in the gallery: from first steps to full studies."""

ORDER = (
    "plot_quick_start.py",
    "plot_embeddings.py",
    "plot_own_folder.py",
    "plot_ravdess_protocols.py",
    "plot_architecture_ablation.py",
    "plot_iemocap_loso.py",
    "plot_dask_cluster.py",
)


class ExampleOrder:
    """Sort key for sphinx-gallery's ``within_subsection_order``."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        return (ORDER.index(filename) if filename in ORDER else len(ORDER), filename)

    def __repr__(self):
        return f"<{type(self).__name__}>"
