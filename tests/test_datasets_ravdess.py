"""Tests of load_ravdess (real corpus and fake trees) and fetch_ravdess.

fetch_ravdess is tested against a local HTTP server that serves a small zip of
fake RAVDESS files; nothing is downloaded from the internet.
"""

import hashlib
import http.server
import io
import threading
import time
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sklearn_tser.datasets import _base, _ravdess, fetch_ravdess, load_ravdess
from sklearn_tser.datasets._base import COMPLETE_MARKER, RemoteFileMetadata

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EMOTIONS = [
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
]


@pytest.fixture(scope="module")
def ravdess_dir():
    path = DATA / "ravdess"
    if not path.is_dir():
        pytest.skip(f"RAVDESS not found at {path}")
    return path


@pytest.fixture(scope="module")
def original_dir():
    path = DATA / "ravdess-original-sample"
    if not path.is_dir():
        pytest.skip(f"RAVDESS original sample not found at {path}")
    return path


def _wav_bytes(n=160, sr=16000):
    buf = io.BytesIO()
    tone = 0.1 * np.sin(2 * np.pi * 440 * np.arange(n) / sr)
    sf.write(buf, tone, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _write_tree(root, names):
    """Write tiny real WAVs at root/Actor_XX/<name> for each name (actor from it)."""
    for name in names:
        actor = name.split(".")[0].split("-")[-1]
        path = root / f"Actor_{actor}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_wav_bytes())
    return root


FAKE = [
    "03-01-01-01-01-01-01.wav",
    "03-01-05-02-01-02-01.wav",
    "03-01-04-01-02-01-01.wav",
    "03-01-05-01-01-01-02.wav",
    "03-01-04-02-02-02-02.wav",
    "03-01-08-01-01-01-02.wav",
]


# --- the real corpus ------------------------------------------------------


def test_real_ravdess_counts(ravdess_dir):
    bunch = load_ravdess(ravdess_dir)
    assert len(bunch.data) == len(bunch.target) == 1440
    counts = Counter(bunch.target)
    assert counts["neutral"] == 96
    assert all(counts[e] == 192 for e in EMOTIONS[1:])
    assert list(bunch.target_names) == EMOTIONS
    assert len(np.unique(bunch.actor)) == 24
    assert set(Counter(bunch.actor).values()) == {60}
    assert set(bunch.gender[bunch.actor % 2 == 1]) == {"male"}
    assert set(bunch.gender[bunch.actor % 2 == 0]) == {"female"}
    assert Counter(bunch.intensity) == {"normal": 768, "strong": 672}
    assert set(bunch.statement) == set(bunch.repetition) == {1, 2}
    assert set(bunch.vocal_channel) == {"speech"}
    assert all(isinstance(p, str) and Path(p).is_file() for p in bunch.data)
    assert list(bunch.filenames) == bunch.data
    keys = [(a, Path(p).name) for a, p in zip(bunch.actor, bunch.data, strict=True)]
    assert keys == sorted(keys)
    assert "CC BY-NC-SA 4.0" in bunch.DESCR and "Livingstone" in bunch.DESCR


def test_real_ravdess_filters(ravdess_dir):
    bunch = load_ravdess(ravdess_dir, emotions=["sad", "angry"], actors=[1, 2, 3])
    assert len(bunch.data) == 3 * 16
    assert list(bunch.target_names) == ["sad", "angry"]
    assert set(bunch.actor) == {1, 2, 3}
    X, y = load_ravdess(ravdess_dir, emotions=("neutral",), return_X_y=True)
    assert len(X) == len(y) == 96 and set(y) == {"neutral"}


def test_original_wavs_decode_like_the_converted_flacs(original_dir, ravdess_dir):
    bunch = load_ravdess(original_dir, load_audio=True)
    assert len(bunch.data) == 8
    assert list(bunch.target_names) == EMOTIONS
    for y, path in zip(bunch.data, bunch.filenames, strict=True):
        info = sf.info(path)
        assert info.samplerate == 48000
        assert y.ndim == 1 and y.dtype == np.float32
        assert abs(len(y) - info.frames / 3) <= 1
        actor = Path(path).parent.name
        flac, _ = sf.read(ravdess_dir / actor / (Path(path).stem + ".flac"))
        n = min(len(y), len(flac))
        assert np.corrcoef(y[:n], flac[:n])[0, 1] > 0.99
    stereo = "03-01-08-01-02-02-01"
    assert sf.info(next(p for p in bunch.filenames if stereo in p)).channels == 2


# --- fake trees: options and validation -----------------------------------


def test_fake_tree_fields_and_options(tmp_path):
    root = _write_tree(tmp_path, FAKE)
    (root / "README.md").write_text("not audio")
    (root / "Actor_01" / "notes.txt").write_text("not audio")
    (root / "Actor_01" / "._03-01-01-01-01-01-01.wav").write_bytes(b"\x00\x05")
    bunch = load_ravdess(root)
    assert list(bunch.target) == [
        "neutral",
        "sad",
        "angry",
        "sad",
        "angry",
        "surprised",
    ]
    assert list(bunch.actor) == [1, 1, 1, 2, 2, 2]
    assert list(bunch.intensity) == ["normal"] * 2 + ["strong"] * 2 + ["normal"] * 2
    assert list(bunch.target_names) == ["neutral", "sad", "angry", "surprised"]
    assert list(bunch.statement) == [1, 2, 1, 2, 1, 1]
    assert list(bunch.repetition) == [1, 1, 2, 2, 1, 1]
    assert load_ravdess(root, actors=[2], emotions=["angry"]).data == [
        str(root / "Actor_02" / "03-01-05-01-01-01-02.wav")
    ]
    X, y = load_ravdess(root, load_audio=True, sr=8000, return_X_y=True)
    assert [x.shape for x in X] == [(80,)] * 6 and X[0].dtype == np.float32
    assert list(y) == list(bunch.target)


def test_flac_and_wav_of_the_same_clip_are_rejected(tmp_path):
    root = _write_tree(tmp_path, FAKE[:1])
    sf.write(root / "Actor_01" / "03-01-01-01-01-01-01.flac", np.zeros(16), 16000)
    with pytest.raises(ValueError, match="present twice"):
        load_ravdess(root)


@pytest.mark.parametrize("target", ["missing.wav", "03-01-05-01-01-01-01.wav"])
def test_broken_or_circular_links_are_named(tmp_path, target):
    root = _write_tree(tmp_path, FAKE[:1])
    link = root / "Actor_01" / "03-01-05-01-01-01-01.wav"
    link.symlink_to(root / "Actor_01" / target)  # to nothing, or to itself
    with pytest.raises(ValueError, match="03-01-05-01-01-01-01.wav' is a broken"):
        load_ravdess(root)


@pytest.mark.parametrize(
    "name, match",
    [
        ("03-01-01-01-01-01.wav", "naming code"),
        ("clip_angry.wav", "naming code"),
        ("03-01-09-01-01-01-01.wav", "'emotion' is 09"),
        ("03-01-01-02-01-01-01.wav", "neutral .* strong"),
        ("03-01-05-01-01-01-02.wav", "names actor 02 but lies in folder Actor_01"),
    ],
)
def test_bad_file_names_are_named_in_the_error(tmp_path, name, match):
    _write_tree(tmp_path, FAKE[:1])
    (tmp_path / "Actor_01" / name).write_bytes(_wav_bytes())
    with pytest.raises(ValueError, match=match) as excinfo:
        load_ravdess(tmp_path)
    assert name in str(excinfo.value)


def test_not_a_ravdess_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_ravdess(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        load_ravdess(tmp_path / "file.txt")
    with pytest.raises(ValueError, match="expected sub-folders Actor_01"):
        load_ravdess(tmp_path)
    (tmp_path / "Actor_01").mkdir()
    with pytest.raises(ValueError, match="no .wav or .flac file"):
        load_ravdess(tmp_path)


def test_nested_corpus_gets_a_hint(tmp_path):
    _write_tree(tmp_path / "Audio_Speech_Actors_01-24", FAKE)
    with pytest.raises(ValueError, match="Audio_Speech_Actors_01-24' has them"):
        load_ravdess(tmp_path)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"emotions": ["angry", "joy"]}, ValueError, r"\['joy'\].*valid names"),
        ({"emotions": []}, ValueError, "no name given"),
        ({"emotions": "angry"}, TypeError, r"emotions=\['angry'\]"),
        ({"actors": 1}, TypeError, r"got int 1; wrap it in a list: actors=\[1\]"),
        ({"actors": [0, 25]}, ValueError, r"invalid id\(s\) \[0, 25\].*1 to 24"),
        ({"actors": []}, ValueError, "no actor given"),
        ({"actors": ["01"]}, ValueError, "1 to 24"),
        ({"emotions": ["calm"]}, ValueError, "No RAVDESS clip"),
        ({"actors": [3]}, ValueError, "No RAVDESS clip"),
        ({"sr": 0}, ValueError, "sr must be an integer >= 1"),
    ],
)
def test_invalid_options(tmp_path, kwargs, error, match):
    _write_tree(tmp_path, FAKE)
    with pytest.raises(error, match=match):
        load_ravdess(tmp_path, **kwargs)


