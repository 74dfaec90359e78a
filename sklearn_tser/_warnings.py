"""Where the warnings of sklearn-tser point: at the user's code."""

__all__ = ["user_stacklevel"]

# Packages whose frames a warning of ours skips to reach the user's code.
_OWN_PACKAGES = {"sklearn_tser", "skorch", "sklearn", "torch", "joblib"}


def user_stacklevel():
    """The ``stacklevel`` that makes a warning raised by our caller point at
    the first frame outside sklearn-tser and the libraries it runs in (a fit
    inside a Pipeline inside ``cross_validate``, say), not at their files."""
    import sys

    frame, level = sys._getframe(1), 1
    while frame is not None:
        package = frame.f_globals.get("__name__", "").partition(".")[0]
        if package not in _OWN_PACKAGES:
            break
        frame, level = frame.f_back, level + 1
    return level
