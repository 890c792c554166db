"""Resolve a user's device request to a torch device."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` into a device.

    ``"auto"`` picks CUDA, then Apple MPS, then the CPU. Asking for a device
    that is not available is an error rather than a silent fallback, so that
    a job meant for a GPU never runs for hours on a CPU by accident.
    """
    if isinstance(device, torch.device):
        requested = device
    elif device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    else:
        try:
            requested = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(
                f"device={device!r} is not a device; expected 'auto', 'cpu', "
                "'cuda', 'cuda:N' or 'mps'."
            ) from exc
    if requested.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(requested)!r} was requested but CUDA is not available.")
    if requested.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError("device='mps' was requested but MPS is not available.")
    return requested
