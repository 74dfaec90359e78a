"""RAVDESS: the Ryerson Audio-Visual Database of Emotional Speech and Song."""

import numbers
import re
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._base import (
    COMPLETE_MARKER,
    RemoteFileMetadata,
    as_selection,
    as_str_array,
    check_not_broken_link,
    check_sr,
    decode_files,
    fetch_archive,
    get_data_home,
    is_hidden,
)

# The audio-only speech archive of the official release (Zenodo record 1188976).
# The MD5 is the one published for this file on the Zenodo record.
RAVDESS_SPEECH_ARCHIVE = RemoteFileMetadata(
    filename="Audio_Speech_Actors_01-24.zip",
    url="https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip",
    checksum="bc696df654c87fed845eb13823edef8a",
    checksum_algorithm="md5",
    size=208_468_073,
)

EMOTIONS = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
)
STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
_FIELDS = {  # name: largest valid code, in file-name order
    "modality": 3,
    "vocal_channel": 2,
    "emotion": 8,
    "intensity": 2,
    "statement": 2,
    "repetition": 2,
    "actor": 24,
}
_CODE_RE = re.compile(r"\d{2}(?:-\d{2}){6}")
_ACTOR_DIR_RE = re.compile(r"Actor_(\d{2})")
_EXTENSIONS = (".wav", ".flac")
_EXAMPLE = "03-01-05-01-02-01-12.wav"

DESCR = """\
.. _ravdess_dataset:

RAVDESS emotional speech (audio-only)
-------------------------------------

The Ryerson Audio-Visual Database of Emotional Speech and Song. 24 professional
actors (12 female, 12 male; odd actor ids are male, even ids female) say two
lexically matched statements, "Kids are talking by the door" (statement 1) and
"Dogs are sitting by the door" (statement 2), in a neutral North American
accent. The speech part has eight emotions: neutral, calm, happy, sad, angry,
fearful, disgust and surprised, each at two intensities (normal, strong) except
neutral, and each take twice: 60 clips per actor, 1440 in all (96 neutral and 192
of each other emotion). The original audio is 16-bit 48 kHz WAV.

Every file name is a 7-field code ``MM-VV-EE-II-SS-RR-AA``: modality (03 =
audio-only), vocal channel (01 = speech, 02 = song), emotion (01 to 08 in the
order above), intensity (01 normal, 02 strong), statement (01, 02), repetition
(01, 02) and actor (01 to 24).

Use ``actor`` as the ``groups`` of a cross-validation splitter (for example
:class:`~sklearn.model_selection.GroupKFold`) for speaker-independent scores.

**License**: Creative Commons Attribution-NonCommercial-ShareAlike 4.0
International (CC BY-NC-SA 4.0): attribution, non-commercial use only,
share-alike. Commercial licences are sold by the authors.

**Source**: https://zenodo.org/records/1188976 (doi:10.5281/zenodo.1188976),
file ``Audio_Speech_Actors_01-24.zip``.

**Citation**: Livingstone, S. R., & Russo, F. A. (2018). The Ryerson
Audio-Visual Database of Emotional Speech and Song (RAVDESS): A dynamic,
multimodal set of facial and vocal expressions in North American English.
PLoS ONE, 13(5), e0196391. https://doi.org/10.1371/journal.pone.0196391
"""


def _parse_code(path, folder_actor):
    """Return the 7 fields of a RAVDESS file name as a dict of ints."""
    if not _CODE_RE.fullmatch(path.stem):
        raise ValueError(
            f"RAVDESS file {str(path)!r} does not follow the naming code "
            f"MM-VV-EE-II-SS-RR-AA (7 two-digit fields, e.g. {_EXAMPLE}). "
            "Rename or remove it."
        )
    codes = dict(zip(_FIELDS, map(int, path.stem.split("-")), strict=True))
    for field, largest in _FIELDS.items():
        if not 1 <= codes[field] <= largest:
            raise ValueError(
                f"RAVDESS file {str(path)!r}: field {field!r} is "
                f"{codes[field]:02d}, expected 01 to {largest:02d}."
            )
    if codes["emotion"] == 1 and codes["intensity"] == 2:
        raise ValueError(
            f"RAVDESS file {str(path)!r} is neutral (emotion 01) with strong "
            "intensity (02), a combination RAVDESS does not have."
        )
    if codes["actor"] != folder_actor:
        raise ValueError(
            f"RAVDESS file {str(path)!r} names actor {codes['actor']:02d} but "
            f"lies in folder Actor_{folder_actor:02d}; move it to "
            f"Actor_{codes['actor']:02d}."
        )
    return codes


