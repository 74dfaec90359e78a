"""``python -m sklearn_tser``: the command line (see ``sklearn_tser._cli``)."""

from ._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
