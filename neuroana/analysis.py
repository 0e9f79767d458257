"""The analysis contract and the registry every client iterates.

An *analysis* is one :class:`Analysis` entry: its name, where its estimator class lives, where its
pipeline module lives (how NWB or FISBe files become the estimator's ``fit`` arguments, and how a
fitted estimator becomes a results Dataset and a summary), its ground-truth simulator, its section of
``neuroana demo`` and its benchmark scripts. Everything is named by import path (``"package.module"``
or ``"package.module:attribute"``) and imported only when asked for, so ``import neuroana.analysis``
imports no analysis, no torch and no NWB library.

``neuroana run``, ``neuroana demo``, :func:`neuroana.parallel.sweep_analysis`, the napari widgets and
``benchmarks/run_all.py`` iterate :func:`analyses` and name no analysis. A new analysis is one
:func:`register` call (or one entry in :data:`_BUILTIN` for the package's own):

>>> from neuroana.analysis import Analysis, analyses, get, register
>>> [a.name for a in analyses()]
['connectome', 'hmmglm', 'adaptation', 'pretrain', 'segmentation']
>>> get("hmmglm").estimator_class().__name__
'HMMGLM'
>>> sorted(get("hmmglm").pipeline_module().DATA_KEYS)[:2]
['bin_size', 'interval']

The pipeline module
-------------------
``Analysis.pipeline`` names a module with exactly these public names:

``DATA_KEYS: dict[str, bool]``
    The keys allowed in a run configuration's ``data:`` mapping -> whether each is required.
``read_inputs(paths, data) -> dict``
    Input files (``Sequence[pathlib.Path]``) and the ``data:`` mapping -> keyword arguments for
    ``estimator.fit(**kwargs)``. Raises a ``ValueError`` subclass naming the file and option.
``results(estimator, inputs) -> (xarray.Dataset, dict)``
    The fitted estimator and the ``inputs`` it was fitted on -> a numpy-backed, NetCDF-safe
    Dataset and a JSON-able summary (``{"fitted": {...}, "scores": {...}}``).

and optionally

``check_data(data, n_inputs, resolve) -> dict``
    Validate and normalise the ``data:`` mapping beyond its keys (``resolve(p)`` turns a path
    written in the configuration into a ``pathlib.Path``; raise ``ValueError`` naming the key).
``input_files(data) -> list[pathlib.Path]``
    Further files the configuration names in ``data`` that must exist.
``run(paths, data, params, out_dir) -> (estimator or None, summary, file names)``
    Used instead of ``read_inputs``/``fit``/``results`` by analyses whose output is not one
    Dataset (one file per input, or an evaluation with no estimator); writes into ``out_dir``.
``takes_params(data) -> bool``
    ``False`` when these ``data`` options run no estimator (then ``params`` must be empty).

The demo section
----------------
``Analysis.demo`` names a function ``section(ctx) -> dict[str, dict]``: given the
:class:`neuroana.demo.DemoContext` (``ctx.nwb_path``, the one session file the demo wrote;
``ctx.out_dir``; ``ctx.quick``; ``ctx.session``, the ground truth; ``ctx.save_figure``) it returns
rows ``check name -> neuroana.demo.score(recovered, true, ok=...)``. NWB-based analyses read their
input from ``ctx.nwb_path`` with their own ``read_inputs``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

__all__ = ["Analysis", "Benchmark", "analyses", "get", "names", "register", "unregister"]


@dataclass(frozen=True)
class Benchmark:
    """One benchmark script of an analysis, as ``benchmarks/run_all.py`` runs it.

    Attributes
    ----------
    name : str
        Row label in the summary table (unique across analyses).
    script : str
        File name inside ``benchmarks/``; it must define ``parse_rows(stdout) -> list[Row]``
        (``benchmarks/_table.Row``: analysis, measure, anchor, ours, anchor value, ratio, target,
        met) reading its own printed output.
    full, quick : tuple of str
        Command-line arguments of the full and the ``--quick`` run; ``quick=None`` skips it there.
    """

    name: str
    script: str
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] | None = ()


@dataclass(frozen=True)
class Analysis:
    """One analysis: what every client needs to know about it, by import path.

    Attributes
    ----------
    name : str
        The name used in run configurations (``analysis: <name>``) and reports.
    estimator : str
        ``"module:Class"`` of the scikit-learn-style estimator.
    pipeline : str
        Module path of the pipeline (see the module documentation for its names).
    simulate : str
        ``"module:function"`` of the ground-truth simulator.
    demo : str
        ``"module:function"`` of the demo section (``section(ctx) -> rows``).
    n_inputs : int or None
        Exactly this many input files per run, or ``None`` for one or more.
    description : str
        One line for listings.
    benchmarks : tuple of Benchmark
        The analysis's benchmark scripts.
    """

    name: str
    estimator: str
    pipeline: str
    simulate: str
    demo: str
    n_inputs: int | None = None
    description: str = ""
    benchmarks: tuple[Benchmark, ...] = ()

    def estimator_class(self) -> type:
        """Import and return the estimator class."""
        return _load(self.estimator)

    def pipeline_module(self) -> ModuleType:
        """Import and return the pipeline module (``DATA_KEYS``, ``read_inputs``, ``results``)."""
        return importlib.import_module(self.pipeline)

    def simulator(self) -> Callable[..., Any]:
        """Import and return the ground-truth simulator."""
        return _load(self.simulate)

    def demo_section(self) -> Callable[..., dict]:
        """Import and return the demo section function."""
        return _load(self.demo)

    def takes_params(self, data: dict) -> bool:
        """Whether a run with these ``data`` options fits an estimator (and so accepts params)."""
        f = getattr(self.pipeline_module(), "takes_params", None)
        return True if f is None else bool(f(data))


def _load(path: str):
    module, _, attr = path.partition(":")
    if not attr:
        raise ValueError(f"import path {path!r}; expected 'package.module:attribute'")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


_B = Benchmark
_BUILTIN = (
    Analysis(
        "connectome",
        estimator="neuroana.connectome:DynamicConnectome",
        pipeline="neuroana.connectome.pipeline",
        simulate="neuroana.datasets.connectome_sim:make_connectome_traces",
        demo="neuroana.connectome.demo:demo_section",
        description="dynamic functional connectome (affinities -> NTF -> communities)",
        benchmarks=(
            _B(
                "connectome",
                "connectome.py",
                ("--threads", "1", "2", "--cases", "dense", "neurons", "speckled"),
                ("--quick",),
            ),
        ),
    ),
    Analysis(
        "hmmglm",
        estimator="neuroana.hmmglm:HMMGLM",
        pipeline="neuroana.hmmglm.pipeline",
        simulate="neuroana.datasets.hmmglm_sim:simulate_hmmglm",
        demo="neuroana.hmmglm.demo:demo_section",
        description="switching brain states: HMM-GLMs with no, Gaussian or one-hot prior",
        benchmarks=(_B("hmmglm", "hmmglm.py", ("--threads-section",), ("--seeds", "0")),),
    ),
    Analysis(
        "adaptation",
        estimator="neuroana.adaptation:GainAdaptationModel",
        pipeline="neuroana.adaptation.pipeline",
        simulate="neuroana.datasets.adaptation_sim:make_benucci_like",
        demo="neuroana.adaptation.demo:demo_section",
        n_inputs=1,
        description="gain-control adaptation in a recurrent circuit",
        benchmarks=(
            _B(
                "adaptation",
                "adaptation.py",
                ("--device", "cpu"),
                ("--device", "cpu", "--n-conditions", "64"),
            ),
        ),
    ),
    Analysis(
        "pretrain",
        estimator="neuroana.pretrain:SpikeRateModel",
        pipeline="neuroana.pretrain.pipeline",
        simulate="neuroana.datasets.spiking_sim:simulate_realistic_network",
        demo="neuroana.pretrain.demo:demo_section",
        n_inputs=1,
        description="self-supervised pretraining of a spike rate model; bits/spike, connectivity",
        benchmarks=(
            _B(
                "pretrain",
                "pretrain.py",
                ("--config", "cpu", "--sections", "case"),
                ("--config", "cpu", "--sections", "case"),
            ),
        ),
    ),
    Analysis(
        "segmentation",
        estimator="neuroana.segmentation:ColourClustering",
        pipeline="neuroana.segmentation.pipeline",
        simulate="neuroana.datasets.fisbe_synth:make_fisbe_volume",
        demo="neuroana.segmentation.demo:demo_section",
        description="FISBe 3-D neuron instance segmentation and its benchmark metrics",
        benchmarks=(
            _B("fisbe_metrics", "fisbe_metrics.py", ("--no-dense",), ("--no-dense",)),
            _B("fisbe_baselines", "fisbe_baselines.py", (), None),
        ),
    ),
)

_REGISTRY: dict[str, Analysis] = {a.name: a for a in _BUILTIN}


def register(analysis: Analysis, *, replace: bool = False) -> Analysis:
    """Add an analysis to the registry (after the built-in five, in registration order).

    Parameters
    ----------
    analysis : Analysis
        The entry; its modules are not imported here.
    replace : bool
        Allow replacing an entry of the same name.

    Returns
    -------
    Analysis
        The entry, so ``register`` can be used as an expression.

    Raises
    ------
    ValueError
        The name is taken (and ``replace`` is false) or is not an identifier-like string.
    TypeError
        ``analysis`` is not an :class:`Analysis`.

    Examples
    --------
    >>> from neuroana.analysis import Analysis, get, register, unregister
    >>> a = register(Analysis("mine", estimator="sklearn.decomposition:PCA",
    ...                       pipeline="my_pkg.pipeline", simulate="my_pkg:simulate",
    ...                       demo="my_pkg:demo_section"))
    >>> get("mine").estimator_class().__name__
    'PCA'
    >>> unregister("mine")
    """
    if not isinstance(analysis, Analysis):
        raise TypeError(f"register() takes an Analysis; got {type(analysis).__name__}")
    name = analysis.name
    if not isinstance(name, str) or not name.replace("_", "a").isalnum():
        raise ValueError(f"analysis name {name!r}; expected letters, digits and underscores")
    if name in _REGISTRY and not replace:
        raise ValueError(
            f"analysis {name!r} is already registered; pass replace=True to replace it"
        )
    bench = {b.name for a in _REGISTRY.values() if a.name != name for b in a.benchmarks}
    clash = sorted(bench & {b.name for b in analysis.benchmarks})
    if clash:
        raise ValueError(f"benchmark name(s) {clash} of {name!r} are already used")
    _REGISTRY[name] = analysis
    return analysis


def unregister(name: str) -> None:
    """Remove a registered analysis (for tests and plug-ins that were registered at run time)."""
    if name not in _REGISTRY:
        raise KeyError(f"analysis {name!r} is not registered; registered: {names()}")
    del _REGISTRY[name]


def names() -> list[str]:
    """Names of the registered analyses, in registry order."""
    return list(_REGISTRY)


def analyses() -> Iterator[Analysis]:
    """The registered analyses, in registry order (a snapshot: safe to register while iterating)."""
    return iter(list(_REGISTRY.values()))


def get(name: str) -> Analysis:
    """The registered analysis called ``name``.

    Raises
    ------
    KeyError
        No analysis has that name; the message lists the registered ones.
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown analysis {name!r}; registered: {names()}") from None