# --- fetch_ravdess against a local server ---------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        server.requests.append(self.path)
        if server.status != 200:
            self.send_error(server.status)
            return
        body = server.payload
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        if getattr(server, "endless", False):  # no length, and no end
            self.end_headers()
            while True:
                try:
                    self.wfile.write(body)
                except OSError:
                    return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if getattr(server, "drip", 0):  # a byte now and then
            for byte in body:
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(server.drip)
            return
        if server.truncate:  # close the connection in the middle of the body
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _make_zip(prefix="", extra=()):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in FAKE:
            actor = name.split(".")[0].split("-")[-1]
            zf.writestr(f"{prefix}Actor_{actor}/{name}", _wav_bytes())
        for member in extra:
            zf.writestr(member, b"x")
    return buf.getvalue()


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.requests, httpd.status, httpd.truncate = [], 200, False
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()

    def serve(payload, checksum=None):
        """Serve ``payload`` and point the fetcher's metadata at it."""
        httpd.payload = payload
        remote = RemoteFileMetadata(
            filename="Audio_Speech_Actors_01-24.zip",
            url=f"http://127.0.0.1:{httpd.server_port}/records/1/files/a.zip",
            checksum=checksum or hashlib.md5(payload).hexdigest(),
            checksum_algorithm="md5",
            size=len(payload),
        )
        monkeypatch.setattr(_ravdess, "RAVDESS_SPEECH_ARCHIVE", remote)

    httpd.serve = serve
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("prefix", ["", "Audio_Speech_Actors_01-24/"])
def test_fetch_downloads_once_and_loads(tmp_path, server, prefix):
    server.serve(_make_zip(prefix))
    bunch = fetch_ravdess(data_home=tmp_path, verbose=0)
    assert len(bunch.data) == 6 and list(bunch.actor) == [1, 1, 1, 2, 2, 2]
    assert len(server.requests) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ravdess"]
    assert (tmp_path / "ravdess" / COMPLETE_MARKER).is_file()
    assert (tmp_path / "ravdess" / "Actor_02").is_dir()
    X, y = fetch_ravdess(
        data_home=tmp_path, emotions=["sad"], return_X_y=True, verbose=0
    )
    assert list(y) == ["sad", "sad"] and len(server.requests) == 1
    X, y = fetch_ravdess(
        data_home=tmp_path,
        download_if_missing=False,
        load_audio=True,
        return_X_y=True,
    )
    assert X[0].shape == (160,) and len(server.requests) == 1


