"""IEMOCAP: the Interactive Emotional Dyadic Motion Capture database."""

import numbers
import re
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._base import as_selection, as_str_array, check_sr, decode_files, is_hidden

# Label code of the EmoEvaluation files -> emotion name (None: no agreement).
_CODES = {
    "neu": "neutral",
    "hap": "happy",
    "exc": "excited",
    "sad": "sad",
    "ang": "angry",
    "fru": "frustrated",
    "sur": "surprised",
    "fea": "fearful",
    "dis": "disgust",
    "oth": "other",
    "xxx": None,
}
EMOTIONS = tuple(name for name in _CODES.values() if name is not None)
_FOUR_CLASS = {
    "neu": "neutral",
    "hap": "happy",
    "exc": "happy",
    "sad": "sad",
    "ang": "angry",
}
_LABEL_RE = re.compile(
    r"\[\s*[\d.]+\s*-\s*[\d.]+\s*\]\s+(?P<utt>\S+)\s+(?P<code>\S+)\s+"
    r"\[\s*(?P<v>[\d.]+)\s*,\s*(?P<a>[\d.]+)\s*,\s*(?P<d>[\d.]+)\s*\]"
)
# Turn names such as Ses01F_impro01_F000, Ses05M_script01_1b_M012, Ses03F_impro06_FXX0:
# the letter after the last underscore is the gender of the turn's speaker.
_UTTERANCE_RE = re.compile(r"(?P<ses>Ses\d{2})[FM]_.+_(?P<sex>[FM])[A-Z0-9]+")
_REQUEST_URL = "https://sail.usc.edu/iemocap/"

DESCR = """\
.. _iemocap_dataset:

IEMOCAP (Interactive Emotional Dyadic Motion Capture database)
--------------------------------------------------------------

About 12 hours of English dyadic conversations by 10 actors, recorded in five
sessions of one female and one male actor each, partly improvised (``impro``
dialogs) and partly scripted (``script`` dialogs). The dialogs are segmented
into 10,039 speaker turns (utterances, 16 kHz mono WAV). Each turn has a
categorical label agreed by a majority of annotators (neutral, happy, excited,
sad, angry, frustrated, surprised, fearful, disgust, other; ``xxx`` when there
was no agreement, never returned here) and mean dimensional ratings of valence,
arousal (activation) and dominance on a 1 to 5 scale.

The common four-class setup (``emotions="4class"``) keeps neutral, happy (with
excited merged in), sad and angry: 5,531 utterances in the full release. Use
``session`` as the ``groups`` of :class:`~sklearn.model_selection.LeaveOneGroupOut`
for leave-one-session-out (speaker-independent) evaluation, or ``speaker`` to
leave one speaker out.

**License**: IEMOCAP is licence-gated. It is distributed by the SAIL lab of the
University of Southern California to researchers who sign its release form,
and may not be redistributed. Request it at https://sail.usc.edu/iemocap/ ;
sklearn-tser therefore has no fetcher for it: pass the ``IEMOCAP_full_release``
folder you received to :func:`load_iemocap`.

**Citation**: Busso, C., Bulut, M., Lee, C.-C., Kazemzadeh, A., Mower, E.,
Kim, S., Chang, J. N., Lee, S., & Narayanan, S. S. (2008). IEMOCAP: Interactive
emotional dyadic motion capture database. Language Resources and Evaluation,
42(4), 335-359. https://doi.org/10.1007/s10579-008-9076-6
"""


def _label_map(emotions):
    """Return ({code: name}, names in canonical order) for ``emotions``."""
    if isinstance(emotions, str):
        if emotions == "4class":
            return _FOUR_CLASS, ("neutral", "happy", "sad", "angry")
        if emotions == "all":
            return {c: n for c, n in _CODES.items() if n is not None}, EMOTIONS
        raise ValueError(
            f"emotions={emotions!r} is not a preset; use '4class', 'all' or a "
            f"list of names among {list(EMOTIONS)}."
        )
    names = as_selection(emotions, "emotions")
    unknown = [n for n in names if n not in EMOTIONS]
    if unknown or not names:
        problem = f"unknown name(s) {unknown}" if unknown else "no name given"
        raise ValueError(
            f"Invalid IEMOCAP emotions={names!r}: {problem}; valid names are "
            f"{list(EMOTIONS)}, or use the presets '4class' and 'all'."
        )
    return (
        {c: n for c, n in _CODES.items() if n in names},
        tuple(n for n in EMOTIONS if n in names),
    )


