"""ctypes binding of the optional fused log-mel kernels (``_kernels_c.c``).

The C module is built by ``pip install`` where a C compiler with OpenMP is
available (GCC on Linux, in practice) and skipped elsewhere. :func:`load`
returns the library, or None when the module is missing, so that
:class:`~sklearn_tser.LogMelTransformer` falls back to its pure-torch path.
"""

import ctypes
import functools

# Bumped with every change of the C functions' signatures: a stale build of
# another version is ignored instead of being called with the wrong arguments.
ABI_VERSION = 1

_P = ctypes.c_void_p
_I = ctypes.c_int64
_F = ctypes.c_float

_SIGNATURES = {
    # n_clips, ptrs, lens, counts, starts, row0, hop, half, win, n_fft, wlo, whi,
    # frames, bad
    "tser_frame": [_I, _P, _P, _P, _P, _I, _I, _I, _P, _I, _I, _I, _P, _P],
    # n_frames, spec, n_freq, n_mels, mlo, mhi, moff, mw, amin, power, db
    "tser_mel_db": [_I, _P, _I, _I, _P, _P, _P, _P, _F, _F, _P],
    # n_clips, db, n_mels, ld, rows, row0, counts, offs, widths, outs,
    # out_width, top_db, use_top
    "tser_write": [_I, _P, _I, _I, _P, _I, _P, _P, _P, _P, _I, _F, _I],
}


# False makes load() return None: the benchmark and the tests set it to run the
# pure-torch path of LogMelTransformer on a machine where the kernels are built.
ENABLED = True


def load():
    """The fused kernels as a :class:`ctypes.CDLL`, or None if not built (or
    if :data:`ENABLED` is False)."""
    return _load() if ENABLED else None


@functools.cache
def _load():
    """The fused kernels as a :class:`ctypes.CDLL`, or None if not built.

    torch is imported first, so that the kernels' OpenMP calls resolve to the
    runtime torch loaded and share its threads (``torch.set_num_threads``
    applies to both).
    """
    import torch  # noqa: F401

    try:
        from . import _kernels_c
    except ImportError:
        return None
    try:
        lib = ctypes.CDLL(_kernels_c.__file__)
        lib.tser_abi_version.restype = _I
        if lib.tser_abi_version() != ABI_VERSION:
            return None
        for name, argtypes in _SIGNATURES.items():
            function = getattr(lib, name)
            function.argtypes = argtypes
            function.restype = _I
    except (OSError, AttributeError):
        return None
    return lib


def address(array):
    """Address of the first element of a NumPy array or torch tensor."""
    if hasattr(array, "data_ptr"):
        return array.data_ptr()
    return array.ctypes.data
