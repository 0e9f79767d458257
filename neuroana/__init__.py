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
"""

__version__ = "0.1.0"
