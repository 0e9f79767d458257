"""U-Net, targets, loss and sliding-window inference of the learnt FISBe baseline."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuroana.segmentation.unet import (
    UNet3D,
    baseline_loss,
    make_targets,
    sliding_window_predict,
)


def test_sliding_window_equals_full_pass_for_pointwise_model():
    # a 1x1x1 conv is exactly translation-equivariant: any blending of windows must equal it
    torch.manual_seed(0)
    net = torch.nn.Conv3d(3, 5, 1)
    x = torch.randn(3, 13, 17, 11)
    full = net(x[None])[0].detach().numpy()
    for window, overlap in [((5, 6, 4), 0.5), ((4, 7, 11), 0.25), ((13, 3, 2), 0.0)]:
        got = sliding_window_predict(net, x, window, overlap)
        np.testing.assert_allclose(got, full, rtol=1e-5, atol=1e-5)


def test_sliding_window_covering_volume_equals_one_unet_pass():
    torch.manual_seed(1)
    net = UNet3D(n_fmaps=4, depth=3).eval()
    x = torch.randn(3, 9, 14, 11)
    with torch.no_grad():
        full = net(x[None])[0].numpy()
    got = sliding_window_predict(net, x, (32, 32, 32), overlap=0.5)
    np.testing.assert_allclose(got, full, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size", [(5, 7, 9), (9, 10, 3), (1, 1, 1)])
def test_unet_odd_sizes_equal_explicit_zero_padding(size):
    torch.manual_seed(2)
    net = UNet3D(n_fmaps=3, depth=3).eval()
    x = torch.randn(1, 3, *size)
    pad = [(-s) % 4 for s in size]
    xp = F.pad(x, [p for q in pad[::-1] for p in (0, q)])
    with torch.no_grad():
        y = net(x)
        yp = net(xp)[(...,) + tuple(slice(0, s) for s in size)]
    assert y.shape == (1, net.out_channels) + size
    torch.testing.assert_close(y, yp)


def test_make_targets_brute_force():
    rng = np.random.default_rng(0)
    gt = (rng.random((3, 4, 5, 6)) < 0.4).astype(np.uint8) * np.arange(1, 4)[:, None, None, None]
    offsets = [(1, 0, 0), (0, -2, 1), (0, 0, 3)]
    t = make_targets(gt, offsets)
    shape = gt.shape[1:]
    for k, o in enumerate(offsets):
        for p in np.ndindex(shape):
            q = tuple(a + b for a, b in zip(p, o, strict=True))
            inside = all(0 <= c < s for c, s in zip(q, shape, strict=True))
            assert t.aff_mask[k][p] == inside
            want = inside and any(gt[i][p] and gt[i][q] for i in range(3))
            assert t.affinities[k][p] == want
    np.testing.assert_array_equal(t.numinst, np.minimum((gt > 0).sum(0), 2))


def test_loss_decreases_on_tiny_crop():
    from neuroana.datasets.fisbe_synth import make_fisbe_volume
    from neuroana.segmentation.clustering import normalise_raw

    ds = make_fisbe_volume((12, 24, 24), n_neurons=2, n_fasciculating=1, random_state=3)
    t = make_targets(ds.gt.values)
    x = torch.from_numpy(normalise_raw(ds.raw.values))[None]
    tg = [torch.from_numpy(a)[None] for a in t]
    torch.manual_seed(0)
    net = UNet3D(n_fmaps=4, depth=2)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss, _ = baseline_loss(net(x), *tg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
