"""napari writer: a Labels layer saved as a FISBe-layout zarr prediction (``volumes/pred_instances``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuroana.segmentation.errors import FisbeInputError


def write_labels(path: str, data, attributes: dict) -> list[str]:
    """Save a Labels layer as ``<path>`` (a ``.zarr`` directory), written atomically.

    A 3-D label map is stored as one channel, a 4-D ``(M, Z, Y, X)`` layer as ``M`` channels (one
    instance per channel), both under ``volumes/pred_instances`` (uint8 when the ids fit, else
    uint32), ready for ``neuroana fisbe evaluate --pred``.

    Parameters
    ----------
    path : str
        Target; ``.zarr`` is appended when missing.
    data : array of int
        The layer's data.
    attributes : dict
        The layer's attributes (unused; part of the npe2 writer signature).

    Returns
    -------
    list of str
        The written path.

    Raises
    ------
    FisbeInputError
        Multiscale, non-integer or negative labels, or not 3-D / 4-D.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from neuroana.io import read_fisbe
    >>> lab = np.zeros((4, 5, 6), np.int32); lab[1, 2, 3] = 7
    >>> p = write_labels(os.path.join(tempfile.mkdtemp(), "pred"), lab, {})[0]
    >>> int(read_fisbe(p).pred.values[0, 1, 2, 3]), p.endswith(".zarr")
    (7, True)
    """
    from neuroana.io import write_fisbe

    if isinstance(data, list):
        raise FisbeInputError("multiscale Labels layer; expected a single-scale layer to save")
    arr = np.asarray(data)
    if arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        raise FisbeInputError(f"labels of dtype {arr.dtype}; expected integer instance ids")
    if arr.ndim not in (3, 4):
        raise FisbeInputError(f"labels of shape {arr.shape}; expected (Z, Y, X) or (M, Z, Y, X)")
    if arr.size and arr.min() < 0:
        raise FisbeInputError(f"labels contain the negative id {int(arr.min())}; expected ids >= 0")
    target = str(path) if str(path).endswith(".zarr") else f"{path}.zarr"
    write_fisbe(target, pred=arr)
    return [str(Path(target))]
