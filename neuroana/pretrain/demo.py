"""``neuroana demo`` section of the pretraining analysis: the registry's estimator,
:class:`~neuroana.pretrain.SpikeRateModel`, pretrained on units of the demo's NWB session (read
with :func:`neuroana.pretrain.pipeline.read_inputs`, scored with its ``results``); the session plants
the directed edge unit 0 -> unit 1."""

from __future__ import annotations

#: units read from the session: the planted edge 0 -> 1 and two other units
UNITS = [0, 1, 2, 3]
#: the end of the wake epoch kept out of the fit (scored and read out)
HELD_OUT = 0.3


def demo_section(ctx) -> dict:
    """Pretrain on the wake epoch; score held-out bits per spike and the planted edge's direction.

    The section contract is in :mod:`neuroana.analysis` (``ctx.nwb_path`` is read, the planted
    couplings of ``ctx.session`` are only checked to exist). Rows: held-out bits per spike of the
    model over each unit's mean rate (must be > 0); the held-out coupling read-out
    (:func:`~neuroana.pretrain.model_connectivity`) of 0 -> 1 minus 1 -> 0 (must be > 0) and the
    p-value of 0 -> 1 from the Wald test of its coupling kernel (must be <= 0.05).
    """
    from neuroana.backend.threads import limit_threads
    from neuroana.demo import score
    from neuroana.pretrain import SpikeRateModel
    from neuroana.pretrain.pipeline import read_inputs, results

    w = ctx.session.couplings.values
    if not (w[:, 1, 0] > 0).all() or (w[:, 0, 1] != 0).any():
        raise ValueError("the demo session has no planted edge 0 -> 1 (make_session edge_weight)")
    data = {"interval": ("epochs", "wake"), "units": UNITS, "held_out": HELD_OUT}
    inputs = read_inputs([ctx.nwb_path], data)
    model = SpikeRateModel(
        max_epochs=2 if ctx.quick else 6, n_threads=1, device="cpu", random_state=0
    )
    with limit_threads(1):
        ds, info = results(model.fit(**inputs), inputs)
    bits = info["scores"]["held_out_bits_per_spike"]
    s, p = ds["connectivity_score"], ds["connectivity_p_value"]
    edge = float(s.sel(target=1, source=0) - s.sel(target=0, source=1))
    p01 = float(p.sel(target=1, source=0))
    return {
        "held-out bits/spike over per-unit rate": score(bits, 0.0, ok=bits > 0),
        "read-out 0->1 minus 1->0 (planted 0->1)": score(edge, None, ok=edge > 0),
        "p-value of 0->1 (Wald test of its kernel)": score(p01, 0.05, ok=p01 <= 0.05),
    }
