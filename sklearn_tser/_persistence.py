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

from .exceptions import IncompatibleModelVersionError, ModelFileError

__all__ = ["load", "save"]

FORMAT = "sklearn-tser-model"
FORMAT_VERSION = 1
_ATTRIBUTE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*_")  # learned attributes
_TENSOR_KINDS = "biuf"  # numpy kinds stored as tensors (when torch has the dtype)
_JSON_ARRAY_KINDS = "biufUO"  # numpy kinds stored as JSON lists


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

    if array.dtype.kind in _TENSOR_KINDS:
        try:
            tensor = torch.from_numpy(np.ascontiguousarray(array)).clone()
        except TypeError:  # a dtype torch lacks, e.g. uint32 in old versions
            pass
        else:
            tensors[key] = tensor
            return {"tensor": key}
    if array.dtype.kind not in _JSON_ARRAY_KINDS:
        raise TypeError(f"Cannot save {where}: arrays of dtype {array.dtype}.")
    return {
        "array": _to_json(array.tolist(), where),
        "dtype": "object" if array.dtype == object else array.dtype.str,
        "shape": list(array.shape),
    }


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

    path = Path(path)
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
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
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


def _read_metadata(data, path):
    """The safetensors header's metadata, parsed without trusting the file."""
    bad = ModelFileError(
        f"{str(path)!r} is not an sklearn-tser model file (written by "
        "sklearn_tser.save): it has no valid safetensors header. If it is a "
        "joblib or pickle file, load it with joblib.load, and only if you trust it."
    )
    if len(data) < 9 or data[8:9] != b"{":  # a safetensors header is JSON
        raise bad
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ModelFileError(
            f"Model file {str(path)!r} is truncated: its header announces {n} "
            f"bytes but the file has only {len(data)}."
        )
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad from exc
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise bad
    return metadata


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
        if dtype.kind not in _JSON_ARRAY_KINDS:
            raise ValueError(f"dtype {dtype} is not allowed")
        values = _from_json(spec["array"])
        if dtype.kind == "O":
            array = np.empty(len(values), dtype=object)
            array[:] = values
        else:
            array = np.asarray(values, dtype=dtype)
        return array.reshape(spec["shape"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{where} is malformed in the model file: {exc}") from exc


def _new_estimator(cls, params, where):
    if not isinstance(params, dict):
        raise ModelFileError(f"The parameters of {where} are malformed.")
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


def _decode(doc, tensors, device, prefix="", where="the estimator"):
    classes = _estimator_classes()
    if not isinstance(doc, dict) or doc.get("class") not in classes:
        name = doc.get("class") if isinstance(doc, dict) else doc
        raise ModelFileError(
            f"The model file names the class {name!r} for {where}; only "
            f"{sorted(classes)} can be loaded."
        )
    cls = classes[doc["class"]]
    if cls is Pipeline:
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
                )
            steps.append((step_name, step))
        params = {k: _from_json(v) for k, v in doc.get("params", {}).items()}
        return _new_estimator(cls, {**params, "steps": steps}, "the Pipeline")

    estimator = _new_estimator(cls, doc.get("params"), f"{cls.__name__} ({where})")
    for attr, spec in doc.get("attributes", {}).items():
        if not _ATTRIBUTE_RE.fullmatch(attr) or attr == "net_":
            raise ModelFileError(f"Invalid attribute name {attr!r} in the model file.")
        label = f"attribute {cls.__name__}.{attr}"
        if "value" in spec:
            value = _from_json(spec["value"])
        else:
            value = _decode_array(spec, tensors, label)
        setattr(estimator, attr, value)
    if "net" in doc:
        _decode_net(estimator, doc["net"], tensors, device, prefix)
    return estimator


def _decode_net(clf, spec, tensors, device, prefix):
    """Rebuild the skorch net with :func:`make_net`, then copy the weights in."""
    from skorch.history import History

    from ._device import resolve_device
    from ._training import make_net

    try:
        n_mels = int(clf.n_features_in_)
        n_classes, dim = clf.centroids_.shape
    except (AttributeError, TypeError, ValueError) as exc:
        raise ModelFileError(
            f"The model file lacks the fitted state of the classifier: {exc}"
        ) from exc
    if n_classes != len(clf.classes_) or dim != clf.embedding_dim:
        raise ModelFileError(
            f"The model file is inconsistent: centroids_ has shape "
            f"{clf.centroids_.shape} for {len(clf.classes_)} classes and "
            f"embedding_dim={clf.embedding_dim}."
        )
    device = resolve_device(device)
    net = make_net(clf.get_params(), n_mels=n_mels, n_classes=n_classes, device=device)
    net.initialize()
    state = {}
    for name in spec.get("state_dict", []):
        key = f"{prefix}net_/{name}"
        if key not in tensors:
            raise ModelFileError(f"The model file lacks the network weight {name!r}.")
        state[name] = tensors.pop(key)
    try:
        net.module_.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelFileError(
            "The network weights in the model file do not fit the network its "
            f"parameters describe: {exc}"
        ) from exc
    net.module_.to(device)
    net.module_.eval()
    net.history_ = History(_from_json(spec.get("history", [])))
    clf.net_ = net


def load(path, *, device="cpu"):
    """Load an estimator saved by :func:`save`, without running code from the file.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.
    device : str, default="cpu"
        Torch device of the classifier's network after loading: ``"cpu"``,
        ``"cuda"``, ``"cuda:N"`` or ``"auto"``.

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
        not match), or names a class other than the sklearn-tser estimators and
        Pipeline.
    sklearn_tser.exceptions.IncompatibleModelVersionError
        (a ``ModelFileError``) If the file was saved by another ``major.minor``
        release of sklearn-tser, or by a newer one.

    See Also
    --------
    save : When to use ``save``/``load`` and when joblib.
    """
    import safetensors.torch
    from safetensors import SafetensorError

    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"Model file {str(path)!r} {what}.")
    data = path.read_bytes()
    metadata = _read_metadata(data, path)
    try:
        text = metadata["sklearn_tser"]
        document = json.loads(text)
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ModelFileError(
            f"Model file {str(path)!r} is corrupt: its JSON description cannot "
            f"be read ({exc})."
        ) from exc
    if not isinstance(document, dict):
        raise ModelFileError(f"Model file {str(path)!r} is corrupt.")
    _check_versions(document, path)
    try:
        tensors = safetensors.torch.load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ModelFileError(
            f"Model file {str(path)!r} is truncated or corrupt: {exc}"
        ) from exc
    if metadata.get("sha256") != _digest(text, tensors):
        raise ModelFileError(
            f"Model file {str(path)!r} was modified or corrupted after it was "
            "saved: its content does not match its SHA-256 digest. Refusing to "
            "load it; save the model again from its source."
        )
    try:
        estimator = _decode(document.get("estimator"), tensors, device)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(
            f"Model file {str(path)!r} describes an estimator this version cannot "
            f"rebuild: {exc}"
        ) from exc
    if tensors:
        raise ModelFileError(
            f"Model file {str(path)!r} holds unexpected tensors {sorted(tensors)[:3]}."
        )
    return estimator
