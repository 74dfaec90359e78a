"""Exceptions and warnings raised by sklearn-tser.

Every error about bad input or a bad file is a :class:`ValueError` (or
:class:`TypeError`) whose message names the problem, and the clip index or path.
"""

__all__ = [
    "AudioFileNotFoundError",
    "EmbeddingCollapseWarning",
    "IncompatibleModelVersionError",
    "ModelFileError",
    "TrainingDivergedError",
]


class AudioFileNotFoundError(FileNotFoundError, ValueError):
    """A path given as a clip does not exist (also a :class:`ValueError`, as
    every error about bad input is)."""


class ModelFileError(ValueError):
    """A model file cannot be loaded by :func:`sklearn_tser.load`.

    It is not an sklearn-tser model file, it is truncated or corrupt, its content
    no longer matches its SHA-256 digest (it was modified after saving), or it
    describes something this version cannot rebuild.
    """


class IncompatibleModelVersionError(ModelFileError):
    """A model file was saved by an incompatible version of sklearn-tser.

    Files are read by the same ``major.minor`` release that wrote them, or a
    later patch release of it; never by an older one.
    """


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite.

    Lower the learning rate or the weight decay, or check the input scale.
    """


class EmbeddingCollapseWarning(UserWarning):
    """The embeddings collapsed towards a single point during triplet training."""


# Packages whose frames a warning of ours skips to reach the user's code.
_OWN_PACKAGES = {"sklearn_tser", "skorch", "sklearn", "torch", "joblib"}


def _user_stacklevel():
    """The ``stacklevel`` that makes a warning raised by our caller point at
    the first frame outside sklearn-tser and the libraries it runs in (a fit
    inside a Pipeline inside ``cross_validate``, say), not at their files."""
    import sys

    frame, level = sys._getframe(1), 1
    while frame is not None:
        package = frame.f_globals.get("__name__", "").partition(".")[0]
        if package not in _OWN_PACKAGES:
            break
        frame, level = frame.f_back, level + 1
    return level
