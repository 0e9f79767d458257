# %% [markdown]
# # Gain-control adaptation in a recurrent circuit
#
# Only single-neuron gains adapt; the recurrent weights stay fixed (Duong, Bredenberg, Heeger &
# Simoncelli 2023, reconstructed from the abstract: see the docstrings of
# `neuroana.adaptation.objectives.EfficientCoding`). We adapt the default network from a uniform to a
# biased orientation ensemble and look at the paper's qualitative effects.

# %%
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from neuroana.adaptation import GainAdaptationModel, RecurrentGainNetwork, simulate_adaptation
from neuroana.datasets.adaptation_sim import make_benucci_like
from neuroana.viz.adaptation import (
    plot_correlation_matrices,
    plot_gains,
    plot_shift_vs_distance,
    plot_tuning_before_after,
)

net = RecurrentGainNetwork()  # 36 neurons, excitatory ring recurrence 0.6
ds = simulate_adaptation(net, adapter=0.0, adaptor_probability=0.5)
print(net)

# %% [markdown]
# Reduced maxima and minima near the adapter, and optimal gains:

# %%
plot_tuning_before_after(ds)
plot_gains(ds)
print("max ratio at adapter:", float(ds.max_ratio.sel(neuron=0.0)))
print("min ratio at adapter:", float(ds.min_ratio.sel(neuron=0.0)))

# %% [markdown]
# Repulsion of preferred orientations (excitatory recurrence; inhibitory recurrence attracts):

# %%
plot_shift_vs_distance(ds)
ds_inh = simulate_adaptation(RecurrentGainNetwork(recurrence=-0.6))
plot_shift_vs_distance(ds_inh)

# %% [markdown]
# Decorrelation of adapter-tuned neurons and homeostasis of mean activity:

# %%
plot_correlation_matrices(ds)
print(ds.adapter_correlation.to_series())
print(ds.homeostasis_cv.to_series())

# %% [markdown]
# Fit to synthetic data in the Benucci, Saleem & Carandini 2013 layout (the real file is not
# public: `neuroana.io.benucci.read_benucci(path)` reads it once obtained from the authors).

# %%
data, truth = make_benucci_like(random_state=0, noise=0.01, n_sessions=6)
model = GainAdaptationModel(max_iter=10).fit(data)
print({k: truth[k] for k in ("tuning_width", "recurrence", "alpha")})
print(model.tuning_width_, model.recurrence_, model.alpha_, model.score(data))
plt.close("all")