def test_fetch_reports_progress(tmp_path, server, capsys):
    server.serve(_make_zip())
    fetch_ravdess(data_home=tmp_path, verbose=1)
    err = capsys.readouterr().err
    assert "Downloading http://127.0.0.1" in err and "Extracting" in err


def _assert_nothing_kept(data_home):
    assert list(Path(data_home).iterdir()) == []


def test_fetch_corrupt_download_keeps_nothing(tmp_path, server):
    payload = _make_zip()
    corrupt = payload[:100] + bytes([payload[100] ^ 0xFF]) + payload[101:]
    server.serve(corrupt, checksum=hashlib.md5(payload).hexdigest())
    with pytest.raises(OSError, match="corrupt: its md5 checksum does not match"):
        fetch_ravdess(data_home=tmp_path, verbose=0)
    _assert_nothing_kept(tmp_path)
    server.serve(payload)  # a retry with good data works
    assert len(fetch_ravdess(data_home=tmp_path, verbose=0).data) == 6


@pytest.mark.parametrize(
    "bound, behaviour, match",
    [
        (None, {"truncate": True}, "incomplete: the connection was interrupted"),
        # More than announced, without end.
        (("SIZE_MARGIN", 1000), {"endless": True}, "stopped: more than .* bytes"),
        # A byte within each read's timeout: only the overall deadline stops it
        # (the whole body would take minutes).
        (("DOWNLOAD_DEADLINE", 0.5), {"drip": 0.05}, "stopped: it took more than"),
    ],
)
def test_fetch_broken_or_endless_downloads_keep_nothing(
    tmp_path, server, monkeypatch, bound, behaviour, match
):
    if bound is not None:
        monkeypatch.setattr(_base, *bound)
    server.serve(_make_zip())
    for name, value in behaviour.items():
        setattr(server, name, value)
    start = time.monotonic()
    with pytest.raises(OSError, match=match):
        fetch_ravdess(data_home=tmp_path, verbose=0)
    assert time.monotonic() - start < 10
    _assert_nothing_kept(tmp_path)


