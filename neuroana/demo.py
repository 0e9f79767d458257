"""``neuroana demo``: a synthetic session with known ground truth, end to end.

The demo builds one :func:`~neuroana.datasets.make_session` session (units with state switches,
couplings and a planted edge; ROI traces with planted communities and a ``neuron_label`` column;
behaviour; epochs; stimulus tuning data), writes it as ONE NWB file, reads it back through the
public readers of :mod:`neuroana.io` (the round-trip and preprocessing sections), then runs the
demo section of every registered analysis (:mod:`neuroana.analysis`) and prints a table of
recovered-vs-true scores. The NWB-based analyses read their input from that file through their
pipeline's ``read_inputs``; the ground truth comes from the generator. The demo names no analysis.

Adding an analysis
------------------
Register it (:func:`neuroana.analysis.register`); its ``demo`` function takes the
:class:`DemoContext` and returns ``{check name: score(...)}`` rows built with :func:`score`
(``value`` recovered, ``expected`` true/target, ``ok``): it reads ``ctx.nwb_path`` and compares with
``ctx.session`` (the ground truth); ``ctx.quick`` asks for the smallest settings.
Nothing is caught: an exception in a section fails the demo, and so does any score with
``ok=False`` (after the table and ``results.json`` are written, so the failure can be read).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from neuroana.datasets import SyntheticSession, make_session
from neuroana.viz.report import write_report

BEHAVIOR_SERIES = ("position", "head_direction", "speed")


class DemoCheckError(RuntimeError):
    """Raised when a demo section reports a score with ``ok=False``."""


@dataclass(frozen=True)
class LoadedSession:
    """What the public readers returned for the demo's NWB file."""

    spike_times: dict
    spike_counts: xr.DataArray
    traces: xr.DataArray
    masks: xr.DataArray
    behavior: dict
    epochs: pd.DataFrame
    intervals: dict
    tree: object


@dataclass
class DemoContext:
    """Everything a section sees: the ground truth, the file, what was read back, the settings."""

    out_dir: Path
    quick: bool
    session: SyntheticSession
    nwb_path: Path
    loaded: LoadedSession
    results: dict = field(default_factory=dict)
    #: section name -> list of (PNG path relative to out_dir, caption), shown in the HTML report
    figures: dict = field(default_factory=dict)

    def save_figure(self, section: str, fig, name: str, caption: str) -> None:
        """Save a matplotlib figure as ``figures/<name>.png`` and list it in the report."""
        rel = Path("figures") / f"{name}.png"
        (self.out_dir / rel.parent).mkdir(parents=True, exist_ok=True)
        fig.savefig(self.out_dir / rel, dpi=90)
        self.figures.setdefault(section, []).append((rel.as_posix(), caption))


def score(value, expected=None, *, ok: bool | None = None, tol: float | None = None) -> dict:
    """One row of the demo table: a recovered ``value`` against the ``expected`` (true) one.

    With ``tol`` given, ``ok`` is ``|value - expected| <= tol``.

    Examples
    --------
    >>> from neuroana.demo import score
    >>> score(0.0, 0.0, tol=0.0)
    {'value': 0.0, 'expected': 0.0, 'ok': True}
    """
    value = float(value)
    expected = None if expected is None else float(expected)
    if tol is not None:
        if expected is None:
            raise ValueError("score(tol=...) needs an expected value")
        ok = bool(abs(value - expected) <= tol)
    return {"value": value, "expected": expected, "ok": ok}


def session_settings(quick: bool) -> dict:
    """Keyword arguments of :func:`make_session` used by the demo (quick: smallest sizes)."""
    if quick:
        return dict(random_state=0, duration=60.0, n_units=8, n_rois=20, n_tuning_sessions=4)
    return dict(
        random_state=0,
        duration=120.0,
        n_units=20,
        n_rois=30,
        image_shape=(64, 96),
        n_tuning_sessions=11,
    )


