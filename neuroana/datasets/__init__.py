"""Synthetic generators with known ground truth for every analysis, and the sample NWB session.

Names are imported lazily (PEP 562): importing one generator does not import the others.
"""

from neuroana._lazy import attach

_LAZY = {
    "SyntheticSession": "neuroana.datasets.session",
    "make_session": "neuroana.datasets.session",
    "make_benucci_like": "neuroana.datasets.adaptation_sim",
    "make_connectome_tensor": "neuroana.datasets.connectome_sim",
    "make_connectome_traces": "neuroana.datasets.connectome_sim",
    "make_fisbe_volume": "neuroana.datasets.fisbe_synth",
    "simulate_hmmglm": "neuroana.datasets.hmmglm_sim",
    "simulate_chain": "neuroana.datasets.spiking_sim",
    "simulate_glm_network": "neuroana.datasets.spiking_sim",
    "simulate_realistic_network": "neuroana.datasets.spiking_sim",
    "simulate_spikes": "neuroana.datasets.spiking_sim",
    "simulate_stimulus_population": "neuroana.datasets.spiking_sim",
}
__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