def _actor_dirs(folder):
    return sorted(
        d for d in folder.iterdir() if d.is_dir() and _ACTOR_DIR_RE.fullmatch(d.name)
    )


def _find_actor_dirs(root):
    """The Actor_XX folders of ``root``, or an error saying what was expected."""
    if not root.exists():
        raise FileNotFoundError(
            f"RAVDESS folder {str(root)!r} does not exist. Pass the folder that "
            "holds Actor_01 ... Actor_24, or download the corpus with "
            "fetch_ravdess()."
        )
    if not root.is_dir():
        raise ValueError(f"RAVDESS path {str(root)!r} is not a directory.")
    actor_dirs = _actor_dirs(root)
    if not actor_dirs:
        nested = [d for d in root.iterdir() if d.is_dir() and _actor_dirs(d)]
        hint = f" Its sub-folder {str(nested[0])!r} has them." if nested else ""
        raise ValueError(
            f"{str(root)!r} is not a RAVDESS corpus: expected sub-folders "
            f"Actor_01 ... Actor_24 holding files such as {_EXAMPLE}.{hint}"
        )
    return actor_dirs


def _list_clips(root):
    """Parse every audio file of the corpus: a list of (path, codes)."""
    records = []
    for actor_dir in _find_actor_dirs(root):
        folder_actor = int(_ACTOR_DIR_RE.fullmatch(actor_dir.name).group(1))
        for f in sorted(actor_dir.iterdir()):
            if f.suffix.lower() not in _EXTENSIONS or is_hidden(f):
                continue
            check_not_broken_link(f)
            if f.is_file():
                records.append((f, _parse_code(f, folder_actor)))
    if not records:
        raise ValueError(
            f"{str(root)!r} has Actor_XX folders but no .wav or .flac file in them;"
            f" expected RAVDESS files named like {_EXAMPLE}."
        )
    seen = {}
    for f, _ in records:
        if f.stem in seen:
            raise ValueError(
                f"RAVDESS clip {f.stem} is present twice: {str(seen[f.stem])!r} "
                f"and {str(f)!r}. Keep one of them."
            )
        seen[f.stem] = f
    return records


def _check_emotions(emotions):
    if emotions is None:
        return None
    emotions = as_selection(emotions, "emotions")
    unknown = [e for e in emotions if e not in EMOTIONS]
    if unknown or not emotions:
        problem = f"unknown name(s) {unknown}" if unknown else "no name given"
        raise ValueError(
            f"Invalid RAVDESS emotions={emotions!r}: {problem}; valid names are "
            f"{list(EMOTIONS)} (or None for all)."
        )
    return set(emotions)


def _check_actors(actors):
    if actors is None:
        return None
    actors = as_selection(actors, "actors")
    bad = [
        a
        for a in actors
        if isinstance(a, bool)
        or not isinstance(a, numbers.Integral)
        or not 1 <= a <= 24
    ]
    if bad or not actors:
        problem = f"invalid id(s) {bad}" if bad else "no actor given"
        raise ValueError(
            f"Invalid RAVDESS actors={actors!r}: {problem}; actors are integers "
            "from 1 to 24 (or None for all)."
        )
    return {int(a) for a in actors}


def _make_bunch(records, *, load_audio, sr, return_X_y):
    paths = [str(f) for f, _ in records]
    codes = {k: np.array([c[k] for _, c in records]) for k in _FIELDS}
    target = as_str_array(EMOTIONS[e - 1] for e in codes["emotion"])
    data = decode_files(paths, sr=sr) if load_audio else paths
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        actor=codes["actor"],
        gender=np.where(codes["actor"] % 2 == 1, "male", "female"),
        intensity=np.where(codes["intensity"] == 1, "normal", "strong"),
        statement=codes["statement"],
        repetition=codes["repetition"],
        vocal_channel=np.where(codes["vocal_channel"] == 1, "speech", "song"),
        filenames=as_str_array(paths),
        target_names=as_str_array(e for e in EMOTIONS if e in set(target)),
        DESCR=DESCR,
    )


