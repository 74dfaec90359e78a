"""Safe model files: weights in safetensors, everything else in JSON.

A model file is one `safetensors <https://huggingface.co/docs/safetensors>`_
file. Its tensors are the network weights and the numeric fitted arrays
(``centroids_``, ``feature_mean_``, ...); its string metadata holds

- ``"format"``: ``"sklearn-tser-model"``;
- ``"sklearn_tser"``: a JSON document with the format version, the library
  versions, and the estimator tree: class names, parameters, the other fitted
  attributes (``classes_`` of any label type, ``proba_scale_``, ...) and the
  training history;
- ``"sha256"``: the SHA-256 digest of that JSON text and of every tensor (name,
  dtype, shape and bytes).

Loading parses the JSON and the tensors and never unpickles anything: classes
come from a fixed list of known estimators, never from names imported from the
file, and the skorch net is rebuilt by the package's own builder before the
weights are copied in.
"""

import hashlib
import json
import math
import numbers
import os
import re
import secrets
import struct
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ._validation import MAX_MEL_BANDS
from .exceptions import IncompatibleModelVersionError, ModelFileError

__all__ = ["load", "save"]

FORMAT = "sklearn-tser-model"
FORMAT_VERSION = 1
_ATTRIBUTE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*_")  # learned attributes
_JSON_ARRAY_KINDS = "biufUO"  # numpy kinds stored as JSON lists

# What a model file may hold, at most. A real model's header (parameters,
# labels, training history) is well under a megabyte, and the default network's
# weights a few megabytes; these bounds keep a crafted file from making load
# allocate more (see load's Notes).
MAX_HEADER_BYTES = 64 * 2**20
MAX_TENSOR_BYTES = 2**30
MAX_STRING_LENGTH = 256  # characters of a label
MAX_CLASSES = 10_000  # also the length of any array stored as JSON
MAX_NETWORKS = 64  # members of an ensemble (n_networks) a file may describe
MAX_PIPELINE_DEPTH = 4  # Pipelines inside Pipelines
# The safetensors dtypes load reads, by the numpy dtype saved as each (bf16,
# which numpy lacks, only from torch's own tensors: the networks' weights).
_SAFETENSORS_NUMPY = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "I16": "int16",
    "I32": "int32",
    "I64": "int64",
    "F16": "float16",
    "F32": "float32",
    "F64": "float64",
}
_SAFETENSORS_ITEMSIZE = {
    name: np.dtype(kind).itemsize for name, kind in _SAFETENSORS_NUMPY.items()
} | {"BF16": 2}
# numpy arrays stored as tensors (native byte order); others (uint16, say) go
# to JSON.
_TENSOR_DTYPES = frozenset(map(np.dtype, _SAFETENSORS_NUMPY.values()))
# The fitted attributes each estimator may have in a file; anything else is
# refused.
_ATTRIBUTES = {
    "EmotionEmbeddingClassifier": {
        "angles_",
        "centroids_",
        "classes_",
        "collapse_score_",
        "embedding_mean_",
        "feature_mean_",
        "feature_std_",
        "interrupted_",
        "n_features_in_",
        "proba_scale_",
    },
    "LogMelTransformer": {"n_features_in_"},
}


def _estimator_classes():
    """The only classes a model file may name."""
    from ._classifier import EmotionEmbeddingClassifier
    from ._log_mel import LogMelTransformer

    return {
        "EmotionEmbeddingClassifier": EmotionEmbeddingClassifier,
        "LogMelTransformer": LogMelTransformer,
        "Pipeline": Pipeline,
    }


# ----------------------------------------------------------------- JSON values


