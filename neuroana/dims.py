"""Canonical dimension names shared by every analysis.

Estimators declare the dims they need with these names and transpose by name, never by position.
Every dim a reader or a fitted estimator produces is named here (``tests/test_dims.py`` checks it).
"""

import re

# --- recordings
TIME = "time"
UNIT = "unit"
ROI = "roi"
TRIAL = "trial"
FEATURE = "feature"
CHANNEL = "channel"
ANIMAL = "animal"
SESSION = "session"
EPISODE = "episode"
WINDOW = "window"
SPIKE = "spike"
INTERVAL = "interval"
ROW = "row"
# --- volumes and images
Z = "z"
Y = "y"
X = "x"
INSTANCE = "instance"
# --- connectivity: always (TARGET, SOURCE), the receiving unit first
TARGET = "target"
SOURCE = "source"
PAIR = "pair"
# --- fitted models
STATE = "state"
STATE_NEXT = "state_next"
COMPONENT = "component"
CLASS = "class"
BASIS = "basis"
LAG = "lag"
RESTART = "restart"
ITERATION = "iteration"
# --- tuning data (adaptation): neuron groups by preferred stimulus, stimulus values, ensembles
NEURON = "neuron"
STIMULUS = "stimulus"
ENSEMBLE = "ensemble"
METHOD = "method"  # read-outs of several methods side by side (pretrain.compare_connectivity)

#: every dim name the package's readers and fitted estimators produce
ALL = (
    TIME,
    UNIT,
    ROI,
    TRIAL,
    FEATURE,
    CHANNEL,
    ANIMAL,
    SESSION,
    EPISODE,
    WINDOW,
    SPIKE,
    INTERVAL,
    ROW,
    Z,
    Y,
    X,
    INSTANCE,
    TARGET,
    SOURCE,
    PAIR,
    STATE,
    STATE_NEXT,
    COMPONENT,
    METHOD,
    CLASS,
    BASIS,
    LAG,
    RESTART,
    ITERATION,
    NEURON,
    STIMULUS,
    ENSEMBLE,
)
#: dims of every connectivity matrix (weights, adjacency, read-outs)
CONNECTIVITY = (TARGET, SOURCE)
#: dims a reader derives from file content: a table column's extra axes (``iscell_dim1``), a
#: series' unnamed extra axes (``dim_2``), an image whose frame size differs from its container's
#: other images (``meanImg_y``)
DERIVED = re.compile(r"^(dim_\d+|.+_dim\d+|.+_(y|x|channel))$")


def is_known(name: str) -> bool:
    """Whether ``name`` is a canonical dim (:data:`ALL`) or one derived from file content.

    Examples
    --------
    >>> from neuroana.dims import is_known
    >>> is_known("time"), is_known("iscell_dim1"), is_known("neurons")
    (True, True, False)
    """
    return name in ALL or bool(DERIVED.match(name))


def as_dataarray(data, dims: tuple[str, ...], *, name: str = "data"):
    """Return ``data`` as an ``xarray.DataArray`` with exactly ``dims``, in that order.

    A DataArray is transposed by name (coordinates and attrs survive); a NumPy array (or anything
    ``numpy.asarray`` accepts) is taken to be in the documented order ``dims``.

    Parameters
    ----------
    data : xarray.DataArray or array_like
        The input.
    dims : tuple of str
        The dims the caller needs, in the order it wants them.
    name : str
        How the input is called in error messages.

    Raises
    ------
    ValueError
        When a DataArray lacks a required dim or has extra ones, or an array has the wrong rank.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.dims import as_dataarray
    >>> as_dataarray(np.zeros((3, 2)), ("time", "unit")).dims
    ('time', 'unit')
    """
    import numpy as np
    import xarray as xr

    if isinstance(data, xr.DataArray):
        missing = [d for d in dims if d not in data.dims]
        extra = [d for d in data.dims if d not in dims]
        if missing or extra:
            raise ValueError(
                f"{name} has dims {tuple(data.dims)}; expected {tuple(dims)}"
                + (f" (missing {missing})" if missing else "")
                + (f" (unexpected {extra})" if extra else "")
            )
        return data.transpose(*dims)
    arr = np.asarray(data)
    if arr.ndim != len(dims):
        raise ValueError(
            f"{name} is a {arr.ndim}-d array of shape {arr.shape}; expected {len(dims)} dims {tuple(dims)}"
        )
    return xr.DataArray(arr, dims=dims)