def load_ravdess(
    path, *, emotions=None, actors=None, load_audio=False, sr=16000, return_X_y=False
):
    """Load RAVDESS (speech or song, WAV or FLAC) from a local folder.

    Read more in the ``DESCR`` of the returned Bunch.

    Parameters
    ----------
    path : str or os.PathLike
        Folder holding the ``Actor_01`` ... ``Actor_24`` sub-folders (all or
        some of them) with ``.wav`` or ``.flac`` files named by the RAVDESS code
        ``MM-VV-EE-II-SS-RR-AA``. Other files (``README.md``, dot files) are
        ignored.
    emotions : iterable of str or None, default=None
        Emotions to keep, among ``"neutral"``, ``"calm"``, ``"happy"``,
        ``"sad"``, ``"angry"``, ``"fearful"``, ``"disgust"`` and
        ``"surprised"``. None keeps all.
    actors : iterable of int or None, default=None
        Actor ids (1 to 24) to keep. None keeps all.
    load_audio : bool, default=False
        If True, ``data`` holds the decoded waveforms instead of the paths.
    sr : int > 0, default=16000
        Sample rate in Hz of the decoded waveforms (``load_audio=True`` only).
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    bunch : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with, for the ``n_clips`` clips sorted by actor
        then file name:

        data : list of str, or list of ndarray of shape (n_samples_i,)
            Paths of the audio files, or (``load_audio=True``) mono float32
            waveforms at ``sr`` Hz (channels averaged, resampled when needed).
        target : ndarray of shape (n_clips,), dtype str
            Emotion names.
        actor : ndarray of shape (n_clips,), dtype int
            Actor ids, the speaker groups for speaker-independent
            cross-validation.
        gender : ndarray of shape (n_clips,), dtype str
            ``"male"`` (odd actors) or ``"female"`` (even actors).
        intensity : ndarray of shape (n_clips,), dtype str
            ``"normal"`` or ``"strong"``.
        statement : ndarray of shape (n_clips,), dtype int
            1 ("Kids are talking by the door") or 2 ("Dogs are sitting by the
            door").
        repetition : ndarray of shape (n_clips,), dtype int
            1 or 2.
        vocal_channel : ndarray of shape (n_clips,), dtype str
            ``"speech"`` or ``"song"``.
        filenames : ndarray of shape (n_clips,), dtype str
            Paths of the audio files.
        target_names : ndarray of str
            Emotions present, in the canonical RAVDESS order.
        DESCR : str
            Description of the corpus, its licence and its citation.

    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If ``path`` holds no ``Actor_XX`` folder or no audio file, if a file
        name does not parse or disagrees with its folder, if ``emotions`` or
        ``actors`` holds an unknown value, or if no clip is left.

    See Also
    --------
    fetch_ravdess : Download the corpus, then load it.

    Examples
    --------
    >>> from sklearn_tser.datasets import load_ravdess
    >>> bunch = load_ravdess("data/ravdess")  # doctest: +SKIP
    >>> bunch.target[:2], bunch.actor[:2]  # doctest: +SKIP
    (array(['neutral', 'neutral'], dtype='<U9'), array([1, 1]))
    """
    emotions, actors = _check_emotions(emotions), _check_actors(actors)
    sr = check_sr(sr)
    root = Path(path)
    records = [
        (f, c)
        for f, c in _list_clips(root)
        if (emotions is None or EMOTIONS[c["emotion"] - 1] in emotions)
        and (actors is None or c["actor"] in actors)
    ]
    if not records:
        raise ValueError(
            f"No RAVDESS clip in {str(root)!r} matches emotions="
            f"{sorted(emotions) if emotions else None} and actors="
            f"{sorted(actors) if actors else None}."
        )
    return _make_bunch(records, load_audio=load_audio, sr=sr, return_X_y=return_X_y)