def _resolve_root(path):
    """The IEMOCAP_full_release folder: ``path`` itself or its sub-folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"IEMOCAP folder {str(path)!r} does not exist. IEMOCAP is "
            f"licence-gated: request it at {_REQUEST_URL}, then pass its "
            "IEMOCAP_full_release folder."
        )
    for candidate in (path, path / "IEMOCAP_full_release"):
        if any((candidate / f"Session{i}").is_dir() for i in range(1, 6)):
            return candidate
    raise ValueError(
        f"{str(path)!r} is not an IEMOCAP release: expected folders Session1 ... "
        "Session5 in it or in its IEMOCAP_full_release sub-folder."
    )


def _check_sessions(root, sessions):
    present = [i for i in range(1, 6) if (root / f"Session{i}").is_dir()]
    if sessions is None:
        return present
    sessions = as_selection(sessions, "sessions")
    bad = [
        s
        for s in sessions
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or not 1 <= s <= 5
    ]
    if bad or not sessions:
        problem = f"invalid session(s) {bad}" if bad else "no session given"
        raise ValueError(
            f"Invalid IEMOCAP sessions={sessions!r}: {problem}; sessions are "
            "integers from 1 to 5 (or None for all)."
        )
    missing = sorted({int(s) for s in sessions} - set(present))
    if missing:
        raise ValueError(
            f"IEMOCAP session(s) {missing} requested but folder(s) "
            f"{[str(root / f'Session{s}') for s in missing]} do not exist."
        )
    return sorted({int(s) for s in sessions})


def _parse_line(line, where):
    """Parse one ``[start - end] TURN CODE [V, A, D]`` line into a dict."""
    match = _LABEL_RE.fullmatch(line.strip())
    utt = _UTTERANCE_RE.fullmatch(match["utt"]) if match else None
    if utt is None:
        raise ValueError(
            f"{where}: cannot parse the label line {line.strip()!r}; expected "
            "'[START - END]<TAB>SesNNX_dialog_X000<TAB>code<TAB>[V, A, D]'."
        )
    if match["code"] not in _CODES:
        raise ValueError(
            f"{where}: unknown emotion code {match['code']!r}; IEMOCAP codes are "
            f"{list(_CODES)}."
        )
    return {
        "utterance_id": match["utt"],
        "dialog": match["utt"].rsplit("_", 1)[0],
        "speaker": utt["ses"] + utt["sex"],
        "code": match["code"],
        "vad": (float(match["v"]), float(match["a"]), float(match["d"])),
    }


def _parse_label_file(label_file):
    """Every labelled turn of one EmoEvaluation file."""
    text = label_file.read_text(encoding="utf-8", errors="replace")
    return [
        _parse_line(line, f"{label_file}, line {i}")
        for i, line in enumerate(text.splitlines(), start=1)
        if line.startswith("[")
    ]


def _session_records(root, session):
    eval_dir = root / f"Session{session}" / "dialog" / "EmoEvaluation"
    label_files = (
        sorted(f for f in eval_dir.glob("*.txt") if f.is_file() and not is_hidden(f))
        if eval_dir.is_dir()
        else []
    )
    if not label_files:
        raise ValueError(
            f"IEMOCAP session {session} has no label file: expected "
            f"{str(eval_dir / '*.txt')!r} (files such as Ses01F_impro01.txt)."
        )
    wav_dir = root / f"Session{session}" / "sentences" / "wav"
    records = []
    for label_file in label_files:
        for rec in _parse_label_file(label_file):
            rec["session"] = session
            rec["source"] = label_file
            rec["path"] = wav_dir / rec["dialog"] / f"{rec['utterance_id']}.wav"
            records.append(rec)
    return records


def _check_records(records):
    seen = {}
    for rec in records:
        if rec["utterance_id"] in seen:
            raise ValueError(
                f"IEMOCAP utterance {rec['utterance_id']} is labelled twice, in "
                f"{str(seen[rec['utterance_id']])!r} and {str(rec['source'])!r}."
            )
        seen[rec["utterance_id"]] = rec["source"]
    missing = [rec for rec in records if not rec["path"].is_file()]
    if missing:
        raise FileNotFoundError(
            f"The audio of the labelled IEMOCAP utterance "
            f"{missing[0]['utterance_id']} is missing: expected "
            f"{str(missing[0]['path'])!r} ({len(missing)} labelled utterance(s) "
            "have no WAV file). Check that the sentences/wav folders are complete."
        )


def _make_bunch(records, target_order, *, load_audio, sr, return_X_y):
    paths = [str(rec["path"]) for rec in records]
    target = as_str_array(rec["target"] for rec in records)
    data = decode_files(paths, sr=sr) if load_audio else paths
    if return_X_y:
        return data, target
    vad = np.array([rec["vad"] for rec in records], dtype=float).reshape(-1, 3)
    dialog = as_str_array(rec["dialog"] for rec in records)
    return Bunch(
        data=data,
        target=target,
        session=np.array([rec["session"] for rec in records], dtype=int),
        speaker=as_str_array(rec["speaker"] for rec in records),
        utterance_id=as_str_array(rec["utterance_id"] for rec in records),
        dialog=dialog,
        valence=vad[:, 0],
        arousal=vad[:, 1],
        dominance=vad[:, 2],
        improvised=np.array(["_impro" in d for d in dialog], dtype=bool),
        filenames=as_str_array(paths),
        target_names=as_str_array(n for n in target_order if n in set(target)),
        DESCR=DESCR,
    )


def load_iemocap(
    path,
    *,
    emotions="4class",
    sessions=None,
    load_audio=False,
    sr=16000,
    return_X_y=False,
):
    """Load the utterances of IEMOCAP and their emotion labels.

    IEMOCAP is licence-gated (request it from USC SAIL), so there is no
    fetcher: pass the folder you received. Labels come from the
    ``Session*/dialog/EmoEvaluation/*.txt`` files, audio from
    ``Session*/sentences/wav/<dialog>/<utterance>.wav``.

    Parameters
    ----------
    path : str or os.PathLike
        The ``IEMOCAP_full_release`` folder, or the folder that holds it.
    emotions : {"4class", "all"} or iterable of str, default="4class"
        ``"4class"``: neutral, happy (excited merged in), sad and angry, the
        common setup. ``"all"``: every label except ``xxx`` (no agreement):
        neutral, happy, excited, sad, angry, frustrated, surprised, fearful,
        disgust and other. A list of those names keeps only them, unmerged
        (``["happy"]`` keeps ``hap`` but not ``exc``).
    sessions : iterable of int or None, default=None
        Sessions (1 to 5) to load. None loads every session folder present.
    load_audio : bool, default=False
        If True, ``data`` holds the decoded waveforms instead of the paths.
    sr : int > 0, default=16000
        Sample rate in Hz of the decoded waveforms (``load_audio=True`` only).
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    bunch : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with, for the ``n_clips`` kept utterances sorted
        by session, dialog and utterance id:

        data : list of str, or list of ndarray of shape (n_samples_i,)
            Paths of the WAV files, or (``load_audio=True``) mono float32
            waveforms at ``sr`` Hz.
        target : ndarray of shape (n_clips,), dtype str
            Emotion names.
        session : ndarray of shape (n_clips,), dtype int
            Session (1 to 5), the groups for leave-one-session-out.
        speaker : ndarray of shape (n_clips,), dtype str
            Speaker of the turn, e.g. ``"Ses01F"`` or ``"Ses01M"``.
        utterance_id : ndarray of shape (n_clips,), dtype str
            Turn names, e.g. ``"Ses01F_impro01_F000"``.
        dialog : ndarray of shape (n_clips,), dtype str
            Dialog names, e.g. ``"Ses01F_impro01"``.
        valence, arousal, dominance : ndarray of shape (n_clips,), dtype float
            Mean dimensional ratings (1 to 5).
        improvised : ndarray of shape (n_clips,), dtype bool
            True for improvised dialogs, False for scripted ones.
        filenames : ndarray of shape (n_clips,), dtype str
            Paths of the WAV files.
        target_names : ndarray of str
            Emotions present, in canonical order.
        DESCR : str
            Description of the corpus, its licence and its citation.

    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist or a kept utterance has no WAV file.
    ValueError
        If ``path`` is not an IEMOCAP release, a session has no label file, a
        label line does not parse, an option is invalid, or nothing is left.

    Examples
    --------
    >>> from sklearn_tser.datasets import load_iemocap
    >>> bunch = load_iemocap("IEMOCAP_full_release")  # doctest: +SKIP
    >>> len(bunch.data), list(bunch.target_names)  # doctest: +SKIP
    (5531, ['neutral', 'happy', 'sad', 'angry'])
    """
    code_to_name, target_order = _label_map(emotions)
    sr = check_sr(sr)
    root = _resolve_root(path)
    records = []
    for session in _check_sessions(root, sessions):
        records += _session_records(root, session)
    records = [rec for rec in records if rec["code"] in code_to_name]
    if not records:
        raise ValueError(
            f"No IEMOCAP utterance of {str(root)!r} has a label in "
            f"emotions={emotions!r}."
        )
    _check_records(records)
    for rec in records:
        rec["target"] = code_to_name[rec["code"]]
    records.sort(key=lambda rec: (rec["session"], str(rec["path"])))
    return _make_bunch(
        records, target_order, load_audio=load_audio, sr=sr, return_X_y=return_X_y
    )
