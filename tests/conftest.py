"""Shared fixtures: where ../shared is, opt-in slow tests, GPU skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NEUROANA_SHARED", REPO.parent / "shared"))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    skip_slow = pytest.mark.skip(reason="slow: pass --runslow to run")
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    skip_napari = pytest.mark.skip(reason="napari tests need a display (CI runs them under Xvfb)")
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    for item in items:
        if "napari" in item.keywords and not has_display:
            item.add_marker(skip_napari)
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's ../shared folder; tests that need it skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"../shared not found at {SHARED} (set NEUROANA_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def nwb_dir(shared_dir) -> Path:
    d = shared_dir / "data" / "nwb"
    if not d.is_dir():
        pytest.skip(f"real NWB files not found in {d}")
    return d
