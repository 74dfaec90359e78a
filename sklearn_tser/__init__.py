"""sklearn-tser: speech emotion recognition with learned emotion embeddings."""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
