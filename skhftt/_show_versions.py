"""``skhftt.show_versions()``: what a bug report needs to know."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

_PACKAGES = (
    "skhftt", "numpy", "scipy", "scikit-learn", "torch", "sentence-transformers",
    "transformers", "open_clip_torch", "joblib", "tqdm", "safetensors", "pillow",
    "dask", "distributed", "pyarrow",
)


def _versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    import torch

    versions["cuda"] = torch.version.cuda or "none"
    versions["cuda available"] = str(torch.cuda.is_available())
    if torch.cuda.is_available():
        versions["gpu"] = torch.cuda.get_device_name(0)
    return versions


def show_versions() -> None:
    """Print the versions of skhftt, its dependencies, and the GPU, if any."""
    for name, version in _versions().items():
        print(f"{name:>22}: {version}")
