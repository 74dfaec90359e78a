"""Bring your own corpus: one sub-folder of audio files per emotion."""

import os
import re
from pathlib import Path

from sklearn.utils import Bunch

from ._base import (
    AUDIO_EXTENSIONS,
    as_str_array,
    check_not_broken_link,
    check_sr,
    decode_files,
    is_hidden,
)

DESCR_TEMPLATE = """\
Emotion folder corpus
---------------------

Audio clips read from {path!r}, labelled by the name of the sub-folder that
holds them ({n_classes} classes: {classes}; {n_clips} clips). No speaker or
session information is known for such a folder, so no ``groups`` array is
returned: split by speaker yourself if you know the speakers, since random
splits of clips from the same speakers overestimate the accuracy on new
speakers.
"""


def _check_extensions(extensions):
    if isinstance(extensions, str):
        extensions = (extensions,)
    extensions = tuple(extensions)
    bad = [e for e in extensions if not (isinstance(e, str) and e.startswith("."))]
    if bad or not extensions:
        raise ValueError(
            f"extensions must be file suffixes starting with a dot, such as "
            f"('.wav', '.flac'); got {extensions!r}."
        )
    return {e.lower() for e in extensions}


def audio_files(folder, extensions=AUDIO_EXTENSIONS):
    """Audio files under ``folder`` (recursively), skipping hidden entries."""
    files = []
    for f in folder.rglob("*"):
        if f.suffix.lower() not in extensions or any(
            is_hidden(part) for part in f.relative_to(folder).parts
        ):
            continue
        check_not_broken_link(f)
        if f.is_file():
            files.append(f)
    return sorted(files)


def _check_one_label_per_file(paths, target):
    """Refuse a file reached under two classes (e.g. through a symbolic link
    from one class folder to another): it would be given both labels."""
    first = {}
    for path, label in zip(paths, target, strict=True):
        real = os.path.realpath(path)
        if real in first and first[real][1] != label:
            other, other_label = first[real]
            raise ValueError(
                f"{str(path)!r} (class {label!r}) and {str(other)!r} (class "
                f"{other_label!r}) are the same file {real!r}, so it would have two "
                "labels. A class folder or a file is probably a symbolic link to "
                "another class; remove the link."
            )
        first.setdefault(real, (path, label))


# Corpora whose folders are speakers or sessions, not emotions.
_OTHER_LAYOUTS = [
    (r"Actor_\d+", "RAVDESS (one folder per actor)", "load_ravdess", "ravdess"),
    (r"Session\d+", "IEMOCAP (one folder per session)", "load_iemocap", "iemocap"),
]


def _class_folders(root, extensions):
    if not root.exists():
        raise FileNotFoundError(f"Emotion folder {str(root)!r} does not exist.")
    if not root.is_dir():
        raise ValueError(f"Emotion folder path {str(root)!r} is not a directory.")
    stray = [
        f.name
        for f in root.iterdir()
        if f.is_file() and f.suffix.lower() in extensions and not is_hidden(f)
    ]
    if stray:
        raise ValueError(
            f"Audio file(s) {sorted(stray)[:3]} lie directly in {str(root)!r}, "
            "so they have no label. Move every clip into a sub-folder named "
            "after its emotion, e.g. angry/clip01.wav."
        )
    folders = sorted(d for d in root.iterdir() if d.is_dir() and not is_hidden(d))
    names = [d.name for d in folders]
    for pattern, corpus, loader, option in _OTHER_LAYOUTS:
        if names and all(re.fullmatch(pattern, n) for n in names):
            raise ValueError(
                f"The sub-folders of {str(root)!r} ({', '.join(names[:3])}, ...) "
                f"look like {corpus}, whose folders are not emotions; load it with "
                f"{loader} (in the CLI: --dataset {option})."
            )
    if not folders:
        raise ValueError(
            f"{str(root)!r} has no sub-folder. Expected one sub-folder per emotion "
            "holding its audio files, e.g. angry/clip01.wav, sad/clip02.wav."
        )
    return folders


def load_emotion_folder(
    path,
    *,
    load_audio=False,
    sr=16000,
    extensions=AUDIO_EXTENSIONS,
    return_X_y=False,
):
    """Load a corpus laid out as one sub-folder of audio files per emotion.

    The layout of :class:`torchvision.datasets.ImageFolder`, for audio::

        path/angry/clip01.wav
        path/angry/speaker3/clip07.flac
        path/neutral/clip02.wav

    Every sub-folder of ``path`` is a class named after it; the audio files
    anywhere below it (nested folders included) are its clips. Hidden files and
    folders (names starting with a dot) and files with other extensions are
    ignored.

    Parameters
    ----------
    path : str or os.PathLike
        The corpus folder.
    load_audio : bool, default=False
        If True, ``data`` holds the decoded waveforms instead of the paths.
    sr : int > 0, default=16000
        Sample rate in Hz of the decoded waveforms (``load_audio=True`` only).
    extensions : str or tuple of str, default=(".wav", ".flac", ".ogg", ".mp3")
        File suffixes taken as audio (case-insensitive); anything libsndfile
        decodes works.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    bunch : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with, for the ``n_clips`` clips sorted by class
        then path:

        data : list of str, or list of ndarray of shape (n_samples_i,)
            Paths of the audio files, or (``load_audio=True``) mono float32
            waveforms at ``sr`` Hz.
        target : ndarray of shape (n_clips,), dtype str
            Class names (the sub-folder names).
        filenames : ndarray of shape (n_clips,), dtype str
            Paths of the audio files.
        target_names : ndarray of str
            The class names, sorted.
        DESCR : str
            Short description of the corpus.

        No groups are returned: the speakers of such a folder are not known.

    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If ``path`` has no sub-folder, holds audio files outside any
        sub-folder, or a sub-folder holds no audio file.

    Examples
    --------
    >>> from sklearn_tser.datasets import load_emotion_folder
    >>> X, y = load_emotion_folder("my_corpus", return_X_y=True)  # doctest: +SKIP
    """
    extensions = _check_extensions(extensions)
    sr = check_sr(sr)
    root = Path(path)
    paths, target = [], []
    for folder in _class_folders(root, extensions):
        files = audio_files(folder, extensions)
        if not files:
            raise ValueError(
                f"Class folder {str(folder)!r} holds no audio file with an "
                f"extension in {sorted(extensions)}; add clips or remove it."
            )
        paths += [str(f) for f in files]
        target += [folder.name] * len(files)
    _check_one_label_per_file(paths, target)
    target = as_str_array(target)
    data = decode_files(paths, sr=sr) if load_audio else paths
    if return_X_y:
        return data, target
    target_names = as_str_array(sorted(set(target)))
    descr = DESCR_TEMPLATE.format(
        path=str(root),
        n_classes=len(target_names),
        classes=", ".join(target_names),
        n_clips=len(paths),
    )
    return Bunch(
        data=data,
        target=target,
        filenames=as_str_array(paths),
        target_names=target_names,
        DESCR=descr,
    )
