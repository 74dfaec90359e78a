"""Exceptions and warnings raised by sklearn-tser.

Every error about bad input or a bad file is a :class:`ValueError` (or
:class:`TypeError`) whose message names the problem, and the clip index or path.
"""

__all__ = [
    "AudioFileNotFoundError",
    "EmbeddingCollapseWarning",
    "IncompatibleModelVersionError",
    "MissingGroupsWarning",
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


class MissingGroupsWarning(UserWarning):
    """A model with ``standardize="group"`` predicted without ``groups``.

    The clips of the call were standardised as one speaker. Pass the speaker of
    every clip (``predict(X, groups=speakers)``), or, where the clips are known
    to come from one speaker, silence it with
    ``warnings.filterwarnings("ignore", category=MissingGroupsWarning)``.
    """
