"""Persistence: pickle/joblib (device-agnostic) and the safe save/load format."""

import hashlib
import json
import os
import pickle
import stat
import warnings

import joblib
import numpy as np
import pytest
import safetensors.torch
import torch
from _params import TINY
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import sklearn_tser
from sklearn_tser import EmotionEmbeddingClassifier, LogMelTransformer, load, save
from sklearn_tser._persistence import FORMAT, _digest
from sklearn_tser._training import member_nets
from sklearn_tser.datasets import make_emotional_speech
from sklearn_tser.exceptions import IncompatibleModelVersionError, ModelFileError

METHODS = ["predict", "predict_proba", "decision_function", "transform"]


@pytest.fixture(scope="module")
def audio():
    return make_emotional_speech(
        n_samples=24,
        n_classes=3,
        min_duration=0.3,
        max_duration=0.6,
        random_state=0,
        return_X_y=True,
    )


@pytest.fixture(scope="module")
def pipe(audio):
    X, y = audio
    return Pipeline(
        [
            ("mel", LogMelTransformer(n_mels=16)),
            ("clf", EmotionEmbeddingClassifier(**TINY)),
        ]
    ).fit(X, y)


@pytest.fixture(scope="module")
def saved(pipe, tmp_path_factory):
    return save(pipe, tmp_path_factory.mktemp("model") / "pipe.safetensors")


def assert_same_outputs(a, b, X):
    for method in METHODS:
        np.testing.assert_array_equal(getattr(a, method)(X), getattr(b, method)(X))


def test_pipeline_round_trip_gives_identical_predictions(pipe, saved, audio):
    X, _ = audio
    again = load(saved)
    assert isinstance(again, Pipeline)
    assert [name for name, _ in again.steps] == ["mel", "clf"]
    assert again["mel"].get_params() == pipe["mel"].get_params()
    assert again["clf"].get_params() == pipe["clf"].get_params()
    clf, loaded = pipe["clf"], again["clf"]
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    assert loaded.classes_.dtype == clf.classes_.dtype
    for attr in ["centroids_", "angles_", "feature_mean_", "feature_std_"]:
        np.testing.assert_array_equal(getattr(loaded, attr), getattr(clf, attr))
    assert loaded.proba_scale_ == clf.proba_scale_
    assert loaded.n_features_in_ == clf.n_features_in_
    assert len(loaded.net_.history) == len(clf.net_.history)
    assert_same_outputs(pipe, again, X)


def test_file_is_plain_safetensors_with_json_metadata(saved):
    with safetensors.safe_open(saved, framework="pt") as f:
        metadata = f.metadata()
        keys = list(f.keys())
    assert metadata["format"] == FORMAT
    doc = json.loads(metadata["sklearn_tser"])
    assert doc["library_version"] == sklearn_tser.__version__
    assert doc["estimator"]["class"] == "Pipeline"
    assert doc["estimator"]["steps"][1][1]["params"]["n_layers"] == 6
    assert len(metadata["sha256"]) == 64
    assert "clf/centroids_" in keys
    assert any(k.startswith("clf/net_/") for k in keys)


@pytest.mark.parametrize(
    "labels",
    [
        np.array([3, 7, 9]),
        np.array(["a", "bb", "ccc"], dtype=object),
        np.array([3, 7, 9], dtype=np.uint16),
        np.array([3, 7, 2**40], dtype=np.uint64),
        np.array([3, 7, 9], dtype=">i4"),
    ],
    ids=["int", "object-str", "uint16", "uint64", "big-endian"],
)
def test_classifier_alone_keeps_label_types(labels, tmp_path):
    rng = np.random.default_rng(0)
    y = labels[np.arange(30) % 3]
    X = rng.standard_normal((30, 6, 12)).astype(np.float32)
    X[:, :2] += (np.arange(30) % 3)[:, None, None]
    X[::4, :, 9:] = np.nan  # padding
    clf = EmotionEmbeddingClassifier(**{**TINY, "standardize": "clip"}).fit(X, y)
    again = load(save(clf, tmp_path / "clf.safetensors"))
    assert again.classes_.dtype == clf.classes_.dtype
    assert list(again.classes_) == list(clf.classes_)
    assert not hasattr(again, "feature_mean_")  # standardize="clip"
    assert_same_outputs(clf, again, X)


