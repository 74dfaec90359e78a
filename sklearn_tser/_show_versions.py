"""show_versions: what a bug report needs to know about this installation."""

import importlib.metadata
import platform
import sys

__all__ = ["show_versions"]

_PACKAGES = (
    "sklearn-tser",
    "numpy",
    "scipy",
    "scikit-learn",
    "torch",
    "skorch",
    "librosa",
    "soundfile",
    "safetensors",
    "joblib",
)


def _info():
    """The facts printed by :func:`show_versions`, as a dict of dicts."""
    import torch

    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    compute = {
        "torch CPU threads": str(torch.get_num_threads()),
        "CUDA": (
            torch.cuda.get_device_name(0)
            if torch.cuda.is_available()
            else "not available"
        ),
    }
    system = {
        "python": sys.version.replace("\n", " "),
        "machine": platform.platform(),
    }
    return {"System": system, "Python packages": versions, "Computation": compute}


def show_versions():
    """Print the versions of sklearn-tser, its dependencies and the platform.

    Also the number of torch CPU threads and the CUDA device. Paste its output into
    bug reports.

    Examples
    --------
    >>> from sklearn_tser import show_versions
    >>> show_versions()  # doctest: +ELLIPSIS
    <BLANKLINE>
    System:
    ...
    torch CPU threads: ...
    ...
    """
    for section, rows in _info().items():
        print(f"\n{section}:")
        width = max(len(key) for key in rows)
        for key, value in rows.items():
            print(f"{key:>{width}}: {value}")
