"""Small NWB files written with pynwb for the reader tests (ground truth known by construction)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import numpy as np


def _nwbfile():
    from pynwb import NWBFile

    return NWBFile(
        session_description="synthetic test session",
        identifier="synthetic-1",
        session_start_time=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


def _write(nwbfile, path):
    from pynwb import NWBHDF5IO

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with NWBHDF5IO(str(path), "w") as io:
            io.write(nwbfile)
    return path


def write_units(path, spike_trains, epochs=()):
    """Units with the given trains (written as given: unsorted or NaN kept) and epochs."""
    nwbfile = _nwbfile()
    for times in spike_trains:
        nwbfile.add_unit(spike_times=np.asarray(times, dtype=np.float64))
    for start, stop, tags in epochs:
        nwbfile.add_epoch(start_time=float(start), stop_time=float(stop), tags=list(tags))
    return _write(nwbfile, path)


def write_ophys(path, **kwargs):
    """One RoiResponseSeries (time, roi) stored as given (``roi_first`` stores it transposed).

    ``masks``: ``("pixel", [[(x, y, w), ...], ...])`` or ``("image", array (roi, ...))``.
    ``frame_dimension``: ``[width, height]`` of an external-file TwoPhotonSeries on the plane.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pynwb warns about ROI-first data, which we want here
        return _write_ophys(path, **kwargs)


def _write_ophys(
    path, *, traces, roi_first=False, rate=None, timestamps=None, masks=None, frame_dimension=None
):
    from pynwb.ophys import (
        Fluorescence,
        ImageSegmentation,
        OpticalChannel,
        RoiResponseSeries,
        TwoPhotonSeries,
    )

    nwbfile = _nwbfile()
    device = nwbfile.create_device(name="Microscope")
    channel = OpticalChannel(name="OpticalChannel", description="green", emission_lambda=520.0)
    plane = nwbfile.create_imaging_plane(
        name="ImagingPlane",
        optical_channel=channel,
        imaging_rate=10.0,
        description="plane",
        device=device,
        excitation_lambda=920.0,
        indicator="GCaMP",
        location="V1",
    )
    if frame_dimension is not None:
        nwbfile.add_acquisition(
            TwoPhotonSeries(
                name="TwoPhotonSeries",
                imaging_plane=plane,
                external_file=["frames.tif"],
                format="external",
                starting_frame=[0],
                dimension=list(frame_dimension),
                rate=10.0,
                num_samples=len(traces),
            )
        )
    module = nwbfile.create_processing_module(name="ophys", description="processed")
    segmentation = ImageSegmentation()
    module.add(segmentation)
    ps = segmentation.create_plane_segmentation(
        name="PlaneSegmentation", description="rois", imaging_plane=plane
    )
    traces = np.asarray(traces)
    n_rois = traces.shape[1]
    kind, content = masks if masks is not None else ("image", np.ones((n_rois, 3, 4)))
    for i in range(n_rois):
        if kind == "pixel":
            ps.add_roi(pixel_mask=[tuple(p) for p in content[i]])
        else:
            ps.add_roi(image_mask=content[i])
    region = ps.create_roi_table_region(region=list(range(n_rois)), description="all")
    kwargs = {"timestamps": timestamps} if timestamps is not None else {"rate": rate}
    series = RoiResponseSeries(
        name="RoiResponseSeries",
        data=traces,
        rois=region,
        unit="lumens",
        **kwargs,
    )
    module.add(Fluorescence(roi_response_series=series))
    _write(nwbfile, path)
    if roi_first:  # pynwb refuses to write it, suite2p-made files have it: store (roi, time)
        import h5py

        with h5py.File(path, "a") as f:
            g = f["processing/ophys/Fluorescence/RoiResponseSeries"]
            attrs = dict(g["data"].attrs)
            del g["data"]
            g["data"] = traces.T
            g["data"].attrs.update(attrs)
    return path