def test_an_array_stored_as_json_reads_back_in_its_shape():
    # A dtype the tensors do not take goes to JSON as the flat list load reads,
    # then takes its shape back.
    from sklearn_tser import _persistence

    array = np.arange(6, dtype=np.uint16).reshape(2, 3)
    tensors = {}
    spec = _persistence._encode_array(array, "a", tensors, "a")
    assert tensors == {} and spec["array"] == [0, 1, 2, 3, 4, 5]
    again = _persistence._decode_array(spec, tensors, "a")
    np.testing.assert_array_equal(again, array)
    assert again.dtype == array.dtype


def test_labels_longer_than_a_file_allows_are_refused_at_save(tmp_path):
    # load refuses labels of more than MAX_STRING_LENGTH characters, so save
    # does not write them.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 6, 12)).astype(np.float32)
    y = np.array(["a" * 300, "b", "c"])[np.arange(12) % 3]
    clf = EmotionEmbeddingClassifier(**TINY).fit(X, y)
    with pytest.raises(ValueError, match="is longer than the 256 characters a label"):
        save(clf, tmp_path / "clf.safetensors")
    assert list(tmp_path.iterdir()) == []
    # Short labels in a wider string dtype than load reads are narrowed.
    clf.classes_ = np.array(["a", "b", "c"], dtype="U300")
    again = load(save(clf, tmp_path / "clf.safetensors"))
    assert list(again.classes_) == ["a", "b", "c"] and again.classes_.dtype == "U1"


def test_loaded_classifier_can_continue_training(pipe, saved, audio):
    X, y = audio
    clf = load(saved)["clf"]
    n_epochs = len(clf.net_.history)
    S = pipe["mel"].transform(X)
    clf.set_params(warm_start=True, pretrain_epochs=1, triplet_epochs=0)
    clf.fit(S, y)
    assert len(clf.net_.history) == n_epochs + 1
    assert clf.predict(S).shape == (len(y),)


