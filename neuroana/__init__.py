"""neuroana: analyses of neural recordings, from NWB files to labelled xarray results.

Subpackages
-----------
io            NWB and FISBe readers, result writers, data manifests
preprocess    stateless functions on DataArrays (binning, smoothing, dF/F)
backend       device resolution, seeding, the shared fit loop
connectome    dynamic functional connectomes (Dyballa et al., ICLR 2024)
hmmglm        switching brain states with HMM-GLMs (Li et al., ICLR 2024)
adaptation    gain-control adaptation in recurrent circuits (Duong et al., 2023)
pretrain      Neuroformer-style generative pretraining (Antoniades et al., ICLR 2024)
segmentation  FISBe neuron instance segmentation (Mais et al., CVPR 2024)
datasets      synthetic generators with known ground truth

Subpackages are imported on first use (PEP 562): ``import neuroana`` is cheap, and
``neuroana.hmmglm`` works without an explicit ``import neuroana.hmmglm``.
"""

from neuroana._lazy import attach

__version__ = "0.1.0"

_SUBMODULES = (
    "adaptation",
    "backend",
    "connectome",
    "datasets",
    "dims",
    "errors",
    "hmmglm",
    "io",
    "preprocess",
    "pretrain",
    "segmentation",
    "viz",
)
__getattr__, __dir__, _names = attach(__name__, {}, _SUBMODULES)
__all__ = ["__version__", *_SUBMODULES]