def load_session(path: Path) -> LoadedSession:
    """Read the demo file back through the public readers only."""
    from neuroana import io

    spike_times = io.read_spike_times(path)
    return LoadedSession(
        spike_times=spike_times,
        spike_counts=io.read_spike_counts(path, 0.01, start=0.0),
        traces=io.read_roi_traces(path),
        masks=io.read_roi_masks(path),
        behavior={name: io.read_behavior(path, name) for name in BEHAVIOR_SERIES},
        epochs=io.read_intervals(path, "epochs"),
        intervals={n: io.read_intervals(path, n) for n in ("community_episodes", "true_states")},
        tree=io.open_nwb(path),
    )


def _max_abs(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return math.inf
    return float(np.max(np.abs(a - b), initial=0.0))


def _n_differ(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return math.inf if a.shape != b.shape else float(np.sum(a != b))


def round_trip_section(ctx: DemoContext) -> dict:
    """Everything written to NWB reads back equal to the ground truth."""
    from neuroana import io
    from neuroana.preprocess import bin_spike_times

    s, ld, path = ctx.session, ctx.loaded, ctx.nwb_path
    bs = s.params["bin_size"]
    out = {}
    same_ids = list(ld.spike_times) == list(s.spike_times)
    out["unit ids equal"] = score(same_ids, True, tol=0)
    err = max(
        (_max_abs(ld.spike_times.get(u, []), t) for u, t in s.spike_times.items()), default=0.0
    )
    out["spike times max |error| (s)"] = score(err, 0.0, tol=0.0)
    counts = io.read_spike_counts(path, bs, start=0.0, stop=s.duration)
    out["binned counts: bins differing"] = score(
        _n_differ(counts.values, s.spike_counts.values), 0, tol=0
    )
    local = bin_spike_times(ld.spike_times, bs, start=0.0, stop=s.duration)
    out["preprocess.bin_spike_times == reader"] = score(
        _max_abs(local.values, counts.values), 0.0, tol=0.0
    )
    wake = s.epochs[[("wake" in t) for t in s.epochs["tags"]]].iloc[0]
    wc = io.read_spike_counts(path, bs, interval=("epochs", "wake"))
    in_wake = (s.spike_counts.time >= wake.start_time) & (s.spike_counts.time < wake.stop_time)
    out["wake-epoch counts max |error|"] = score(
        _max_abs(wc.values, s.spike_counts.values[in_wake.values]), 0.0, tol=0.0
    )
    traces = ld.traces.transpose("time", "roi")
    out["ROI traces max |error|"] = score(_max_abs(traces.values, s.fluorescence.values), 0, tol=0)
    out["ROI trace times max |error| (s)"] = score(
        _max_abs(traces.time.values, s.fluorescence.time.values), 0.0, tol=1e-9
    )
    out["ROI masks max |error|"] = score(
        _max_abs(ld.masks.transpose("roi", "y", "x").values, s.roi_masks.values), 0.0, tol=0.0
    )
    for name in BEHAVIOR_SERIES:
        got, true = ld.behavior[name], s.behavior[name]
        out[f"behaviour {name} max |error|"] = score(_max_abs(got.values, true.values), 0, tol=0)
        out[f"behaviour {name} times max |error| (s)"] = score(
            _max_abs(got.time.values, true.time.values), 0.0, tol=1e-9
        )
    ep_ok = (
        len(ld.epochs) == len(s.epochs)
        and _max_abs(ld.epochs.start_time, s.epochs.start_time) == 0
        and _max_abs(ld.epochs.stop_time, s.epochs.stop_time) == 0
        and [list(t) for t in ld.epochs.tags] == [list(t) for t in s.epochs.tags]
    )
    out["epochs (times, tags) equal"] = score(ep_ok, True, tol=0)
    runs = ld.intervals["true_states"]
    states = np.full(s.states.size, -1)
    for row in runs.itertuples():
        states[int(round(row.start_time / bs)) : int(round(row.stop_time / bs))] = row.state
    out["true states from intervals: bins differing"] = score(
        _n_differ(states, s.states.values), 0, tol=0
    )
    seg = next(
        node for node in ld.tree.subtree if "image_mask" in node.ds and "true_f0" in node.ds
    ).ds
    labels = np.stack([seg[f"true_community_ep{e}"].values for e in range(s.communities.shape[0])])
    out["community labels in ROI table: differing"] = score(
        _n_differ(labels, s.communities.values), 0, tol=0
    )
    units = ld.tree["units"].ds
    pref = s.log_rates.argmax("state").values
    out["preferred state in units table: differing"] = score(
        _n_differ(units["true_preferred_state"].values, pref), 0, tol=0
    )
    return out


def preprocess_section(ctx: DemoContext) -> dict:
    """Preprocessing recovers planted quantities: dF/F vs true calcium, speed per hidden state."""
    from neuroana.preprocess import dff, smooth, zscore

    s, ld = ctx.session, ctx.loaded
    d = dff(ld.traces, baseline="percentile", percentile=20.0, window=10.0)
    r = xr.corr(d, s.calcium, dim="time")
    out = {
        "dF/F vs true calcium: mean Pearson r": score(float(r.mean()), 1.0, ok=bool(r.mean() > 0.9))
    }
    z = zscore(smooth(ld.spike_counts.astype(float), 0.05))
    out["zscored rates: max |mean|"] = score(float(abs(z.mean("time")).max()), 0.0, tol=1e-9)
    speed = ld.behavior["speed"].isel(feature=0)
    runs = ld.intervals["true_states"]
    wake = ld.epochs[[("wake" in t) for t in ld.epochs["tags"]]].iloc[0]
    state_at = np.full(speed.size, -1)
    for row in runs.itertuples():
        sel = (speed.time.values >= row.start_time) & (speed.time.values < row.stop_time)
        state_at[sel] = row.state
    awake = speed.time.values < wake.stop_time
    means = []
    for k in range(s.speed_by_state.size):
        sel = awake & (state_at == k)
        means.append(float(speed.values[sel].mean()) if sel.any() else math.nan)
    order_ok = bool(np.all(np.diff(np.nan_to_num(means, nan=-1)) > 0)) if len(means) > 1 else True
    rec = (
        np.corrcoef(np.nan_to_num(means), s.speed_by_state.values)[0, 1] if len(means) > 1 else 1.0
    )
    out["speed by state: corr(recovered, true)"] = score(rec, 1.0, ok=order_ok and rec > 0.9)
    return out


Section = Callable[[DemoContext], dict]

#: The demo's own sections (the file round trip and preprocessing), run before the analyses.
SECTIONS: list[tuple[str, Section]] = [
    ("round_trip", round_trip_section),
    ("preprocess", preprocess_section),
]


def sections(only: Sequence[str] | None = None) -> list[tuple[str, Section]]:
    """The sections to run: :data:`SECTIONS`, then every registered analysis's demo section.

    ``only`` keeps the named sections (an unknown name is a ``ValueError`` listing the valid ones).
    """
    from neuroana.analysis import analyses

    found = [*SECTIONS, *((a.name, a.demo_section()) for a in analyses())]
    if only is None:
        return found
    valid = [name for name, _ in found]
    bad = [n for n in only if n not in valid]
    if bad:
        raise ValueError(f"demo: unknown section(s) {bad}; valid: {valid}")
    return [(name, f) for name, f in found if name in only]


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e12:
        return str(int(v))
    return f"{v:.4g}"


def format_table(sections: dict) -> str:
    """The recovered-vs-true table as text."""
    rows = [("section", "score", "recovered", "true", "ok")]
    for sec, scores in sections.items():
        for name, sc in scores.items():
            ok = {True: "OK", False: "FAIL", None: "-"}[sc["ok"]]
            rows.append((sec, name, _fmt(sc["value"]), _fmt(sc["expected"]), ok))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summarize(session: SyntheticSession, loaded: LoadedSession, path: Path) -> str:
    """A readable description of what was written and read back."""
    p = session.params
    n_units = len(loaded.spike_times)
    n_spikes = sum(t.size for t in loaded.spike_times.values())
    tr = loaded.traces
    h, w = loaded.masks.sizes["y"], loaded.masks.sizes["x"]
    beh = ", ".join(
        f"{k} ({', '.join(map(str, v.feature.values))}; {v.sizes['time']} samples)"
        for k, v in loaded.behavior.items()
    )
    eps = ", ".join(
        f"{'/'.join(r.tags)} {r.start_time:g}-{r.stop_time:g} s" for r in loaded.epochs.itertuples()
    )
    return "\n".join(
        [
            f"session   {path} ({path.stat().st_size / 1e6:.2f} MB, NWB), {session.duration:g} s",
            f"units     {n_units} units, {n_spikes} spikes "
            f"({n_spikes / n_units / session.duration:.1f} Hz mean); "
            f"{p['n_states']} hidden states",
            f"ROIs      {tr.sizes['roi']} ROIs x {tr.sizes['time']} frames at "
            f"{p['frame_rate']:g} Hz; masks {h}x{w} px; "
            f"{p['n_communities']} communities x {p['n_episodes']} episodes",
            f"behaviour {beh}",
            f"epochs    {eps}",
        ]
    )


def _overview_figure(ctx: DemoContext) -> None:
    from neuroana.viz.session import plot_session_overview

    ld = ctx.loaded
    fig = plot_session_overview(
        ld.spike_times,
        ld.traces,
        ld.masks,
        ld.behavior["speed"],
        ctx.session.states,
        max_time=min(60.0, ctx.session.duration),
    )
    ctx.save_figure(
        "session", fig, "session_overview", "the synthetic session as read back from NWB"
    )


def _write_json(obj, path: Path) -> Path:
    from neuroana.io.results import write_json_atomic

    return write_json_atomic(obj, path)


def run_demo(out_dir: Path, quick: bool = False, only: Sequence[str] | None = None) -> dict:
    """Write the synthetic session as NWB, read it back, run every section, report the scores.

    Parameters
    ----------
    out_dir : pathlib.Path
        Output folder (created if missing): ``session.nwb`` and ``results.json`` go there.
    quick : bool
        Smallest sizes (for tests and CI).
    only : sequence of str, optional
        Run only these sections (names as in :func:`sections`).

    Returns
    -------
    dict
        ``{"out_dir", "nwb_file", "quick", "settings", "summary", "sections": {name: {score: {value,
        expected, ok}}}, "seconds": {name: s}}``, also written to ``out_dir/results.json``.

    Raises
    ------
    DemoCheckError
        If any section reports a score with ``ok=False`` (after writing ``results.json``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from neuroana.demo import run_demo
    >>> res = run_demo(pathlib.Path(tempfile.mkdtemp()), quick=True, only=["round_trip"])
    ... # doctest: +ELLIPSIS
    neuroana demo...
    >>> res["sections"]["round_trip"]["spike times max |error| (s)"]["ok"]
    True
    """
    from neuroana.io import write_session_nwb

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    todo = sections(only)  # unknown names fail before any work
    settings = session_settings(quick)
    session = make_session(**settings)
    nwb_path = write_session_nwb(session, out_dir / "session.nwb")
    loaded = load_session(nwb_path)
    seconds = {"generate+write+read": time.perf_counter() - t0}
    print(f"neuroana demo{' (quick)' if quick else ''}: synthetic session with known ground truth")
    summary = summarize(session, loaded, nwb_path)
    print(summary)
    ctx = DemoContext(out_dir, quick, session, nwb_path, loaded)
    _overview_figure(ctx)
    for name, func in todo:
        t = time.perf_counter()
        ctx.results[name] = func(ctx)
        seconds[name] = time.perf_counter() - t
    print()
    print(format_table(ctx.results))
    failed = [
        f"{sec}: {k}" for sec, sc in ctx.results.items() for k, v in sc.items() if v["ok"] is False
    ]
    result = {
        "out_dir": str(out_dir),
        "nwb_file": str(nwb_path),
        "quick": quick,
        "settings": settings,
        "summary": summary,
        "sections": ctx.results,
        "seconds": seconds,
        "failed": failed,
    }
    json_path = _write_json(result, out_dir / "results.json")
    report = write_report(
        out_dir,
        "neuroana demo",
        ctx.results,
        ctx.figures,
        notes=[summary, f"results: {json_path.name}; data: {nwb_path.name}"],
    )
    result["report"] = str(report)
    print(
        f"\nround-trip and recovery checks: {'OK' if not failed else 'FAILED'}; results in {json_path}"
        f"; report {report}"
    )
    if failed:
        raise DemoCheckError("demo checks failed: " + "; ".join(failed))
    return result