def _to_json(value, where):
    """Plain JSON value of a parameter or scalar attribute, or raise."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, (list, tuple)):
        return [_to_json(v, where) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: _to_json(v, f"{where}[{k!r}]") for k, v in value.items()}}
    raise TypeError(
        f"Cannot save {where} of type {type(value).__name__} ({value!r}) in the "
        "safe format, which stores only numbers, strings, booleans, None, lists "
        "and arrays. Use joblib.dump for such an estimator."
    )


def _from_json(value):
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"float"} and value["float"] in ("nan", "inf", "-inf"):
            return float(value["float"])
        if set(value) == {"dict"} and isinstance(value["dict"], dict):
            return {k: _from_json(v) for k, v in value["dict"].items()}
        raise ModelFileError(f"Unexpected value {value!r} in the model file.")
    return value


# ------------------------------------------------------------------- encoding


def _encode_array(array, key, tensors, where):
    import torch

    if array.dtype in _TENSOR_DTYPES:
        tensors[key] = torch.from_numpy(np.ascontiguousarray(array)).clone()
        return {"tensor": key}
    if array.dtype.kind not in _JSON_ARRAY_KINDS:
        raise TypeError(f"Cannot save {where}: arrays of dtype {array.dtype}.")
    if array.dtype.kind == "U" and array.dtype.itemsize > 4 * MAX_STRING_LENGTH:
        longest = max((len(v) for v in array.flat), default=0)
        array = array.astype(f"<U{max(1, longest)}")  # as wide as load reads
    values = array.ravel().tolist()  # load reads a flat list, then the shape
    try:  # what load would refuse is not written
        _check_json_array(values, array.dtype)
    except ValueError as exc:
        raise ValueError(
            f"Cannot save {where}: {exc}; a model file holds no such array."
        ) from exc
    return {
        "array": _to_json(values, where),
        "dtype": "object" if array.dtype == object else array.dtype.str,
        "shape": list(array.shape),
    }


def _check_json_array(values, dtype):
    """Raise ``ValueError`` naming what a model file refuses in an array
    stored as JSON (``values``, a flat list, of ``dtype``): the one rule of
    :func:`save` and :func:`load`."""
    if dtype.kind not in _JSON_ARRAY_KINDS:
        raise ValueError(f"dtype {dtype} is not allowed")
    if not isinstance(values, list) or not all(
        isinstance(v, (str, int, float, bool)) for v in values
    ):
        raise ValueError("not a flat list of numbers or strings")
    if len(values) > MAX_CLASSES:
        raise ValueError(f"{len(values)} values, more than {MAX_CLASSES}")
    for v in values:
        if isinstance(v, str) and len(v) > MAX_STRING_LENGTH:
            raise ValueError(
                f"{v[:40]!r}... is longer than the {MAX_STRING_LENGTH} characters "
                "a label may have in a model file"
            )
    if dtype.kind == "U" and dtype.itemsize > 4 * MAX_STRING_LENGTH:
        raise ValueError(
            f"dtype {dtype}: strings of more than {MAX_STRING_LENGTH} "
            "characters are not allowed"
        )


def _encode_attribute(value, key, tensors, where):
    if isinstance(value, np.ndarray):
        return _encode_array(value, key, tensors, where)
    return {"value": _to_json(value, where)}


def _encode_net(net, prefix, tensors):
    state = net.module_.state_dict()
    for name, tensor in state.items():
        tensors[f"{prefix}net_/{name}"] = tensor.detach().cpu().contiguous().clone()
    return {
        "state_dict": sorted(state),
        "history": _to_json(net.history.to_list(), "net_.history"),
    }


def _encode(estimator, prefix, tensors):
    """JSON description of ``estimator``; its arrays go into ``tensors``."""
    classes = _estimator_classes()
    name = type(estimator).__name__
    if classes.get(name) is not type(estimator):
        raise TypeError(
            f"Cannot save a {name} in the safe format: it stores only "
            f"{sorted(classes)} (a Pipeline made of the sklearn-tser estimators). "
            "Use joblib.dump for other estimators."
        )
    if isinstance(estimator, Pipeline):
        params = estimator.get_params(deep=False)
        steps = []
        for step_name, step in params.pop("steps"):
            if step is None or step == "passthrough":
                steps.append([step_name, "passthrough"])
            else:
                steps.append(
                    [step_name, _encode(step, f"{prefix}{step_name}/", tensors)]
                )
        params = {k: _to_json(v, f"Pipeline parameter {k}") for k, v in params.items()}
        return {"class": name, "params": params, "steps": steps}

    check_is_fitted(estimator)
    params = estimator.get_params(deep=False)
    doc = {
        "class": name,
        "params": {k: _to_json(v, f"parameter {name}.{k}") for k, v in params.items()},
        "attributes": {},
    }
    for attr, value in sorted(vars(estimator).items()):
        if attr in params or not _ATTRIBUTE_RE.fullmatch(attr):
            continue  # parameters, and private caches that refit recomputes
        if attr == "net_":
            doc["net"] = _encode_net(value, prefix, tensors)
            continue
        doc["attributes"][attr] = _encode_attribute(
            value, f"{prefix}{attr}", tensors, f"attribute {name}.{attr}"
        )
    return doc


def _digest(text, tensors):
    """SHA-256 of the JSON text and of every tensor: name, dtype, shape, bytes."""
    import torch

    h = hashlib.sha256()
    h.update(text.encode("utf-8"))
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        h.update(f"\0{key}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def check_model_path(path, *, make_folder=False):
    """``path`` as a :class:`~pathlib.Path` that :func:`save` can write to:
    not a folder, in a folder that exists (made with ``make_folder=True``,
    as the command line does). Checked before a fit, a wrong path does not
    cost the model.

    Raises
    ------
    IsADirectoryError
        If ``path`` is a folder.
    FileNotFoundError
        If its folder does not exist (and ``make_folder`` is False).
    PermissionError
        If its folder cannot be written to.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"Cannot write the model to {str(path)!r}: it is a folder. Name a "
            f"file in it, e.g. {str(path / 'model.safetensors')!r}."
        )
    if make_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise FileNotFoundError(
            f"Cannot write the model to {str(path)!r}: the folder "
            f"{str(path.parent)!r} does not exist. Create it first."
        )
    if not os.access(path.parent, os.W_OK):
        raise PermissionError(
            f"Cannot write the model to {str(path)!r}: the folder "
            f"{str(path.parent)!r} is not writable. Name a file in a folder "
            "you can write to."
        )
    return path


