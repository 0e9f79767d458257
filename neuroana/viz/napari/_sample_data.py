"""napari sample data: a synthetic recording session (as an NWB file) and a synthetic FISBe volume."""

from __future__ import annotations


def sample_fisbe() -> list[tuple]:
    """A small FISBe-like volume (48 x 96 x 96 voxels, 0.44 um): raw as three additive colour
    layers and one Labels layer per GT neuron (4 neurons, one fasciculating pair).

    Examples
    --------
    >>> layers = sample_fisbe()
    >>> [kw["name"] for _, kw, _ in layers]
    ['raw ch0', 'raw ch1', 'raw ch2', 'gt 1', 'gt 2', 'gt 3', 'gt 4']
    """
    from neuroana.datasets.fisbe_synth import make_fisbe_volume
    from neuroana.viz.napari._fisbe import dataset_layers

    ds = make_fisbe_volume((48, 96, 96), n_neurons=3, n_fasciculating=1, random_state=0)
    return dataset_layers(ds.load())


def sample_session() -> list[tuple]:
    """The demo's synthetic session, written as NWB to a temporary folder and opened with the NWB
    reader: ROI masks as Labels (the traces widget plots the selected ROI and the spikes).

    Examples
    --------
    >>> layers = sample_session()
    >>> [(kw["name"], kind) for _, kw, kind in layers]
    [('ROIs', 'labels')]
    """
    import tempfile
    from pathlib import Path

    from neuroana.datasets import make_session
    from neuroana.io import write_session_nwb
    from neuroana.viz.napari._reader import get_nwb_reader

    path = Path(tempfile.mkdtemp(prefix="neuroana-sample-")) / "session.nwb"
    write_session_nwb(make_session(random_state=0, duration=30.0), path)
    return get_nwb_reader(str(path))(str(path))
