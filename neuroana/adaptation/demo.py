"""``neuroana demo`` section: the gain-control model fitted to the tuning table of the demo's NWB
session (read with :func:`neuroana.adaptation.pipeline.read_inputs`), against the parameters that
generated it."""

from __future__ import annotations


def demo_section(ctx) -> dict:
    """Recover tuning width, recurrence and trade-off from the session's tuning data.

    Parameters
    ----------
    ctx : neuroana.demo.DemoContext
        ``ctx.nwb_path`` (read), ``ctx.session.tuning_truth``, ``ctx.quick``.

    Returns
    -------
    dict
        Rows ``check -> neuroana.demo.score(...)``: tuning width (within 3 deg), recurrence
        (within 0.1), the trade-off alpha (reported: weakly identified by normalised curves) and
        the R^2 of the adapted curves (> 0.9).
    """
    from neuroana.adaptation import GainAdaptationModel
    from neuroana.adaptation.pipeline import read_inputs
    from neuroana.demo import score

    data = read_inputs([ctx.nwb_path], {})["data"]
    true = ctx.session.tuning_truth
    m = GainAdaptationModel(max_iter=4 if ctx.quick else 15, random_state=0).fit(data)
    r2 = float(m.score(data))
    _figures(ctx)
    return {
        "tuning width (deg)": score(m.tuning_width_, true["tuning_width"], tol=3.0),
        "recurrence strength": score(m.recurrence_, true["recurrence"], tol=0.1),
        "trade-off alpha": score(m.alpha_, true["alpha"]),
        "R^2 of adapted tuning": score(r2, 1.0, ok=r2 > 0.9),
    }


def _figures(ctx) -> None:
    import matplotlib.pyplot as plt

    from neuroana.adaptation import RecurrentGainNetwork
    from neuroana.adaptation.simulate import simulate_adaptation
    from neuroana.viz.adaptation import plot_shift_vs_distance, plot_tuning_before_after

    ds = simulate_adaptation(RecurrentGainNetwork(), adapter=0.0, adaptor_probability=0.5)
    for name, plot in (("tuning", plot_tuning_before_after), ("shift", plot_shift_vs_distance)):
        fig, _ = plot(ds)
        ctx.save_figure("adaptation", fig, f"adaptation_{name}", f"adaptation to 0 deg: {name}")
        plt.close(fig)