def save(estimator, path):
    """Save a fitted estimator to a safe file: safetensors weights, JSON the rest.

    Stores a fitted :class:`EmotionEmbeddingClassifier`, a
    :class:`LogMelTransformer`, or a :class:`~sklearn.pipeline.Pipeline` made of
    them (steps kept by name). The file holds the network weights and numeric
    fitted arrays as safetensors tensors, and the parameters, ``classes_``, the
    other fitted attributes, the feature settings, the training history and the
    library versions as JSON, with a SHA-256 digest of both.

    When to use which:

    - ``save`` / :func:`load`, for models you share, download or keep: loading
      runs no code from the file (no pickle), so a file from an untrusted source
      can at worst give wrong predictions; a modified, truncated or
      version-incompatible file is refused with a clear error; the file is
      portable across machines and devices (weights are stored on the CPU).
    - :func:`joblib.dump` / :mod:`pickle`, for your own short-lived work:
      caching, multiprocessing, any estimator (e.g. a ``GridSearchCV``) and the
      optimizer state. Unpickling executes code from the file, so **never load
      a pickle you do not trust**; it also ties the file to the installed
      versions of scikit-learn, skorch and torch.

    Parameters
    ----------
    estimator : EmotionEmbeddingClassifier, LogMelTransformer or Pipeline
        The estimator to save; a classifier must be fitted.
    path : str or os.PathLike
        File to write (conventionally ``*.safetensors``); replaced atomically
        if it exists.

    Returns
    -------
    path : pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If the estimator (or a pipeline step) is of another class, or a
        parameter or attribute is not a number, string, boolean, None, list or
        array (e.g. a ``RandomState`` instance as ``random_state``).
    sklearn.exceptions.NotFittedError
        If the classifier is not fitted.
    ValueError
        If a label is longer than a model file allows (``load`` would refuse
        it), or an array of the metadata is longer.
    IsADirectoryError, FileNotFoundError, PermissionError
        If ``path`` is a folder, or its folder is missing or not writable; a
        model is checked before it is encoded, so nothing is written.

    See Also
    --------
    load : Read the file back.

    Examples
    --------
    >>> from sklearn_tser import LogMelTransformer, load, save
    >>> path = save(LogMelTransformer(n_mels=40), "mel.safetensors")  # doctest: +SKIP
    >>> load(path).n_mels  # doctest: +SKIP
    40
    """
    import safetensors.torch
    import torch

    from . import __version__

    path = check_model_path(path)
    tensors = {}
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "versions": {
            "sklearn": _package_version("sklearn"),
            "torch": torch.__version__,
            "skorch": _package_version("skorch"),
        },
        "estimator": _encode(estimator, "", tensors),
    }
    text = json.dumps(document, sort_keys=True, allow_nan=False)
    metadata = {
        "format": FORMAT,
        "sklearn_tser": text,
        "sha256": _digest(text, tensors),
    }
    data = safetensors.torch.save(tensors, metadata=metadata)
    # Written to a new name beside the target, then renamed over it, so that
    # the target is whole or untouched. os.open's mode goes through the umask,
    # as for any file the user writes (mkstemp would give 0600).
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, 0o666)
    except OSError as exc:  # named by the user's path, not the temporary one
        raise type(exc)(
            exc.errno, f"Cannot write the model to {str(path)!r}: {exc.strerror}"
        ) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _package_version(name):
    import importlib

    return getattr(importlib.import_module(name), "__version__", "unknown")


