"""The 3-D view shows a FISBe volume the right way round, not mirrored.

napari before 0.6 drew volumes mirrored: at the default camera the depth axis pointed away from the
viewer while ``y`` pointed down and ``x`` right (a left-handed frame). napari's documented camera
convention since then: ``orientation == ("towards", "down", "right")``, a right-handed ``(z, y, x)``
frame; a camera looking along ``view`` with ``up`` pointing up on the canvas has the canvas's right
along ``view x up`` (in ``(z, y, x)`` components) and shows an orthographic projection.

A chiral object (a corner with three arms of different lengths along +z, +y, +x, each a GT
instance of a FISBe-layout sample opened with the plugin's reader) is rendered from an oblique
camera under Xvfb; each arm's pixels must lie in the direction that projection predicts. A slab
nearer the viewer (higher z) must hide one behind it at the default camera. Both checks must fail
on the volume flipped along ``z`` (what a mirrored rendering shows) and with napari's camera made
left-handed.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")

SHAPE = (40, 48, 56)  # (z, y, x): unequal sizes, so no axis swap goes unnoticed
CORNER = (20, 24, 28)
ARMS = {"z": 16, "y": 11, "x": 21}  # lengths in voxels: the object is chiral
COLOURS = {"corner": "#ffffff", "z": "#ff0000", "y": "#00ff00", "x": "#0000ff"}
CHANNEL = {"z": 0, "y": 1, "x": 2}  # the arm's colour channel
VIEW, UP = (-1.0, -0.55, -0.3), (0.0, -1.0, 0.0)  # look from +z, a little from +y and +x


def _tripod() -> np.ndarray:
    """(4, Z, Y, X) GT instances: the z, y and x arms (cross-section 5 x 5) and a corner cube
    (9 voxels wide, so it shows around the arms' roots)."""
    gt = np.zeros((4, *SHAPE), np.uint8)
    z, y, x = CORNER
    h, c = 2, 4
    gt[0, z + c + 1 : z + ARMS["z"], y - h : y + h + 1, x - h : x + h + 1] = 1
    gt[1, z - h : z + h + 1, y + c + 1 : y + ARMS["y"], x - h : x + h + 1] = 2
    gt[2, z - h : z + h + 1, y - h : y + h + 1, x + c + 1 : x + ARMS["x"]] = 3
    gt[3, z - c : z + c + 1, y - c : y + c + 1, x - c : x + c + 1] = 4
    return gt


def _screen_frame(view, up):
    """The canvas's right and up directions in (z, y, x) for a right-handed camera."""
    v = np.asarray(view, float) / np.linalg.norm(view)
    u = np.asarray(up, float) - np.dot(up, v) * v
    u /= np.linalg.norm(u)
    return np.cross(v, u), u


def _expected_directions() -> dict[str, np.ndarray]:
    """Unit canvas direction (column right, row down) from the corner to each arm's middle."""
    right, up = _screen_frame(VIEW, UP)
    out = {}
    for k, axis in enumerate("zyx"):
        d = np.zeros(3)
        d[k] = (5 + ARMS[axis]) / 2
        s = np.array([d @ right, -(d @ up)])
        out[axis] = s / np.linalg.norm(s)
    return out


def _open_sample(tmp_path, name, **volumes):
    from neuroana.io import write_fisbe
    from neuroana.viz.napari._reader import get_fisbe_reader

    path = tmp_path / f"{name}.zarr"
    write_fisbe(path, **volumes)
    return get_fisbe_reader(str(path))(str(path))


def _show(viewer, layers, colours):
    """Add the layers, each in one colour (or a {label: colour} dict), opaque, in a 3-D view."""
    from napari.layers import Layer

    viewer.layers.clear()
    for (data, kw, kind), colour in zip(layers, colours, strict=True):
        cmap = colour if isinstance(colour, dict) else {None: colour}
        kw = {**kw, "colormap": {**cmap, 0: "transparent"}, "opacity": 1.0}
        viewer.add_layer(Layer.create(data, kw, kind))
    viewer.dims.ndisplay = 3
    viewer.reset_view()


def _pixels(img, channel: int | None) -> np.ndarray:
    """(row, col) of the lit pixels of a pure colour channel (shading varies their brightness),
    or of the grey ones (white shaded) for ``None``."""
    rgb = img[..., :3].astype(float)
    top = rgb.max(-1)
    lit = top > 40
    if channel is None:
        return np.argwhere(lit & (rgb.min(-1) > 0.8 * top))
    others = np.delete(rgb, channel, axis=-1).max(-1)
    return np.argwhere(lit & (rgb[..., channel] == top) & (others < 0.25 * top))


def _arm_cosines(viewer, layers) -> dict[str, float]:
    """Cosine between each arm's drawn direction (its pixels' centre minus the corner's) and the
    direction the right-handed projection predicts."""
    _show(viewer, layers, [COLOURS[k] for k in ("z", "y", "x", "corner")])
    viewer.camera.set_view_direction(VIEW, UP)
    np.testing.assert_allclose(viewer.camera.view_direction, np.array(VIEW) / np.linalg.norm(VIEW))
    img = viewer.screenshot(canvas_only=True, flash=False)
    corner = _pixels(img, None)
    assert len(corner) > 20, "the corner is not drawn"
    origin = corner.mean(0)
    out = {}
    for axis, want in _expected_directions().items():
        px = _pixels(img, CHANNEL[axis])
        assert len(px) > 20, f"the {axis} arm is not drawn ({len(px)} pixels)"
        d = px.mean(0) - origin  # (row down, col right)
        drawn = np.array([d[1], d[0]]) / np.linalg.norm(d)
        out[axis] = float(drawn @ want)
    return out


def _slabs() -> np.ndarray:
    """(2, Z, Y, X) predicted instances: a small slab at high z (1) over a wide one at low z (2)."""
    pred = np.zeros((2, *SHAPE), np.uint8)
    pred[0, 30:34, 14:34, 16:40] = 1
    pred[1, 6:10, 6:42, 6:50] = 2
    return pred


def _near_fraction(viewer, layers) -> float:
    """The default 3-D camera (x right and y down, as in 2-D): the fraction of the drawn slab
    pixels that are the high-z slab's (it hides the low-z slab when +z points at the viewer)."""
    _show(viewer, layers, [{1: "#ff0000", 2: "#00ff00"}])
    viewer.camera.angles = (0.0, 0.0, 0.0)  # napari's default 3-D camera
    img = viewer.screenshot(canvas_only=True, flash=False)
    near, far = len(_pixels(img, 0)), len(_pixels(img, 1))
    assert near + far > 100, "neither slab is drawn"
    return near / (near + far)


@pytest.mark.napari
def test_3d_view_is_not_mirrored(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer(show=True)
    assert tuple(viewer.camera.orientation) == ("towards", "down", "right")
    assert str(viewer.camera.handedness.value) == "right"

    gt = _tripod()
    cos = _arm_cosines(viewer, _open_sample(tmp_path, "tripod", gt=gt))
    assert all(c > 0.95 for c in cos.values()), cos
    pred = _slabs()
    near = _near_fraction(viewer, _open_sample(tmp_path, "slabs", pred=pred))
    # the default camera looks along -z with -y up: +z must point at the viewer
    np.testing.assert_allclose(viewer.camera.view_direction, (-1, 0, 0), atol=1e-9)
    np.testing.assert_allclose(viewer.camera.up_direction, (0, -1, 0), atol=1e-9)
    assert near > 0.2, near  # the high-z slab is in front (~0.3 of the drawn area)

    # a mirrored rendering (the volume flipped along z, shown as if it were the sample) fails both
    flipped = _arm_cosines(viewer, _open_sample(tmp_path, "tripod-mirrored", gt=gt[:, ::-1]))
    assert flipped["z"] < 0, flipped
    assert not all(c > 0.95 for c in flipped.values())
    hidden = _near_fraction(viewer, _open_sample(tmp_path, "slabs-mirrored", pred=pred[:, ::-1]))
    assert hidden < 0.02, hidden

    # and so does napari's own mirrored rendering: a left-handed camera (depth axis "away")
    viewer.camera.orientation = ("away", "down", "right")
    left = _arm_cosines(viewer, _open_sample(tmp_path, "tripod", gt=gt))
    assert not all(c > 0.95 for c in left.values()), left
    assert _near_fraction(viewer, _open_sample(tmp_path, "slabs", pred=pred)) < 0.02