def _find_corpus_root(folder):
    """The folder of an extracted archive that holds the Actor_XX folders."""
    candidates = [folder, *sorted(d for d in folder.iterdir() if d.is_dir())]
    for candidate in candidates:
        if _actor_dirs(candidate):
            return candidate
    raise ValueError(
        f"The archive {RAVDESS_SPEECH_ARCHIVE.filename} holds no Actor_XX folder; "
        "it is not the RAVDESS speech archive."
    )


def _ensure_downloaded(data_dir, *, download_if_missing, verbose):
    if (data_dir / COMPLETE_MARKER).is_file():
        return
    if data_dir.is_dir() and any(data_dir.iterdir()):
        raise OSError(
            f"{str(data_dir)!r} exists but holds no complete fetch_ravdess download"
            f" (no {COMPLETE_MARKER} file). Delete that folder and call "
            "fetch_ravdess again, or read your own copy with load_ravdess(path)."
        )
    if not download_if_missing:
        raise OSError(
            f"RAVDESS is not in {str(data_dir)!r} and download_if_missing=False. "
            "Call fetch_ravdess(download_if_missing=True) to download it "
            "(about 208 MB), or pass the data_home it was downloaded to."
        )
    if data_dir.is_dir():
        data_dir.rmdir()  # an empty folder: os.replace could not replace it
    fetch_archive(
        RAVDESS_SPEECH_ARCHIVE,
        data_dir,
        find_root=_find_corpus_root,
        verbose=verbose,
    )


def fetch_ravdess(
    *,
    data_home=None,
    download_if_missing=True,
    emotions=None,
    actors=None,
    load_audio=False,
    sr=16000,
    return_X_y=False,
    verbose=1,
):
    """Load RAVDESS speech, downloading it from Zenodo on first use.

    Downloads ``Audio_Speech_Actors_01-24.zip`` (about 208 MB) from the official
    Zenodo record 1188976, checks its size and published MD5 checksum, and
    unpacks it to ``<data_home>/ravdess``. Later calls read the local copy.

    Parameters
    ----------
    data_home : str or os.PathLike, default=None
        Folder of cached datasets. By default ``~/scikit_learn_data`` or the
        ``SCIKIT_LEARN_DATA`` environment variable, as in
        :func:`sklearn.datasets.get_data_home`.
    download_if_missing : bool, default=True
        If False, raise an :class:`OSError` instead of downloading when the
        data is not available locally.
    emotions : iterable of str or None, default=None
        Emotions to keep; see :func:`load_ravdess`.
    actors : iterable of int or None, default=None
        Actor ids (1 to 24) to keep; see :func:`load_ravdess`.
    load_audio : bool, default=False
        If True, ``data`` holds decoded waveforms instead of paths.
    sr : int > 0, default=16000
        Sample rate in Hz of the decoded waveforms (the files are 48 kHz).
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    verbose : int, default=1
        Print download progress to stderr when > 0.

    Returns
    -------
    bunch : :class:`~sklearn.utils.Bunch`
        See :func:`load_ravdess`.

    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    OSError
        If the data is missing and ``download_if_missing=False``, or if the
        download fails, is interrupted or does not match its checksum (nothing
        is kept in those cases; calling again retries).

    Notes
    -----
    RAVDESS is licensed CC BY-NC-SA 4.0 (non-commercial use only); see
    ``DESCR`` for the citation.

    Examples
    --------
    >>> from sklearn_tser.datasets import fetch_ravdess
    >>> X, y = fetch_ravdess(return_X_y=True)  # doctest: +SKIP
    >>> len(X)  # doctest: +SKIP
    1440
    """
    _check_emotions(emotions)  # fail before downloading 208 MB
    _check_actors(actors)
    check_sr(sr)
    data_dir = get_data_home(data_home) / "ravdess"
    _ensure_downloaded(
        data_dir, download_if_missing=download_if_missing, verbose=verbose
    )
    return load_ravdess(
        data_dir,
        emotions=emotions,
        actors=actors,
        load_audio=load_audio,
        sr=sr,
        return_X_y=return_X_y,
    )