# ------------------------------------------------------------------- decoding


def _read_file(path):
    """The bytes and header metadata of the model file ``path``, read through
    one open file: the header first, checked and bounded (its size, its
    tensors' dtypes, shapes and offsets, their total size), then exactly the
    bytes it announces, and nothing may follow them."""
    bad = ModelFileError(
        f"{str(path)!r} is not an sklearn-tser model file (written by "
        "sklearn_tser.save): it has no valid safetensors header. If it is a "
        "joblib or pickle file, load it with joblib.load, and only if you trust it."
    )
    with open(path, "rb") as f:
        head = f.read(8)
        raw = f.read(1) if len(head) == 8 else b""
        if raw != b"{":  # a safetensors header is a JSON object
            raise bad
        (n,) = struct.unpack("<Q", head)
        if n < 2:  # not even "{}"
            raise bad
        if n > MAX_HEADER_BYTES:
            raise ModelFileError(
                f"Model file {str(path)!r} announces a header of {n} bytes; a model "
                f"file's header has at most {MAX_HEADER_BYTES}. Refusing to read it."
            )
        raw += f.read(n - 1)
        if len(raw) < n:
            raise ModelFileError(
                f"Model file {str(path)!r} is truncated: its header announces {n} "
                f"bytes but the file ends after {8 + len(raw)}."
            )
        metadata, total = _check_header(raw, path, bad)
        body = f.read(total)
        if len(body) != total or f.read(1):
            raise ModelFileError(
                f"Model file {str(path)!r} is truncated or corrupt: it does not "
                f"hold exactly the {total} bytes of tensors its header announces."
            )
    return head + raw + body, metadata


def _check_header(raw, path, bad):
    """The metadata of a safetensors header and its tensors' total size."""
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad from exc
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise bad
    total = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            itemsize = _SAFETENSORS_ITEMSIZE[entry["dtype"]]
            shape, (begin, end) = entry["shape"], entry["data_offsets"]
            if not all(_is_count(v) for v in [*shape, begin, end]):
                raise ValueError
            if end - begin != itemsize * math.prod(shape):
                raise ValueError
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(
                f"Model file {str(path)!r} is corrupt: tensor {str(name)!r:.100} "
                f"is malformed ({entry!r:.200})."
            ) from exc
        total += end - begin
    if total > MAX_TENSOR_BYTES:
        raise ModelFileError(
            f"Model file {str(path)!r} announces {total} bytes of tensors; a "
            f"model file holds at most {MAX_TENSOR_BYTES}. Refusing to read it."
        )
    return metadata, total


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _release(version):
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", str(version))
    if not match:
        return None
    return tuple(int(part or 0) for part in match.groups())


