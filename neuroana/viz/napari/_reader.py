"""napari readers: NWB files (ROI masks, images, imaging series) and FISBe zarr samples.

Each reader returns napari layer-data tuples built from the public ``neuroana.io`` readers; the
NWB path travels in each layer's ``metadata["nwb_path"]`` so the traces widget can plot the ROI
traces and spikes of the file a layer came from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def masks_to_labels(masks: np.ndarray) -> np.ndarray:
    """Collapse ``(roi, y, x)`` mask weights into one label image (ROI ``i`` -> label ``i + 1``).

    Where masks overlap, the ROI with the larger weight wins; pixels no mask covers are 0.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((2, 2, 3)); m[0, 0, :2] = 1.0; m[1, 0, 1:] = 0.5
    >>> masks_to_labels(m)
    array([[1, 1, 2],
           [0, 0, 0]], dtype=int32)
    """
    masks = np.asarray(masks)
    labels = np.argmax(masks, axis=0).astype(np.int32) + 1
    labels[~(masks > 0).any(axis=0)] = 0
    return labels


def _nwb_layers(path: str) -> list[tuple]:
    from neuroana.io import NWBError, read_images, read_roi_masks

    meta = {"nwb_path": str(path)}
    layers: list[tuple] = []
    for key, img in read_images(path).items():
        # still images may be RGB; imaging series are (time, y, x) stacks with a time slider
        kwargs = {"name": key.rsplit("/", 1)[-1], "metadata": meta, "rgb": "channel" in img.dims}
        layers.append((img.values, kwargs, "image"))
    try:
        masks = read_roi_masks(path)
    except NWBError:
        masks = (
            None  # no segmentation (or flattened masks of unknown frame shape): nothing to paint
        )
    if masks is not None:
        labels = masks_to_labels(masks.values)
        roi_meta = {**meta, "roi_ids": masks["roi"].values.tolist()}
        layers.append((labels, {"name": "ROIs", "metadata": roi_meta}, "labels"))
    if not layers:
        raise NWBError(
            f"{path}: nothing to show in napari (no images, imaging series or ROI masks)"
        )
    return layers


def get_nwb_reader(path):
    """napari reader contribution for ``*.nwb``: returns the reader, or None for other paths."""
    if isinstance(path, list):
        path = path[0]
    if not str(path).lower().endswith(".nwb"):
        return None
    return lambda p: _nwb_layers(p[0] if isinstance(p, list) else p)


def _fisbe_layers(path: str) -> list[tuple]:
    from neuroana.io import read_fisbe
    from neuroana.viz.napari._fisbe import dataset_layers

    return dataset_layers(read_fisbe(path))


def get_fisbe_reader(path):
    """napari reader contribution for FISBe zarr samples (directories holding ``volumes/raw``,
    ``volumes/gt_instances`` or ``volumes/pred_instances``): raw as three additive colour layers,
    one Labels layer per GT instance, the prediction as one Labels layer."""
    if isinstance(path, list):
        path = path[0]
    p = Path(path)
    keys = ("raw", "gt_instances", "pred_instances")
    if not (p.is_dir() and any((p / "volumes" / k).exists() for k in keys)):
        return None
    return lambda q: _fisbe_layers(q[0] if isinstance(q, list) else q)
