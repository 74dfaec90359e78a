"""Emotional speech corpora: loaders, a fetcher and a synthetic generator.

- :func:`load_ravdess` / :func:`fetch_ravdess`: RAVDESS (CC BY-NC-SA 4.0), read
  from a local folder or downloaded from Zenodo.
- :func:`load_iemocap`: IEMOCAP, licence-gated, read from the release you received.
- :func:`load_emotion_folder`: any corpus with one sub-folder per emotion.
- :func:`make_emotional_speech`: synthetic speech-like clips (not real speech).

Every loader returns a :class:`~sklearn.utils.Bunch` with ``data`` (paths, or
waveforms with ``load_audio=True``), ``target``, the speaker or session groups
when known, ``filenames``, ``target_names`` and ``DESCR``.
"""

from ._folder import load_emotion_folder
from ._iemocap import load_iemocap
from ._ravdess import fetch_ravdess, load_ravdess
from ._synthetic import make_emotional_speech

__all__ = [
    "fetch_ravdess",
    "load_emotion_folder",
    "load_iemocap",
    "load_ravdess",
    "make_emotional_speech",
]
