"""Choice of the torch device and threads, shared by the transformer and the
classifier."""

import contextlib

__all__ = ["resolve_device", "torch_threads"]


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
    they are), then restore the calling thread's setting.

    torch keeps the setting per calling thread (it is OpenMP's), so that
    estimators fitting at once in several threads do not change each other's.
    """
    import torch

    if n_threads is None:
        yield
        return
    before = torch.get_num_threads()
    if before != n_threads:
        torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
