"""Gain-control adaptation in recurrent circuits (Duong, Bredenberg, Heeger & Simoncelli 2023).

Only single-neuron gains adapt; the recurrent weights stay fixed. The gains that optimise an
adaptive efficient-coding objective are propagated through the recurrent network and reshape the
population's tuning (response reductions near the adapter, repulsion, decorrelation).
"""

from neuroana.adaptation.errors import AdaptationInputError, UnstableNetworkError
from neuroana.adaptation.gains import GainSolution, optimal_gains
from neuroana.adaptation.model import GainAdaptationModel
from neuroana.adaptation.network import RecurrentGainNetwork
from neuroana.adaptation.objectives import EfficientCoding, Homeostatic
from neuroana.adaptation.priors import biased_prior, uniform_prior

__all__ = [
    "AdaptationInputError",
    "EfficientCoding",
    "GainAdaptationModel",
    "GainSolution",
    "Homeostatic",
    "RecurrentGainNetwork",
    "UnstableNetworkError",
    "biased_prior",
    "optimal_gains",
    "uniform_prior",
]
