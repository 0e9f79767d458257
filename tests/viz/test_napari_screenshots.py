"""A picture of each widget after a fit on the plugin's sample data shows drawn content.

``docs/screenshots.py`` makes the README's pictures; this runs the same code into a temporary folder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari")

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _screenshots():
    spec = importlib.util.spec_from_file_location(
        "neuroana_docs_screenshots", DOCS / "screenshots.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _lit(rgb) -> float:
    return float((rgb.astype(int).sum(-1) > 60).mean())


def _white(rgb) -> np.ndarray:
    return rgb.astype(int).min(-1) > 245


@pytest.mark.napari
@pytest.mark.parametrize("name", ["traces", "fisbe", "connectome", "hmmglm", "adaptation"])
def test_widget_picture_shows_drawn_content(make_napari_viewer, tmp_path, name):
    from PIL import Image

    shots = _screenshots()
    assert name in shots.WIDGETS
    shot = shots.shoot(name, make_napari_viewer(show=True), tmp_path)
    assert shot["path"].stat().st_size < shots.MAX_BYTES
    saved = np.asarray(Image.open(shot["path"]).convert("RGB"))
    assert saved.shape == shot["window"].shape
    # the saved (palette) picture is the window, colours kept within the palette's error
    assert np.abs(saved.astype(int) - shot["window"].astype(int)).mean() < 6

    canvas = shot["canvas"]
    if name == "adaptation":  # draws in its dock only: the canvas stays empty
        assert _lit(canvas) < 0.001
    else:  # ROI masks, communities or the matcher's instances on the canvas
        assert _lit(canvas) > 0.01, f"only {_lit(canvas):.4f} of the canvas is drawn"
    if name == "fisbe":
        from neuroana.viz.napari._fisbe import DECISION_COLOURS

        rgb = canvas.astype(int)
        found = [
            k
            for k, c in DECISION_COLOURS.items()
            if (np.abs(rgb - [int(c[i : i + 2], 16) for i in (1, 3, 5)]).sum(-1) < 120).sum() > 30
        ]
        assert found, "none of the matcher's colours is on the canvas"
        return

    panel = shot["panel"]
    # the plotted data: more non-white pixels than the same axes emptied (frames, ticks, labels)
    ink = 1 - _white(panel).mean()
    assert ink > 0.13, f"only {ink:.3f} of the {name} panel is drawn"  # empty axes: < 0.08
    # and the panel is in the picture: the only white area of napari's dark window
    white = _white(shot["window"]).mean()
    assert white > 0.5 * _white(panel).mean() * panel[..., 0].size / saved[..., 0].size
