"""Choice of the torch device and threads, shared by the transformer and the
classifier."""

import contextlib
import threading

__all__ = ["resolve_device", "torch_threads"]

# torch's intra-op thread count is one setting per process: the estimators
# that run at once in threads share it, and the first to start restores it
# when the last one ends.
_THREADS_LOCK = threading.Lock()
_THREADS_ACTIVE = []
_THREADS_BEFORE = []


def resolve_device(device):
    """Turn a device name into a :class:`torch.device`.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:N"`` or ``"mps"``.

    Returns
    -------
    device : torch.device

    Raises
    ------
    ValueError
        If the name is not a torch device, or names CUDA on a machine without it.
    """
    import torch

    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda' "
            "or 'cuda:N'."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for CUDA, but torch sees no CUDA device here; "
            "use device='auto' to fall back to the CPU."
        )
    return resolved


@contextlib.contextmanager
def torch_threads(n_threads):
    """Run the block with ``n_threads`` torch intra-op threads (``None``: as
    they are), then restore the caller's setting.

    The setting is process-wide: while estimators run in several threads at
    once, the last one to start sets it and the last one to end restores it.
    """
    import torch

    if n_threads is None:
        yield
        return
    with _THREADS_LOCK:
        if not _THREADS_ACTIVE:
            _THREADS_BEFORE[:] = [torch.get_num_threads()]
        _THREADS_ACTIVE.append(n_threads)
        if torch.get_num_threads() != n_threads:
            torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _THREADS_ACTIVE.remove(n_threads)
            wanted = _THREADS_ACTIVE[-1] if _THREADS_ACTIVE else _THREADS_BEFORE[0]
            if torch.get_num_threads() != wanted:
                torch.set_num_threads(wanted)
