"""Write a :class:`~neuroana.datasets.SyntheticSession` as a standard NWB 2.x file.

Layout (all standard neurodata types, so any NWB reader opens it):

- ``/units``: ``spike_times`` per unit; ground-truth column ``true_preferred_state`` (the state
  with the highest baseline rate).
- ``/processing/ophys``: ``ImageSegmentation/PlaneSegmentation`` with 3-D ``image_mask``
  ``(roi, y, x)``, a ``neuron_label`` column and ground-truth columns ``true_community_ep{k}``
  and ``true_f0``;
  ``Fluorescence/RoiResponseSeries`` stored time-first ``(time, roi)`` with ``starting_time`` and
  ``rate``.
- ``/processing/behavior``: ``Position/position`` (SpatialSeries x, y with timestamps),
  ``CompassDirection/head_direction`` (SpatialSeries, rate) and ``BehavioralTimeSeries/speed``
  (TimeSeries, rate).
- ``/processing/stimulus/tuning`` (when the session has tuning data): a ``DynamicTable`` with one
  row per (session, neuron, stimulus, ensemble) and columns ``session``, ``adaptor_probability``,
  ``neuron`` (preferred orientation, deg), ``stimulus`` (orientation, deg), ``ensemble`` and
  ``response`` (see :func:`neuroana.io.nwb_tuning.read_tuning`).
- ``/intervals/epochs`` (tags ``wake``/``sleep``), ``/intervals/community_episodes`` (tags
  ``episode0`` ...) and ``/intervals/true_states`` (one row per run of a hidden state, column
  ``state``).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

_START = datetime(2024, 1, 1, tzinfo=UTC)


def _state_runs(states: np.ndarray) -> list[tuple[int, int, int]]:
    """(first, last + 1, state) of each maximal run of equal values."""
    change = np.flatnonzero(np.diff(states)) + 1
    starts = np.r_[0, change]
    stops = np.r_[change, states.size]
    return [(int(a), int(b), int(states[a])) for a, b in zip(starts, stops, strict=True)]


def _build_nwbfile(session):
    from pynwb import NWBFile, TimeSeries
    from pynwb.behavior import BehavioralTimeSeries, CompassDirection, Position, SpatialSeries
    from pynwb.ophys import Fluorescence, ImageSegmentation, OpticalChannel

    p = session.params
    nwb = NWBFile(
        session_description="neuroana synthetic session with planted ground truth",
        identifier=f"neuroana-synthetic-{p.get('random_state')}",
        session_start_time=_START,
        experimenter=["neuroana.datasets.make_session"],
        lab="neuroana",
        notes=f"make_session parameters: {p}",
    )

    # units ------------------------------------------------------------------------------
    preferred = session.log_rates.argmax("state").values
    nwb.add_unit_column(
        name="true_preferred_state", description="ground truth: state with the highest rate"
    )
    for j, (uid, times) in enumerate(session.spike_times.items()):
        nwb.add_unit(
            spike_times=np.asarray(times, dtype=np.float64),
            id=int(uid),
            true_preferred_state=int(preferred[j]),
        )

    # ophys ------------------------------------------------------------------------------
    device = nwb.create_device(name="SyntheticMicroscope", description="simulated two-photon")
    channel = OpticalChannel(name="green", description="GCaMP-like", emission_lambda=510.0)
    plane = nwb.create_imaging_plane(
        name="ImagingPlane",
        optical_channel=channel,
        description="simulated plane",
        device=device,
        excitation_lambda=920.0,
        imaging_rate=float(p["frame_rate"]),
        indicator="GCaMP (simulated)",
        location="synthetic cortex",
    )
    ophys = nwb.create_processing_module(name="ophys", description="simulated calcium imaging")
    seg = ImageSegmentation()
    ophys.add(seg)
    ps = seg.create_plane_segmentation(
        name="PlaneSegmentation", description="planted ROI blobs", imaging_plane=plane
    )
    communities = session.communities.values
    for e in range(communities.shape[0]):
        ps.add_column(
            name=f"true_community_ep{e}",
            description=f"ground truth: community label in episode {e}",
        )
    ps.add_column(name="true_f0", description="ground truth: baseline fluorescence F0")
    labels = session.roi_labels
    if labels is not None:
        ps.add_column(name="neuron_label", description="identity of the neuron across sessions")
    masks = session.roi_masks.transpose("roi", "y", "x").values
    f0 = session.baseline_fluorescence.values
    for i, rid in enumerate(session.roi_masks["roi"].values):
        cols = {
            f"true_community_ep{e}": int(communities[e, i]) for e in range(communities.shape[0])
        }
        if labels is not None:
            cols["neuron_label"] = str(labels.values[i])
        ps.add_roi(image_mask=masks[i], id=int(rid), true_f0=float(f0[i]), **cols)
    region = ps.create_roi_table_region(region=list(range(masks.shape[0])), description="all ROIs")
    fl = session.fluorescence.transpose("time", "roi")  # NWB stores time first
    fluorescence = Fluorescence()
    ophys.add(fluorescence)
    fluorescence.create_roi_response_series(
        name="RoiResponseSeries",
        data=np.ascontiguousarray(fl.values),
        rois=region,
        unit="a.u.",
        starting_time=float(fl["time"].values[0]),
        rate=float(p["frame_rate"]),
    )

    # behaviour --------------------------------------------------------------------------
    beh = nwb.create_processing_module(name="behavior", description="simulated behaviour")
    pos = session.behavior["position"]
    beh.add(
        Position(
            spatial_series=SpatialSeries(
                name="position",
                data=pos.values,
                timestamps=pos["time"].values,
                reference_frame="(0, 0) is a corner of a 100 cm square box",
                unit="cm",
            )
        )
    )
    hd = session.behavior["head_direction"]
    beh.add(
        CompassDirection(
            spatial_series=SpatialSeries(
                name="head_direction",
                data=hd.values[:, 0],
                starting_time=float(hd["time"].values[0]),
                rate=float(p["behavior_rate"]),
                reference_frame="0 rad = +x axis of the box",
                unit="radians",
            )
        )
    )
    sp = session.behavior["speed"]
    beh.add(
        BehavioralTimeSeries(
            time_series=TimeSeries(
                name="speed",
                data=sp.values[:, 0],
                starting_time=float(sp["time"].values[0]),
                rate=float(p["behavior_rate"]),
                unit="cm/s",
                description="running speed; its mean depends on the hidden state",
            )
        )
    )

    if session.tuning is not None:
        _add_tuning(nwb, session.tuning)

    # intervals --------------------------------------------------------------------------
    for row in session.epochs.itertuples():
        nwb.add_epoch(
            start_time=float(row.start_time), stop_time=float(row.stop_time), tags=list(row.tags)
        )
    ep = nwb.create_time_intervals(
        name="community_episodes", description="ground truth: episodes of fixed ROI communities"
    )
    for k, row in enumerate(session.episodes.itertuples()):
        ep.add_interval(
            start_time=float(row.start_time), stop_time=float(row.stop_time), tags=[f"episode{k}"]
        )
    ts = nwb.create_time_intervals(
        name="true_states",
        description="ground truth: runs of the hidden state of the spiking network",
    )
    ts.add_column(name="state", description="hidden state index")
    bs = float(p["bin_size"])
    for a, b, s in _state_runs(session.states.values):
        ts.add_interval(start_time=a * bs, stop_time=b * bs, state=s)
    return nwb


def _add_tuning(nwb, tuning) -> None:
    """The Benucci-layout tuning curves as one long DynamicTable in ``processing/stimulus``."""
    from hdmf.common import DynamicTable, VectorData

    da = tuning.transpose("session", "neuron", "stimulus", "ensemble")
    idx = np.indices(da.shape).reshape(4, -1)
    cols = {
        "session": (idx[0], "recording session index"),
        "adaptor_probability": (
            da["adaptor_probability"].values[idx[0]],
            "probability of the adapter orientation in the biased ensemble",
        ),
        "neuron": (da["neuron"].values[idx[1]], "preferred orientation of the neuron (deg)"),
        "stimulus": (da["stimulus"].values[idx[2]], "stimulus orientation, adapter at 0 (deg)"),
        "ensemble": (
            np.asarray([str(e) for e in da["ensemble"].values])[idx[3]],
            "stimulus ensemble: uniform or biased (adapting)",
        ),
        "response": (da.values.reshape(-1), "mean response to the stimulus"),
    }
    table = DynamicTable(
        name="tuning",
        description="population tuning curves before (uniform) and after (biased) adaptation",
        columns=[VectorData(name=k, description=d, data=v) for k, (v, d) in cols.items()],
    )
    mod = nwb.create_processing_module(name="stimulus", description="stimulus tuning data")
    mod.add(table)


def write_session_nwb(session, path: str | os.PathLike) -> Path:
    """Write a synthetic session to ``path`` as NWB 2.x, atomically.

    The file is written to a temporary name in the target folder and renamed over ``path`` only
    when complete, so an interrupted write leaves no partial file (and an existing file at
    ``path`` is replaced only on success).

    Parameters
    ----------
    session : neuroana.datasets.SyntheticSession
        From :func:`neuroana.datasets.make_session`.
    path : str or os.PathLike
        Output ``.nwb`` file; its folder must exist.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        If ``session`` is not a SyntheticSession or the folder of ``path`` does not exist.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from neuroana.datasets import make_session
    >>> from neuroana.io import read_spike_times, write_session_nwb
    >>> s = make_session(random_state=1, duration=5.0, n_units=3, n_rois=4)
    >>> f = write_session_nwb(s, pathlib.Path(tempfile.mkdtemp()) / "s.nwb")
    >>> sum(t.size for t in read_spike_times(f).values()) == s.n_spikes
    True
    """
    from pynwb import NWBHDF5IO

    from neuroana.datasets.session import SyntheticSession
    from neuroana.io.atomic import atomic_path

    if not isinstance(session, SyntheticSession):
        raise ValueError(
            f"session is a {type(session).__name__}; expected a SyntheticSession from make_session"
        )
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"cannot write {path}: folder {folder} does not exist")
    nwb = _build_nwbfile(session)
    with atomic_path(path, suffix=".tmp.nwb") as tmp, NWBHDF5IO(tmp, mode="w") as io:
        io.write(nwb)
    return path
