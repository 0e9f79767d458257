"""Reader for the Benucci, Saleem & Carandini 2013 population tuning data (``BenucciTuningData.mat``).

Layout (from the analysis code of Duong et al.; see ``data_manifests/benucci2013_adaptation.yaml``): a
MATLAB file with a cell array ``resps`` of sessions, each a 13 x 21 x 2 array: neuron groups by
preferred orientation (-90..90 deg, 15 deg steps), stimulus orientation relative to the adapter
(-90..90 deg, 9 deg steps), ensemble (0 = uniform, 1 = biased). The +-90 deg endpoints are the same
orientation; the reader averages each duplicate pair into the -90 deg entry, giving 12 x 20 x 2.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from neuroana.errors import BenucciFormatError

DIMS = ("session", "neuron", "stimulus", "ensemble")
#: adaptor probability per session in the real data (Duong's analysis code; see gain_control.md §2)
BENUCCI_ADAPTOR_PROBABILITY = (0.50, 0.35, 0.35, 0.50, 0.50, 0.50, 0.50, 0.40, 0.40, 0.30, 0.30)


def _load_resps(path: Path) -> list[np.ndarray]:
    try:
        from scipy.io import loadmat

        mat = loadmat(str(path), squeeze_me=False)
    except NotImplementedError:  # MATLAB v7.3 files are HDF5
        import h5py

        with h5py.File(path, "r") as fh:
            if "resps" not in fh:
                raise BenucciFormatError(f"{path}: no 'resps' variable; found {list(fh)}") from None
            refs = np.asarray(fh["resps"]).ravel()
            # h5py gives MATLAB arrays transposed (column-major)
            return [np.asarray(fh[r]).T for r in refs]
    except ValueError as err:
        raise BenucciFormatError(f"{path} is not a MATLAB .mat file: {err}") from err
    if "resps" not in mat:
        found = [k for k in mat if not k.startswith("__")]
        raise BenucciFormatError(f"{path}: no 'resps' variable; found {found}")
    cells = mat["resps"]
    return [np.asarray(c, dtype=float) for c in np.asarray(cells, dtype=object).ravel()]


def read_benucci(
    path: str | os.PathLike,
    *,
    adaptor_probability: tuple[float, ...] | None = None,
    merge_wraparound: bool = True,
) -> xr.DataArray:
    """Read ``BenucciTuningData.mat`` (read-only) into a Benucci-layout DataArray.

    Parameters
    ----------
    path : path-like
        The ``.mat`` file (MATLAB v5 or v7.3).
    adaptor_probability : tuple of float, optional
        Per-session adaptor probability; default the published 11-session list.
    merge_wraparound : bool
        Average the duplicate +-90 deg rows/columns (True) or keep all 13 x 21 entries.

    Returns
    -------
    xarray.DataArray
        dims ``("session", "neuron", "stimulus", "ensemble")`` with coords ``neuron`` (preferred
        orientation, deg), ``stimulus`` (deg), ``ensemble`` = ``["uniform", "biased"]``,
        ``adaptor_probability`` (session) and attrs ``source``.

    Raises
    ------
    BenucciFormatError
        When the file is missing, not a .mat file, lacks ``resps``, or a session is not 13 x 21 x 2.

    Examples
    --------
    >>> import numpy as np, scipy.io, tempfile, os
    >>> from neuroana.io.benucci import read_benucci
    >>> cells = np.empty((1, 11), dtype=object)
    >>> for i in range(11):
    ...     cells[0, i] = np.ones((13, 21, 2))
    >>> path = os.path.join(tempfile.mkdtemp(), "b.mat")
    >>> scipy.io.savemat(path, {"resps": cells})
    >>> read_benucci(path).shape
    (11, 12, 20, 2)
    """
    path = Path(path)
    if not path.is_file():
        raise BenucciFormatError(
            f"{path} does not exist; BenucciTuningData.mat is not public — obtain it from the "
            "authors (see data_manifests/benucci2013_adaptation.yaml)"
        )
    sessions = _load_resps(path)
    for i, s in enumerate(sessions):
        if s.shape != (13, 21, 2):
            raise BenucciFormatError(
                f"{path}: session {i} has shape {s.shape}; expected (13, 21, 2)"
            )
    arr = np.stack(sessions)
    pref = np.linspace(-90.0, 90.0, 13)
    stim = np.linspace(-90.0, 90.0, 21)
    if merge_wraparound:
        arr = arr.copy()
        arr[:, 0] = 0.5 * (arr[:, 0] + arr[:, -1])
        arr[:, :, 0] = 0.5 * (arr[:, :, 0] + arr[:, :, -1])
        arr = arr[:, :-1, :-1]
        pref, stim = pref[:-1], stim[:-1]
    pa = BENUCCI_ADAPTOR_PROBABILITY if adaptor_probability is None else tuple(adaptor_probability)
    if len(pa) != arr.shape[0]:
        raise BenucciFormatError(
            f"{path} holds {arr.shape[0]} sessions but {len(pa)} adaptor probabilities were given"
        )
    return xr.DataArray(
        arr,
        dims=DIMS,
        coords={
            "session": np.arange(arr.shape[0]),
            "neuron": pref,
            "stimulus": stim,
            "ensemble": ["uniform", "biased"],
            "adaptor_probability": ("session", np.asarray(pa, float)),
        },
        name="response",
        attrs={"source": str(path)},
    )
