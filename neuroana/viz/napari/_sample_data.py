"""napari sample data: a small synthetic FISBe volume (and, from the lead, a recording session)."""

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