def _check_versions(document, path):
    from . import __version__

    fmt = document.get("format_version")
    saved = document.get("library_version")
    if fmt != FORMAT_VERSION:
        raise IncompatibleModelVersionError(
            f"Model file {str(path)!r} has format version {fmt!r} (sklearn-tser "
            f"{saved}); this sklearn-tser {__version__} reads format version "
            f"{FORMAT_VERSION}. Load it with the sklearn-tser version that saved it."
        )
    file_release, ours = _release(saved), _release(__version__)
    if file_release is None or file_release[:2] != ours[:2] or file_release > ours:
        raise IncompatibleModelVersionError(
            f"Model file {str(path)!r} was saved by sklearn-tser {saved}, which is "
            f"incompatible with the installed {__version__}: files are read by the "
            "same major.minor release, and not by an older one. Install "
            f"sklearn-tser=={saved} to load it (then retrain or save it again)."
        )


def _decode_array(spec, tensors, where):
    if "tensor" in spec:
        key = spec["tensor"]
        if key not in tensors:
            raise ModelFileError(f"{where} refers to a missing tensor {key!r}.")
        return tensors.pop(key).numpy()
    try:
        dtype = np.dtype(spec["dtype"])
        values = _from_json(spec["array"])
        _check_json_array(values, dtype)
        if dtype.kind == "O":
            array = np.empty(len(values), dtype=object)
            array[:] = values
        else:
            array = np.asarray(values, dtype=dtype)
        return array.reshape(spec["shape"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{where} is malformed in the model file: {exc}") from exc


def _params_before_added(cls):
    """The parameters of ``cls`` a file lacks when it was saved before they
    existed, with the value its model was trained at (not today's default)."""
    from ._classifier import PARAMS_BEFORE_ADDED, EmotionEmbeddingClassifier

    return PARAMS_BEFORE_ADDED if cls is EmotionEmbeddingClassifier else {}


def _new_estimator(cls, params, where):
    if not isinstance(params, dict):
        raise ModelFileError(f"The parameters of {where} are malformed.")
    params = {**_params_before_added(cls), **params}
    unknown = sorted(set(params) - set(cls._get_param_names()))
    if unknown:
        raise IncompatibleModelVersionError(
            f"The model file gives {where} the parameter(s) {unknown}, unknown to "
            "this version of sklearn-tser."
        )
    estimator = cls(**{k: _from_json(v) for k, v in params.items()})
    try:
        estimator._validate_params()
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"Invalid parameters of {where}: {exc}") from exc
    return estimator


def _decode(doc, tensors, device, prefix="", where="the estimator", depth=0):
    classes = _estimator_classes()
    if not isinstance(doc, dict) or doc.get("class") not in classes:
        name = doc.get("class") if isinstance(doc, dict) else doc
        raise ModelFileError(
            f"The model file names the class {str(name)!r:.200} for {where}; only "
            f"{sorted(classes)} can be loaded."
        )
    cls = classes[doc["class"]]
    if cls is Pipeline:
        if depth >= MAX_PIPELINE_DEPTH:
            raise ModelFileError(
                f"The model file nests Pipelines more than {MAX_PIPELINE_DEPTH} deep."
            )
        if not isinstance(doc.get("steps"), list) or not doc["steps"]:
            raise ModelFileError(
                f"The Pipeline of {where} has no steps (got {doc.get('steps')!r:.100})."
            )
        steps = []
        for step_name, step in doc["steps"]:
            if not isinstance(step_name, str):
                raise ModelFileError(f"Invalid Pipeline step name {step_name!r}.")
            if step != "passthrough":
                step = _decode(
                    step,
                    tensors,
                    device,
                    f"{prefix}{step_name}/",
                    f"step {step_name!r}",
                    depth + 1,
                )
            steps.append((step_name, step))
        params = {k: _from_json(v) for k, v in doc.get("params", {}).items()}
        # A Pipeline's memory names a folder whose pickles a later fit would
        # load: it is never taken from a file.
        params["memory"] = None
        return _new_estimator(cls, {**params, "steps": steps}, "the Pipeline")

    name = cls.__name__
    estimator = _new_estimator(cls, doc.get("params"), f"{name} ({where})")
    for attr, spec in doc.get("attributes", {}).items():
        if attr not in _ATTRIBUTES[name]:
            raise ModelFileError(
                f"Invalid attribute name {str(attr)!r:.100} of {name} in the model "
                f"file; a fitted {name} has only {sorted(_ATTRIBUTES[name])}."
            )
        label = f"attribute {name}.{attr}"
        if not isinstance(spec, dict):
            raise ModelFileError(
                f"{label} is malformed in the model file: {spec!r:.100}."
            )
        if "value" in spec:
            value = _from_json(spec["value"])
        else:
            value = _decode_array(spec, tensors, label)
        setattr(estimator, attr, value)
    if name == "LogMelTransformer":
        _check_count(estimator, "n_features_in_", None, optional=True)
        return estimator
    if "net" not in doc:
        raise ModelFileError(
            f"The model file has no network for the {name} of {where}."
        )
    _check_classifier_state(estimator)
    _decode_net(estimator, doc["net"], tensors, device, prefix)
    return estimator


def _check_count(estimator, attr, largest, optional=False):
    value = getattr(estimator, attr, None)
    if value is None and optional:
        return
    if not _is_count(value) or value < 1 or (largest and value > largest):
        raise ModelFileError(
            f"The model file gives {type(estimator).__name__}.{attr} the value "
            f"{value!r:.100}; it must be an integer in [1, {largest or 'inf'}]."
        )


def _float_array(estimator, attr, shape):
    """The attribute, checked: a finite float array of ``shape``."""
    value = getattr(estimator, attr, None)
    if (
        not isinstance(value, np.ndarray)
        or value.dtype.kind != "f"
        or value.shape != shape
        or not np.isfinite(value).all()
    ):
        got = (
            f"dtype {value.dtype}, shape {value.shape}"
            if isinstance(value, np.ndarray)
            else f"{value!r:.100}"
        )
        raise ModelFileError(
            f"The model file gives {type(estimator).__name__}.{attr} {got}; it "
            f"must be a finite float array of shape {shape}."
        )
    return value


def _check_classifier_state(clf):
    """Refuse fitted state that would load but predict nonsense (NaN, one
    class for everything), before the network is built."""
    labels = getattr(clf, "classes_", None)
    if (
        not isinstance(labels, np.ndarray)
        or labels.ndim != 1
        or not 2 <= len(labels) <= MAX_CLASSES
        or labels.dtype.kind not in "biufUO"
        or (labels.dtype.kind == "f" and not np.isfinite(labels).all())
        or len(set(labels.tolist())) != len(labels)
    ):
        raise ModelFileError(
            f"The model file gives the classifier classes_ {labels!r:.200}; it must "
            f"be 2 to {MAX_CLASSES} distinct labels (numbers or strings)."
        )
    n_classes = len(labels)
    _check_count(clf, "n_features_in_", MAX_MEL_BANDS)
    dim = clf.n_networks * clf.embedding_dim  # an ensemble joins its members'
    centroids = _float_array(clf, "centroids_", (n_classes, dim))
    norms = np.linalg.norm(centroids, axis=1)
    if not np.allclose(norms, 1.0, atol=1e-3):
        raise ModelFileError(
            "The model file gives the classifier centroids_ that are not unit "
            f"vectors (norms {np.round(norms, 4).tolist()!s:.200}); they must be "
            "L2-normalised."
        )
    _float_array(clf, "angles_", (n_classes, n_classes))
    if clf.standardize == "global":
        _float_array(clf, "feature_mean_", (clf.n_features_in_,))
        std = _float_array(clf, "feature_std_", (clf.n_features_in_,))
        if not (std > 0).all():
            raise ModelFileError(
                "The model file gives the classifier a feature_std_ that is not "
                f"positive (smallest {std.min()})."
            )
    if clf.center_embeddings == "group":
        _float_array(clf, "embedding_mean_", (dim,))
    scale = getattr(clf, "proba_scale_", None)
    if not (
        isinstance(scale, (int, float))
        and not isinstance(scale, bool)
        and math.isfinite(scale)
        and scale > 0
    ):
        raise ModelFileError(
            f"The model file gives the classifier proba_scale_ {scale!r:.100}; it "
            "must be a finite number > 0."
        )
    interrupted = getattr(clf, "interrupted_", False)
    if not isinstance(interrupted, bool):
        raise ModelFileError(
            f"The model file gives interrupted_ the value {interrupted!r:.100}; it "
            "must be true or false."
        )


def _decode_net(clf, spec, tensors, device, prefix):
    """Rebuild the skorch net with :func:`make_net`, then copy the weights in."""
    import torch
    from skorch.history import History

    from ._device import resolve_device
    from ._training import make_net, network_shapes

    n_mels, n_classes = clf.n_features_in_, len(clf.classes_)
    # Every weight's shape is checked against the network the parameters
    # describe before that network is built: a file cannot make load allocate
    # a network larger than the weights it holds.
    params = clf.get_params()
    if clf.n_networks > MAX_NETWORKS:  # also bounds the weights listed below
        raise ModelFileError(
            f"The model file describes an ensemble of {clf.n_networks} networks; "
            f"load reads at most {MAX_NETWORKS}."
        )
    names = spec.get("state_dict") if isinstance(spec, dict) else None
    expected = network_shapes(params, n_mels=n_mels, n_classes=n_classes)
    if not isinstance(names, list) or sorted(map(str, names)) != sorted(expected):
        raise ModelFileError(
            "The network weights in the model file are not those of the network "
            f"its parameters describe (architecture={clf.architecture!r}, "
            f"n_layers={clf.n_layers}, ...)."
        )
    state = {}
    for name in names:
        key = f"{prefix}net_/{name}"
        if key not in tensors:
            raise ModelFileError(f"The model file lacks the network weight {name!r}.")
        tensor = state[name] = tensors.pop(key)
        if tuple(tensor.shape) != expected[name]:
            raise ModelFileError(
                f"The network weight {name!r} in the model file has shape "
                f"{tuple(tensor.shape)}; the network its parameters describe has "
                f"{expected[name]}."
            )
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelFileError(
                f"The network weight {name!r} in the model file is not finite."
            )
    device = resolve_device(device)
    net = make_net(params, n_mels=n_mels, n_classes=n_classes, device=device)
    net.initialize()

    try:
        net.module_.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelFileError(
            "The network weights in the model file do not fit the network its "
            f"parameters describe: {exc}"
        ) from exc
    net.module_.to(device)
    net.module_.eval()
    history = _from_json(spec.get("history", []))
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise ModelFileError("The model file's training history is not a list of rows.")
    try:
        net.history_ = History(history)
    except ValueError as exc:  # an ensemble's rows name their network
        raise ModelFileError(f"The model file's training history: {exc}") from exc
    clf.net_ = net


def load(path, *, device="cpu", expected_sha256=None):
    """Load an estimator saved by :func:`save`, without running code from the file.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.
    device : str, default="cpu"
        Torch device of the classifier's network after loading: ``"cpu"``,
        ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
    expected_sha256 : str or None, default=None
        The SHA-256 of the whole file, as 64 hexadecimal digits (what
        ``sha256sum`` prints), for a model you pinned: a file with other bytes
        is refused before it is read. Like pooch's ``known_hash``.

    Returns
    -------
    estimator : EmotionEmbeddingClassifier, LogMelTransformer or Pipeline
        The estimator, fitted as it was saved; it predicts exactly as before.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    sklearn_tser.exceptions.ModelFileError
        (a ``ValueError``) If the file is not an sklearn-tser model file, is
        truncated or corrupt, was modified after saving (its SHA-256 digest does
        not match), is not the ``expected_sha256`` file, names a class other
        than the sklearn-tser estimators and Pipeline, exceeds a size bound, or
        describes a model that would not predict (non-finite or ill-shaped
        fitted state or weights, duplicate classes). The message names the
        field.
    sklearn_tser.exceptions.IncompatibleModelVersionError
        (a ``ModelFileError``) If the file was saved by another ``major.minor``
        release of sklearn-tser, or by a newer one.

    See Also
    --------
    save : When to use ``save``/``load`` and when joblib.

    Notes
    -----
    What ``load`` guarantees for a file from an untrusted source:

    - No code from the file runs: nothing is unpickled or imported; the
      classes come from a fixed list, parameters are validated, and a
      Pipeline's ``memory`` (a folder whose pickles a later ``fit`` would
      read) is set to ``None``.
    - Memory is bounded: the header is read and checked first (at most
      ``MAX_HEADER_BYTES``, 64 MiB), the tensors may total at most
      ``MAX_TENSOR_BYTES`` (1 GiB), every weight's shape is checked against the
      network the parameters describe before that network is built, labels
      are short strings, and Pipelines nest at most 4 deep. A file past these
      bounds gets a :class:`~sklearn_tser.exceptions.ModelFileError`, as does
      any other file that cannot be rebuilt.
    - The fitted state is checked: finite, unit-norm centroids, distinct
      classes, finite weights of the right shapes.

    What it does not guarantee: the SHA-256 digest stored in the file detects
    corruption, not tampering (whoever edits a file can recompute it), and a
    well-formed file can hold a model trained to give wrong answers. To know
    that a file is the one you mean, pass ``expected_sha256``. Files of
    :func:`joblib.dump` or :mod:`pickle` have none of these guarantees:
    unpickling runs code from the file.
    """
    import safetensors.torch
    from safetensors import SafetensorError

    from ._device import resolve_device

    device = resolve_device(device)  # a bad device is the caller's error
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"Model file {str(path)!r} {what}.")
    if expected_sha256 is not None:
        _check_sha256_format(expected_sha256)
    data, metadata = _read_file(path)
    if expected_sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected_sha256.lower():
            raise ModelFileError(
                f"Model file {str(path)!r} is not the file you expected: its "
                f"SHA-256 is {digest}, not {expected_sha256.lower()}. Refusing to "
                "load it."
            )
    try:
        text = metadata["sklearn_tser"]
        document = json.loads(text)
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise ModelFileError(
            f"Model file {str(path)!r} is corrupt: its JSON description cannot "
            f"be read ({type(exc).__name__})."
        ) from exc
    if not isinstance(document, dict):
        raise ModelFileError(f"Model file {str(path)!r} is corrupt.")
    _check_versions(document, path)
    try:
        tensors = safetensors.torch.load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ModelFileError(
            f"Model file {str(path)!r} is truncated or corrupt ({exc})."
        ) from exc
    if metadata.get("sha256") != _digest(text, tensors):
        raise ModelFileError(
            f"Model file {str(path)!r} was modified or corrupted after it was "
            "saved: its content does not match its SHA-256 digest. Refusing to "
            "load it; save the model again from its source."
        )
    try:
        estimator = _decode(document.get("estimator"), tensors, device)
    except ModelFileError:
        raise
    except Exception as exc:  # any other failure is a file this cannot rebuild
        raise ModelFileError(
            f"Model file {str(path)!r} describes an estimator this version cannot "
            f"rebuild: {type(exc).__name__}: {str(exc):.300}"
        ) from exc
    if tensors:
        raise ModelFileError(
            f"Model file {str(path)!r} holds unexpected tensors {sorted(tensors)[:3]}."
        )
    return estimator


def _check_sha256_format(expected):
    if not isinstance(expected, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", expected):
        raise ValueError(
            f"expected_sha256 must be the 64 hexadecimal digits of a SHA-256 "
            f"digest; got {expected!r:.100}."
        )