def test_fetch_http_error_keeps_nothing(tmp_path, server):
    server.serve(_make_zip())
    server.status = 404
    with pytest.raises(OSError, match="failed: 404 Client Error"):
        fetch_ravdess(data_home=tmp_path, verbose=0)
    _assert_nothing_kept(tmp_path)


@pytest.mark.parametrize(
    "payload, match",
    [
        (b"this is not a zip archive", "not a valid ZIP"),
        (_make_zip(extra=["../evil.wav"]), "outside"),
        (_make_zip(prefix="other/deeper/"), "holds no Actor_XX folder"),
    ],
)
def test_fetch_bad_archive_keeps_nothing(tmp_path, server, payload, match):
    server.serve(payload)
    with pytest.raises((OSError, ValueError), match=match):
        fetch_ravdess(data_home=tmp_path, verbose=0)
    _assert_nothing_kept(tmp_path)
    assert not (tmp_path.parent / "evil.wav").exists()


def test_fetch_without_download(tmp_path, server):
    server.serve(_make_zip())
    with pytest.raises(OSError, match="download_if_missing=False"):
        fetch_ravdess(data_home=tmp_path, download_if_missing=False)
    assert server.requests == []


def test_fetch_refuses_a_foreign_folder(tmp_path, server):
    server.serve(_make_zip())
    _write_tree(tmp_path / "ravdess", FAKE)
    with pytest.raises(OSError, match="no complete fetch_ravdess download"):
        fetch_ravdess(data_home=tmp_path, verbose=0)
    assert server.requests == []


def test_fetch_validates_options_before_downloading(tmp_path, server):
    server.serve(_make_zip())
    with pytest.raises(ValueError, match="Invalid RAVDESS emotions"):
        fetch_ravdess(data_home=tmp_path, emotions=["joy"])
    assert server.requests == []


def test_fetch_metadata_is_the_official_zenodo_archive():
    remote = _ravdess.RAVDESS_SPEECH_ARCHIVE
    assert remote.url.startswith("https://zenodo.org/records/1188976/files/")
    assert remote.url.endswith(remote.filename)
    assert remote.checksum_algorithm == "md5" and len(remote.checksum) == 32
    assert remote.size == 208_468_073
