"""Gain-control adaptation in recurrent circuits (Duong, Bredenberg, Heeger & Simoncelli 2023).

Only single-neuron gains adapt; the recurrent weights stay fixed. The gains that optimise an
adaptive efficient-coding objective are propagated through the recurrent network and reshape the
population's tuning (response reductions near the adapter, repulsion, decorrelation).

Names are imported lazily (PEP 562): ``import neuroana.adaptation`` loads no torch until a name is used.
"""

from __future__ import annotations

from neuroana._lazy import attach

_LAZY = {
    "AdaptationInputError": "neuroana.adaptation.errors",
    "UnstableNetworkError": "neuroana.adaptation.errors",
    "GainAdaptationModel": "neuroana.adaptation.estimator",
    "leave_one_session_out": "neuroana.adaptation.estimator",
    "GainSolution": "neuroana.adaptation.gains",
    "optimal_gains": "neuroana.adaptation.gains",
    "RecurrentGainNetwork": "neuroana.adaptation.network",
    "EfficientCoding": "neuroana.adaptation.objectives",
    "Homeostatic": "neuroana.adaptation.objectives",
    "biased_prior": "neuroana.adaptation.priors",
    "uniform_prior": "neuroana.adaptation.priors",
    "simulate_adaptation": "neuroana.adaptation.simulate",
    "r2_scores": "neuroana.adaptation.tuning",
}
__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
