import numpy as np
import pytest
import xarray as xr

from neuroana.preprocess import dff, sliding_windows, smooth, zscore


def _ts(values, dt=0.01, dims=("time", "roi")):
    values = np.asarray(values, dtype=float)
    coords = {"time": np.arange(values.shape[0]) * dt}
    if values.ndim == 2:
        coords[dims[1]] = np.arange(values.shape[1]) + 10
    return xr.DataArray(values, dims=dims[: values.ndim], coords=coords, attrs={"src": "x"})


# --- smooth ---------------------------------------------------------------------------------


def test_smooth_impulse_gives_gaussian_of_sigma_in_seconds():
    x = np.zeros((401, 1))
    x[200] = 1.0
    y = smooth(_ts(x, dt=0.005), sigma=0.1)  # 20 samples
    t = (np.arange(401) - 200) * 0.005
    g = np.exp(-0.5 * (t / 0.1) ** 2)
    g[np.abs(np.arange(401) - 200) > 80] = 0.0  # truncated at 4 sigma = 80 samples
    g /= g.sum()
    np.testing.assert_allclose(y.values[:, 0], g, atol=1e-6)
    assert y.attrs == {"src": "x"} and list(y.roi.values) == [10]


def test_smooth_constant_and_nan():
    x = np.full((100, 2), 3.0)
    x[40:45, 0] = np.nan
    y = smooth(_ts(x), 0.02)
    np.testing.assert_allclose(y.values, 3.0)  # NaNs ignored, constant preserved
    x2 = np.full((100, 1), np.nan)
    x2[0] = 1.0
    y2 = smooth(_ts(x2), 0.01, truncate=2.0)
    assert np.isnan(y2.values[50, 0]) and y2.values[0, 0] == pytest.approx(1.0)


def test_smooth_along_other_dim_order():
    x = _ts(np.random.default_rng(0).normal(size=(50, 3)))
    np.testing.assert_allclose(smooth(x.T, 0.03).T.values, smooth(x, 0.03).values)


def test_smooth_rejects_bad_input():
    with pytest.raises(ValueError, match="sigma"):
        smooth(_ts(np.zeros((5, 1))), -1)
    irregular = xr.DataArray(np.zeros(4), dims="time", coords={"time": [0, 1, 3, 4.0]})
    with pytest.raises(ValueError, match="regular"):
        smooth(irregular, 1.0)
    with pytest.raises(ValueError, match="'time'"):
        smooth(xr.DataArray(np.zeros(4), dims="x"), 1.0)


# --- dff --------------------------------------------------------------------------------------


def test_dff_recovers_known_exponential_transient():
    dt, n = 0.05, 2000
    t = np.arange(n) * dt
    f0 = np.array([100.0, 40.0])
    amp = np.array([2.0, 0.5])
    tau = 0.5  # decays below 1e-12 within 15 s, so every 20 s window sees >8% baseline samples
    transient = np.where(t >= 50.0, np.exp(-(t - 50.0) / tau), 0.0)
    truth = transient[:, None] * amp
    f = f0 * (1 + truth)
    for kw in ({}, {"window": 20.0}, {"baseline": "median"}):
        out = dff(_ts(f, dt=dt), **kw)
        np.testing.assert_allclose(out.values, truth, rtol=1e-9, atol=1e-11)
    assert out.name == "dff" and out.attrs["src"] == "x"


def test_dff_running_baseline_follows_drift():
    dt, n = 0.1, 3000
    t = np.arange(n) * dt
    drift = 50 + 0.1 * t  # slow drift, no transients
    out = dff(_ts(drift[:, None], dt=dt), baseline="mean", window=10.1)  # odd: 101 samples, centred
    interior = slice(100, n - 100)  # centred mean of a linear ramp is exact away from borders
    np.testing.assert_allclose(out.values[interior, 0], 0.0, atol=1e-9)


def test_dff_constant_zero_and_nan_traces():
    f = np.column_stack([np.full(50, 7.0), np.zeros(50), np.full(50, 5.0)])
    f[10, 2] = np.nan
    out = dff(_ts(f))
    np.testing.assert_array_equal(out.values[:, 0], 0.0)
    assert np.isnan(out.values[:, 1]).all()  # F0 = 0: undefined
    assert np.isnan(out.values[10, 2]) and np.nanmax(np.abs(out.values[:, 2])) == 0


def test_dff_bad_arguments():
    x = _ts(np.ones((10, 1)))
    with pytest.raises(ValueError, match="baseline"):
        dff(x, baseline="mode")
    with pytest.raises(ValueError, match="percentile"):
        dff(x, percentile=120)
    with pytest.raises(ValueError, match="window"):
        dff(x, window=0.015)


# --- zscore -----------------------------------------------------------------------------------


def test_zscore_mean0_std1_and_oracle():
    rng = np.random.default_rng(3)
    x = rng.normal(5, 2, size=(200, 4))
    z = zscore(_ts(x))
    np.testing.assert_allclose(z.mean("time"), 0, atol=1e-12)
    np.testing.assert_allclose(z.std("time"), 1, atol=1e-12)
    np.testing.assert_allclose(z.values, (x - x.mean(0)) / x.std(0))
    z1 = zscore(_ts(x), ddof=1)
    np.testing.assert_allclose(z1.values, (x - x.mean(0)) / x.std(0, ddof=1))


def test_zscore_constant_and_nan():
    x = np.column_stack([np.full(10, 4.0), np.arange(10.0)])
    x[3, 1] = np.nan
    z = zscore(_ts(x))
    np.testing.assert_array_equal(z.values[:, 0], 0.0)
    assert np.isnan(z.values[3, 1])
    finite = np.delete(x[:, 1], 3)
    np.testing.assert_allclose(
        np.delete(z.values[:, 1], 3), (finite - finite.mean()) / finite.std()
    )


# --- sliding_windows --------------------------------------------------------------------------


def test_windows_equal_explicit_slicing():
    x = _ts(np.random.default_rng(0).normal(size=(103, 3)), dt=0.1)
    w = sliding_windows(x, window=1.0, step=0.3)
    assert w.dims == ("window", "time", "roi")
    starts = range(0, 103 - 10 + 1, 3)
    assert w.sizes["window"] == len(starts)
    for k, i0 in enumerate(starts):
        ref = x.isel(time=slice(i0, i0 + 10))
        np.testing.assert_array_equal(w.isel(window=k).values, ref.values)
        assert w.window.values[k] == pytest.approx(ref.time.values.mean())
        assert w.window_start.values[k] == pytest.approx(ref.time.values[0])
    np.testing.assert_allclose(w.time.values, np.arange(10) * 0.1)
    assert list(w.roi.values) == [10, 11, 12] and w.attrs["src"] == "x"


def test_windows_time_not_first():
    x = _ts(np.arange(40.0).reshape(20, 2), dt=0.5)
    w = sliding_windows(x.T, window=2.0, step=2.0)
    assert w.dims == ("window", "roi", "time")
    np.testing.assert_array_equal(w.isel(window=1).values, x.T.isel(time=slice(4, 8)).values)


def test_windows_bad_arguments():
    x = _ts(np.zeros((10, 1)), dt=0.1)
    with pytest.raises(ValueError, match="longer than the data"):
        sliding_windows(x, 2.0, 0.1)
    with pytest.raises(ValueError, match="step"):
        sliding_windows(x, 0.5, 0.25)
    with pytest.raises(ValueError, match="window"):
        sliding_windows(x, -1, 0.1)
