"""2-process DDP (gloo, CPU) gives the same loss trajectory as 1 process with the same global batch."""

import numpy as np
import torch

from neuroana.datasets.spiking_sim import simulate_chain
from neuroana.pretrain import SpikeFormer
from neuroana.pretrain.distributed import spawn_gloo

KW = dict(
    max_iter=3,
    steps_per_iter=3,
    batch_size=16,
    random_state=0,
    dropout=0.0,
    warmup=2,
    lr=3e-3,
    window_past=0.05,
    max_tokens_past=32,
    max_tokens_cur=32,
    device="cpu",
)


def _fit():
    sim = simulate_chain(duration=30.0, random_state=0)
    return SpikeFormer(**KW).fit(sim.spike_times)


def _worker(rank, out):
    m = _fit()
    if rank == 0:
        np.save(out, np.c_[m.history_["nll"].values, m.history_["val_loss"].values])
        torch.save(m.model_.state_dict(), str(out) + ".pt")


def test_two_process_ddp_equals_one_process(tmp_path):
    torch.set_num_threads(1)
    ref = _fit()
    out = tmp_path / "hist.npy"
    spawn_gloo(_worker, 2, out)
    hist = np.load(out)
    expect = np.c_[ref.history_["nll"].values, ref.history_["val_loss"].values]
    np.testing.assert_allclose(hist, expect, rtol=1e-4, atol=1e-5)
    sd = torch.load(str(out) + ".pt")
    for k, v in ref.model_.state_dict().items():
        torch.testing.assert_close(sd[k], v, rtol=1e-3, atol=1e-4)  # Adam on ~0 grads