def test_warm_start_moves_the_loaded_network_to_the_fit_device(
    pipe, saved, audio, monkeypatch
):
    """load() puts the weights on the CPU; a warm start on another device (on
    a GPU machine, the default "auto") must take them there before its first
    batch, which goes to that device. Spied here on the CPU: the module is
    sent to the fit's device."""
    X, y = audio
    clf = load(saved)["clf"]
    S = pipe["mel"].transform(X)
    module = clf.net_.module_
    moved, to = [], torch.nn.Module.to

    def spy(self, *args, **kwargs):
        if self is module:
            moved.append(torch.device(*args))
        return to(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", spy)
    clf.set_params(warm_start=True, pretrain_epochs=1, triplet_epochs=0)
    clf.fit(S, y)
    assert moved == [torch.device("cpu")]


def test_log_mel_transformer_round_trip(tmp_path):
    mel = LogMelTransformer(n_mels=20, fmax=6000.0, top_db=None, max_frames=7)
    again = load(save(mel, tmp_path / "mel.safetensors"))
    assert type(again) is LogMelTransformer
    assert again.get_params() == mel.get_params()
    X = [np.sin(np.arange(3000) / 7.0)]
    np.testing.assert_array_equal(again.transform(X), mel.transform(X))


def test_save_replaces_the_file_atomically(pipe, tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"old")
    save(pipe, path)
    save(pipe, path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
    assert isinstance(load(path), Pipeline)


def test_save_names_the_path_it_cannot_write(tmp_path):
    mel = LogMelTransformer()
    with pytest.raises(IsADirectoryError, match="it is a folder. Name a file in it"):
        save(mel, tmp_path)
    missing = tmp_path / "missing" / "mel.safetensors"
    with pytest.raises(FileNotFoundError, match="the folder .*missing' does not"):
        save(mel, missing)
    assert list(tmp_path.iterdir()) == []  # no temporary file left


def test_save_names_a_folder_it_may_not_write(tmp_path, monkeypatch):
    # The check before any encoding (root may write anywhere, so the folder's
    # permission is simulated), then the error of the write itself.
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(PermissionError, match="is not writable. Name a file"):
        save(LogMelTransformer(), tmp_path / "mel.safetensors")
    monkeypatch.undo()

    def refuse(path, *args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(PermissionError, match="write the model to '.*mel.safet"):
        save(LogMelTransformer(), tmp_path / "mel.safetensors")


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_save_gives_the_file_the_mode_of_the_umask(pipe, tmp_path, umask):
    old = os.umask(umask)
    try:
        path = save(pipe, tmp_path / "model.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_save_refuses_what_it_cannot_store_safely(tmp_path):
    with pytest.raises(NotFittedError):
        save(EmotionEmbeddingClassifier(), tmp_path / "a")
    with pytest.raises(TypeError, match="only .*Pipeline.*joblib.dump"):
        save(StandardScaler().fit([[0.0], [1.0]]), tmp_path / "b")
    search = GridSearchCV(LogMelTransformer(), {"n_mels": [8]})
    with pytest.raises(TypeError, match="GridSearchCV"):
        save(search, tmp_path / "c")
    bad = LogMelTransformer(device=torch.device("cpu"))
    with pytest.raises(TypeError, match="parameter LogMelTransformer.device"):
        save(bad, tmp_path / "d")
    assert not list(tmp_path.iterdir())  # nothing half-written


def _rewrite(path, document, tensors=None, sha256=None):
    """Write a model file with a chosen JSON document (and a valid digest)."""
    tensors = {} if tensors is None else tensors
    text = json.dumps(document)
    digest = _digest(text, tensors) if sha256 is None else sha256
    metadata = {"format": FORMAT, "sklearn_tser": text, "sha256": digest}
    safetensors.torch.save_file(tensors, path, metadata=metadata)
    return path


def _document(path):
    with safetensors.safe_open(path, framework="pt") as f:
        return json.loads(f.metadata()["sklearn_tser"])


def test_tampered_weights_or_json_are_refused(saved, tmp_path):
    data = saved.read_bytes()
    corrupt = bytearray(data)
    corrupt[-5] ^= 0xFF  # one bit pattern in the last weight
    (tmp_path / "w.safetensors").write_bytes(bytes(corrupt))
    with pytest.raises(ModelFileError, match="modified or corrupted .*SHA-256"):
        load(tmp_path / "w.safetensors")
    edited = data.replace(b'n_mels\\": 16', b'n_mels\\": 17', 1)
    assert edited != data and len(edited) == len(data)
    (tmp_path / "j.safetensors").write_bytes(edited)
    with pytest.raises(ModelFileError, match="SHA-256"):
        load(tmp_path / "j.safetensors")


@pytest.mark.parametrize("keep", [0, 4, 100, -50])
def test_truncated_or_empty_file_is_refused(saved, tmp_path, keep):
    data = saved.read_bytes()
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(ModelFileError, match="truncated|not an sklearn-tser model"):
        load(path)


def test_a_pickle_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ModelFileError, match="not an sklearn-tser model file"):
        load(path)
    joblib.dump(LogMelTransformer(), tmp_path / "mel.joblib")
    with pytest.raises(ModelFileError, match="joblib.load"):
        load(tmp_path / "mel.joblib")
    assert not marker.exists()


def test_unknown_classes_and_parameters_are_refused(tmp_path):
    path = save(LogMelTransformer(), tmp_path / "mel.safetensors")
    doc = _document(path)
    evil = dict(doc, estimator={"class": "subprocess.Popen", "params": {}})
    _rewrite(tmp_path / "evil.safetensors", evil)
    with pytest.raises(ModelFileError, match="'subprocess.Popen'.*only"):
        load(tmp_path / "evil.safetensors")
    doc["estimator"]["params"]["n_bands"] = 3
    _rewrite(tmp_path / "param.safetensors", doc)
    with pytest.raises(IncompatibleModelVersionError, match="n_bands"):
        load(tmp_path / "param.safetensors")
    doc["estimator"]["params"].pop("n_bands")
    doc["estimator"]["attributes"] = {"__class__": {"value": 1}}
    _rewrite(tmp_path / "attr.safetensors", doc)
    with pytest.raises(ModelFileError, match="Invalid attribute name"):
        load(tmp_path / "attr.safetensors")


@pytest.mark.parametrize(
    "version, ok",
    [
        (sklearn_tser.__version__, True),
        ("0.1.0", True),
        ("0.1.7", False),  # a newer patch release
        ("0.2.0", False),
        ("0.0.9", False),
        ("1.1.0", False),
        ("not-a-version", False),
    ],
)
def test_version_compatibility(version, ok, tmp_path):
    path = save(LogMelTransformer(), tmp_path / "mel.safetensors")
    doc = _document(path)
    doc["library_version"] = version
    _rewrite(path, doc)
    if ok:
        assert isinstance(load(path), LogMelTransformer)
    else:
        with pytest.raises(IncompatibleModelVersionError, match=f"{version}.*install"):
            load(path)


def test_unknown_format_version_is_refused(tmp_path):
    path = save(LogMelTransformer(), tmp_path / "mel.safetensors")
    doc = dict(_document(path), format_version=2)
    _rewrite(path, doc)
    with pytest.raises(IncompatibleModelVersionError, match="format version 2"):
        load(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(tmp_path / "nope.safetensors")


def test_pickle_and_joblib_round_trip(pipe, audio, tmp_path):
    X, _ = audio
    assert_same_outputs(pipe, pickle.loads(pickle.dumps(pipe)), X)
    joblib.dump(pipe, tmp_path / "pipe.joblib")
    assert_same_outputs(pipe, joblib.load(tmp_path / "pipe.joblib"), X)


def test_cuda_trained_pickle_loads_on_a_cpu_only_machine(pipe, audio, monkeypatch):
    """skorch maps a net saved on CUDA to the CPU when CUDA is missing."""
    X, _ = audio
    gpu_like = pickle.loads(pickle.dumps(pipe))
    gpu_like["clf"].net_.device = "cuda"  # as after a fit on a GPU
    data = pickle.dumps(gpu_like)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = pickle.loads(data)
    assert any("CUDA" in str(w.message) for w in caught)
    assert torch.device(again["clf"].net_.device).type == "cpu"
    assert next(again["clf"].net_.module_.parameters()).device.type == "cpu"
    assert_same_outputs(pipe, again, X)
    # A generator of the training device would not unpickle without CUDA: a
    # fitted net keeps none.
    kept = [
        name
        for net in member_nets(pipe["clf"].net_)
        for name, value in vars(net).items()
        if isinstance(value, torch.Generator)
    ]
    assert kept == []


def test_safe_format_stores_weights_on_the_cpu(saved):
    # Weights are stored device-free and loaded onto the CPU by default.
    clf = load(saved)["clf"]
    assert next(clf.net_.module_.parameters()).device.type == "cpu"
    with pytest.raises(ValueError, match="device"):
        load(saved, device="tpu")


@pytest.mark.parametrize(
    "params",
    [
        {"pooling": "blocks"},
        {"pooling": "attentive"},
        {"softmax_loss": "aam", "aam_margin": 0.3},
        {"softmax_optimizer": "sgd", "triplet_weight_decay": 1e-5},
        {"trim_db": 30.0, "standardize": "clip", "mixup_alpha": 0.0},
        {"standardize": "group"},
        {"standardize": "group", "center_embeddings": "group"},
        {"precision": "bfloat16"},
        {"dilation": 2},
        {"n_networks": 2},
        {"n_networks": 3, "center_embeddings": "group"},
    ],
)
def test_round_trip_of_every_training_option(params, audio, tmp_path):
    """The builder that load uses rebuilds the network of any option."""
    X, y = audio
    S = LogMelTransformer(n_mels=32).fit_transform(X)
    groups = np.arange(len(y)) % 2  # two speakers
    clf = EmotionEmbeddingClassifier(**{**TINY, **params}).fit(S, y, groups=groups)
    loaded = load(save(clf, tmp_path / "clf.safetensors"))
    assert loaded.get_params() == clf.get_params()
    assert len(loaded.net_.history) == len(clf.net_.history)
    if clf.n_networks > 1:  # each member has its own epochs back
        lengths = [len(net.history) for net in clf.net_.nets]
        assert [len(net.history) for net in loaded.net_.nets] == lengths
    np.testing.assert_array_equal(
        loaded.predict(S, groups=groups), clf.predict(S, groups=groups)
    )
    for method in ("predict_proba", "decision_function", "transform"):
        np.testing.assert_allclose(
            getattr(loaded, method)(S, groups=groups),
            getattr(clf, method)(S, groups=groups),
            rtol=1e-5,
            atol=1e-6,
        )


# --- files written by an attacker, or broken ones (issue: hardening) ---------


def _craft(saved, path, edit):
    """Write ``path``: the saved pipeline with ``edit(doc, tensors)`` applied,
    with a valid digest (anyone who edits a file can recompute it)."""
    doc = _document(saved)
    tensors = safetensors.torch.load_file(saved)
    edit(doc, tensors)
    return _rewrite(path, doc, tensors)


def _clf(doc):
    return doc["estimator"]["steps"][1][1]


def test_a_pipeline_memory_from_a_file_is_never_used(audio, tmp_path):
    X, y = audio
    cache = tmp_path / "cache"
    pipe = Pipeline(
        [
            ("mel", LogMelTransformer(n_mels=16)),
            ("clf", EmotionEmbeddingClassifier(**TINY)),
        ],
        memory=str(cache),
    ).fit(X, y)
    loaded = load(save(pipe, tmp_path / "m.safetensors"))
    assert loaded.memory is None


def test_a_file_saved_before_a_network_option_existed_loads_as_before(
    pipe, saved, audio, tmp_path
):
    """Files of earlier versions lack the parameters added since (``precision``,
    ``dilation``): they load with the defaults, which build the same network."""

    def edit(doc, tensors):
        for name in ("dilation", "precision"):
            del _clf(doc)["params"][name]

    old = load(_craft(saved, tmp_path / "old.safetensors", edit))
    assert old[-1].dilation == 1
    assert old[-1].precision == "auto"
    assert_same_outputs(old, pipe, audio[0])


def test_a_file_saved_before_reverberation_existed_loads_without_it(
    pipe, saved, tmp_path
):
    """``reverberation`` is on by default since it was added: a file that
    lacks it was trained without it, and loads so (a refit trains as its
    first fit did), not with today's default."""

    def edit(doc, tensors):
        for name in ("reverberation", "reverberation_fraction"):
            del _clf(doc)["params"][name]

    assert pipe[-1].reverberation == 50.0
    old = load(_craft(saved, tmp_path / "old.safetensors", edit))
    assert old[-1].reverberation == 0.0
    assert old[-1].reverberation_fraction == 1.0
    assert load(saved)[-1].reverberation == 50.0


def test_a_file_lacking_the_parameters_added_since_loads_with_their_old_values(
    saved, tmp_path
):
    """Each parameter added after the format was fixed loads, when a file
    lacks it, at the value the classifier trained with before it existed."""
    from sklearn_tser._classifier import PARAMS_BEFORE_ADDED

    def edit(doc, tensors):
        for name in PARAMS_BEFORE_ADDED:
            del _clf(doc)["params"][name]

    old = load(_craft(saved, tmp_path / "old.safetensors", edit))[-1]
    assert {name: getattr(old, name) for name in PARAMS_BEFORE_ADDED} == (
        PARAMS_BEFORE_ADDED
    )
    # Files saved before softmax_optimizer existed trained with AdamW, no
    # longer the default; before zero_init_residual, without it.
    assert old.softmax_optimizer == "adamw" != load(saved)[-1].softmax_optimizer
    assert old.zero_init_residual is False


@pytest.mark.parametrize(
    "name, today, before",
    [
        ("noise_snr", 10.0, None),
        ("noise_spectrum", "tilted", "speech"),
        ("noise_fraction", 0.5, 1.0),
    ],
)
def test_a_file_saved_before_a_noise_option_existed_loads_as_trained(
    name, today, before, pipe, saved, audio, tmp_path, monkeypatch
):
    """A file that lacks ``noise_snr`` was trained without noise, one that
    lacks ``noise_spectrum``, if with noise, with speech-shaped noise, and
    one that lacks ``noise_fraction`` with noise on every crop; each loads
    so whatever today's default: here another default stands in for one
    changed later."""

    def edit(doc, tensors):
        del _clf(doc)["params"][name]

    defaults = {**EmotionEmbeddingClassifier.__init__.__kwdefaults__}
    monkeypatch.setattr(
        EmotionEmbeddingClassifier.__init__, "__kwdefaults__", {**defaults, name: today}
    )
    assert getattr(EmotionEmbeddingClassifier(), name) == today
    old = load(_craft(saved, tmp_path / "old.safetensors", edit))
    assert getattr(old[-1], name) == before
    assert_same_outputs(old, pipe, audio[0])


def _set_attribute(name, spec):
    def edit(doc, tensors):
        _clf(doc)["attributes"][name] = spec

    return edit


def _set_value(name, value):
    return _set_attribute(name, {"value": value})


def _set_tensor(name, make):
    def edit(doc, tensors):
        key = f"clf/{name}"
        tensors[key] = make(tensors[key])

    return edit


def _set_param(name, value):
    def edit(doc, tensors):
        _clf(doc)["params"][name] = value

    return edit


def _set_weight(make):
    def edit(doc, tensors):
        key = "clf/net_/embedding.weight"
        tensors[key] = make(tensors[key])

    return edit


def _both(first, second):
    def edit(doc, tensors):
        first(doc, tensors)
        second(doc, tensors)

    return edit


HUGE_STRINGS = {"array": ["a"], "dtype": "<U100000000", "shape": [1]}


@pytest.mark.parametrize(
    "edit, match",
    [
        # memory: tiny files that would allocate a lot
        (_set_attribute("junk_", HUGE_STRINGS), "Invalid attribute name 'junk_'"),
        (_set_attribute("classes_", HUGE_STRINGS), "strings of more than 256"),
        (_set_param("width", 10**6), "weight .* has shape"),
        (_set_param("n_networks", 10**9), r"centroids_ .* shape \(3, 8000000000\)"),
        (
            _both(
                _set_param("n_networks", 65),
                _set_tensor("centroids_", lambda t: torch.cat([t] * 65, 1) / 65**0.5),
            ),
            "ensemble of 65 networks; load reads at most 64",
        ),
        (
            lambda doc, tensors: _clf(doc)["net"].__setitem__("history", [1]),
            "training history is not a list of rows",
        ),
        # an ensemble's centroids, and the weights of one network only
        (
            _both(
                _set_param("n_networks", 2),
                _set_tensor("centroids_", lambda t: torch.cat([t, t], 1) / 2**0.5),
            ),
            "weights in the model file are not those of the network",
        ),
        (_set_value("n_features_in_", 10**10), "n_features_in_ .* integer in"),
        # broken fitted state that would load and then predict nonsense
        (_set_tensor("centroids_", lambda t: t * float("nan")), "centroids_ .* finite"),
        (_set_tensor("centroids_", lambda t: t.to(torch.int64)), "centroids_ .* float"),
        (_set_tensor("centroids_", lambda t: 2 * t), "centroids_ that are not unit"),
        (_set_value("proba_scale_", {"float": "nan"}), "proba_scale_ nan"),
        (_set_value("proba_scale_", -1.0), "proba_scale_ -1.0"),
        (
            _set_attribute(
                "classes_", {"array": ["a", "a", "b"], "dtype": "<U1", "shape": [3]}
            ),
            "distinct labels",
        ),
        (_set_value("n_features_in_", "16"), "n_features_in_ the value '16'"),
        (_set_tensor("feature_std_", lambda t: 0 * t), "feature_std_ that is not"),
        # speaker-centred embeddings, and no mean to shrink a speaker's to
        (
            _set_param("center_embeddings", "group"),
            r"embedding_mean_ None; it must be a finite float array of shape \(",
        ),
        (_set_weight(lambda t: t * float("nan")), "embedding.weight' .* not finite"),
        (_set_weight(lambda t: t[:, :3].contiguous()), "embedding.weight' .* shape"),
    ],
)
def test_crafted_or_broken_models_are_refused(saved, tmp_path, edit, match):
    path = _craft(saved, tmp_path / "crafted.safetensors", edit)
    with pytest.raises(ModelFileError, match=match):
        load(path)


def test_an_empty_pipeline_is_refused(tmp_path):
    path = save(LogMelTransformer(), tmp_path / "mel.safetensors")
    doc = _document(path)
    doc["estimator"] = {"class": "Pipeline", "params": {}, "steps": []}
    with pytest.raises(ModelFileError, match="has no steps"):
        load(_rewrite(path, doc))


def test_deep_nesting_is_refused(tmp_path):
    path = save(LogMelTransformer(), tmp_path / "mel.safetensors")
    doc = _document(path)
    inner = doc["estimator"]
    for _ in range(12):
        inner = {"class": "Pipeline", "params": {}, "steps": [["p", inner]]}
    with pytest.raises(ModelFileError, match="nests Pipelines more than 4"):
        load(_rewrite(tmp_path / "nested.safetensors", dict(doc, estimator=inner)))
    # JSON nested 100 000 deep: a clear error, not a RecursionError.
    deep = "[" * 100_000 + "]" * 100_000
    text = json.dumps(doc).replace('"estimator"', f'"deep": {deep}, "estimator"', 1)
    metadata = {"format": FORMAT, "sklearn_tser": text, "sha256": _digest(text, {})}
    safetensors.torch.save_file({}, tmp_path / "deep.safetensors", metadata=metadata)
    with pytest.raises(ModelFileError, match="JSON description cannot be read"):
        load(tmp_path / "deep.safetensors")


def _raw_file(path, header, size=None):
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
        if size is not None:
            f.truncate(size)  # a sparse file: no disk, no time
    return path


def test_the_header_is_checked_before_the_file_is_read(tmp_path):
    meta = {"__metadata__": {"format": FORMAT, "sklearn_tser": "{}", "sha256": ""}}
    # A tiny file announcing a 2 GB header.
    path = tmp_path / "header.safetensors"
    path.write_bytes((2 * 10**9).to_bytes(8, "little") + b"{" + b" " * 100)
    with pytest.raises(ModelFileError, match="header of 2000000000 bytes"):
        load(path)
    # A 2 GB sparse file whose header announces 2 GB of weights.
    n = 500_000_000
    big = dict(meta, w={"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]})
    path = _raw_file(tmp_path / "big.safetensors", big, size=4 * n + 300)
    with pytest.raises(ModelFileError, match="announces 2000000000 bytes of tensors"):
        load(path)
    bad = dict(meta, w={"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]})
    with pytest.raises(ModelFileError, match="tensor 'w' is malformed"):
        load(_raw_file(tmp_path / "bad.safetensors", bad))


def test_expected_sha256_pins_the_file(saved, tmp_path):
    digest = hashlib.sha256(saved.read_bytes()).hexdigest()
    assert isinstance(load(saved, expected_sha256=digest.upper()), Pipeline)
    other = save(LogMelTransformer(), tmp_path / "mel.safetensors")
    with pytest.raises(ModelFileError, match="not the file you expected"):
        load(other, expected_sha256=digest)
    with pytest.raises(ValueError, match="64 hexadecimal digits"):
        load(saved, expected_sha256="abc")


def test_review_probes_are_refused_with_model_file_error(saved, tmp_path):
    # Many short strings in an attribute: bounded before any allocation.
    many = {"array": [""] * 100_000, "dtype": "<U1", "shape": [100_000]}
    path = _craft(
        saved, tmp_path / "many.safetensors", _set_attribute("classes_", many)
    )
    with pytest.raises(ModelFileError, match="100000 values, more than 10000"):
        load(path)
    # A JSON integer too long for Python's int(): ModelFileError, not ValueError.
    path = _craft(saved, tmp_path / "int.safetensors", _set_value("proba_scale_", 0))
    text = _document(path)
    raw = json.dumps(text).replace('"value": 0}', '"value": ' + "9" * 5000 + "}", 1)
    meta = {"format": FORMAT, "sklearn_tser": raw, "sha256": "x"}
    safetensors.torch.save_file({}, tmp_path / "int.safetensors", metadata=meta)
    with pytest.raises(ModelFileError):
        load(tmp_path / "int.safetensors")

    # A classifier without its network.
    def no_net(doc, tensors):
        del _clf(doc)["net"]
        for key in [k for k in tensors if k.startswith("clf/net_/")]:
            del tensors[key]

    with pytest.raises(ModelFileError, match="has no network"):
        load(_craft(saved, tmp_path / "nonet.safetensors", no_net))
    # Bytes after the announced tensors.
    path = tmp_path / "tail.safetensors"
    path.write_bytes(saved.read_bytes() + b"junk")
    with pytest.raises(ModelFileError, match="does not hold exactly"):
        load(path)


def test_float_labels_round_trip(audio, tmp_path):
    X, y = audio
    labels = np.unique(y, return_inverse=True)[1].astype(float)
    S = LogMelTransformer(n_mels=16).fit_transform(X)
    clf = EmotionEmbeddingClassifier(**TINY).fit(S, labels)
    loaded = load(save(clf, tmp_path / "f.safetensors"))
    np.testing.assert_array_equal(loaded.predict(S), clf.predict(S))
