"""The connectome widget on several animals (files aligned by a label column), each animal's ROI
masks painted by community; and a sixth analysis getting a widget from the registry alone."""

from __future__ import annotations

import sys
import textwrap
import warnings
from datetime import UTC, datetime

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("napari")
pytest.importorskip("magicgui")

SHAPE = (24, 30)


def _write_animal(path, traces: xr.DataArray, epochs, fs: float, rng, label_column="neuron_label"):
    """One animal's NWB file: raw F (time, roi), a 3x3-pixel mask per ROI at a random place,
    ROI ids from ``traces.roi_id``, the neuron label in ``label_column`` (plus a per-file
    ``cell_name`` column), the episodes as ``epochs``. Returns ``{roi id: label}``."""
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ophys import Fluorescence, ImageSegmentation, OpticalChannel, RoiResponseSeries

    nwb = NWBFile(
        session_description="multi-animal test",
        identifier=path.stem,
        session_start_time=datetime(2024, 1, 2, tzinfo=UTC),
    )
    device = nwb.create_device(name="Microscope")
    plane = nwb.create_imaging_plane(
        name="ImagingPlane",
        optical_channel=OpticalChannel(name="ch", description="green", emission_lambda=520.0),
        imaging_rate=fs,
        description="plane",
        device=device,
        excitation_lambda=920.0,
        indicator="GCaMP",
        location="V1",
    )
    ophys = nwb.create_processing_module(name="ophys", description="processed")
    seg = ImageSegmentation()
    ophys.add(seg)
    ps = seg.create_plane_segmentation(
        name="PlaneSegmentation", description="r", imaging_plane=plane
    )
    ps.add_column(name=label_column, description="identity across animals")
    ps.add_column(name="cell_name", description="a per-file name")
    cells = rng.permutation(SHAPE[0] // 3 * (SHAPE[1] // 3))
    labels = traces["roi"].values.astype(str)
    ids = traces["roi_id"].values
    for i in range(len(ids)):
        m = np.zeros(SHAPE)
        r, c = divmod(int(cells[i]), SHAPE[1] // 3)
        m[3 * r : 3 * r + 3, 3 * c : 3 * c + 3] = 1.0
        cols = {label_column: str(labels[i]), "cell_name": f"{path.stem}-{i}"}
        ps.add_roi(image_mask=m, id=int(ids[i]), **cols)
    region = ps.create_roi_table_region(region=list(range(len(ids))), description="all")
    ophys.add(
        Fluorescence(
            roi_response_series=RoiResponseSeries(
                name="RoiResponseSeries",
                data=np.ascontiguousarray(traces.transpose("time", "roi").values),
                rois=region,
                unit="a.u.",
                rate=fs,
            )
        )
    )
    for _, row in epochs.iterrows():
        nwb.add_epoch(
            start_time=float(row["start_time"]),
            stop_time=float(row["stop_time"]),
            tags=[row["stimulus"]],
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)
    return dict(zip(ids.tolist(), labels.tolist(), strict=True))


@pytest.fixture(scope="module")
def animals(tmp_path_factory):
    from neuroana.datasets.connectome_sim import make_calcium_recordings

    d = tmp_path_factory.mktemp("animals")
    sim = make_calcium_recordings(
        n_neurons=14,
        n_animals=3,
        episode_durations=(90.0, 90.0),
        n_communities=(2, 3),
        missing_fraction=(0.1, 0.2),
        non_participating=None,
        random_state=3,
    )
    rng = np.random.default_rng(0)
    files = {}
    for a, tr in sim.traces.items():
        p = d / f"{a}.nwb"
        files[a] = (p, _write_animal(p, tr, sim.epochs, 3.0, rng))
    return sim, files


def _brute_paint(lab, roi_ids, id_to_label, label_to_comm):
    out = np.zeros(lab.shape, dtype=int)
    for y, x in zip(*np.nonzero(lab), strict=True):
        label = id_to_label[roi_ids[int(lab[y, x]) - 1]]
        c = label_to_comm.get(label, -1)
        out[y, x] = c + 1 if c >= 0 else 0
    return out


def _open(viewer, path, name):
    from neuroana.viz.napari._reader import get_nwb_reader

    ((data, kw, _),) = [t for t in get_nwb_reader(str(path))(str(path)) if t[2] == "labels"]
    return viewer.add_labels(data, **{**kw, "name": name})


PARAMS = dict(window=10.0, step=5.0, n_components=3, n_restarts=2, max_iter=150, n_runs=2)


@pytest.mark.napari
def test_each_animal_painted_by_label_equals_a_direct_fit(make_napari_viewer, qtbot, animals):
    from neuroana.connectome import DynamicConnectome
    from neuroana.viz.napari._analysis_widgets import connectome_widget

    sim, files = animals
    viewer = make_napari_viewer()
    layers = {a: _open(viewer, p, f"ROIs {a}") for a, (p, _) in files.items()}
    w = connectome_widget(viewer)
    w.layer_box.value = [f"ROIs {a}" for a in files]
    w.data_fields["roi_label"].value, w.data_fields["epochs"].value = "neuron_label", "epochs"
    for k, v in {**PARAMS, "random_state": 0}.items():
        w.param_fields[k].value = v if isinstance(v, int) else str(v)
    worker = w.run()
    assert worker is not None, w.status.value
    qtbot.waitUntil(lambda: w.button.enabled, timeout=240_000)
    assert w.result is not None, w.status.value

    # the direct fit: the simulator's in-memory traces (labels as roi), keyed like the files
    ref = DynamicConnectome(ranks=(1, 2, 3, 4), random_state=0, **PARAMS)
    ref.fit({a: tr for a, tr in sim.traces.items()}, epochs=sim.epochs)
    com = ref.result_["episode_communities"].transpose("episode", "roi")
    got = w.result.estimator.result_["episode_communities"].transpose("episode", "roi")
    np.testing.assert_array_equal(got["roi"].values.astype(str), com["roi"].values.astype(str))
    np.testing.assert_array_equal(got.values, com.values)
    labels = com["roi"].values.astype(str).tolist()
    n_painted = 0
    for a, (_, id_to_label) in files.items():
        painted = viewer.layers[f"communities {a}"].data
        lab, roi_ids = layers[a].data, layers[a].metadata["roi_ids"]
        assert painted.shape == (com.sizes["episode"], *lab.shape)
        for e in range(com.sizes["episode"]):
            comm = dict(zip(labels, com.values[e].tolist(), strict=True))
            np.testing.assert_array_equal(painted[e], _brute_paint(lab, roi_ids, id_to_label, comm))
        n_painted += int((painted > 0).any(axis=0).sum())
        # neurons this animal lacks are painted nowhere: its own masks only
        assert ((painted > 0).any(axis=0) <= (lab > 0)).all()
    assert n_painted > 0.5 * sum((ly.data > 0).sum() for ly in layers.values())
    assert w.result.estimator.result_.sizes["animal"] == 3
    assert "3 animal(s)" in w.status.value and "per episode" in w.status.value


@pytest.mark.napari
def test_labels_that_do_not_line_up_are_refused(make_napari_viewer, qtbot, animals):
    from neuroana.viz.napari._analysis_widgets import connectome_widget

    _, files = animals
    viewer = make_napari_viewer()
    for a, (p, _) in files.items():
        _open(viewer, p, f"ROIs {a}")
    w = connectome_widget(viewer)
    w.layer_box.value = [f"ROIs {a}" for a in files]
    w.param_fields["n_components"].value = "1"
    # a per-file column as the label: the files share no neuron
    w.data_fields["roi_label"].value = "cell_name"
    w.run()
    qtbot.waitUntil(lambda: w.button.enabled, timeout=60_000)
    assert "share 0 neuron(s) with the other files" in w.status.value, w.status.value
    # a column the files lack: the reader's message names it
    w.data_fields["roi_label"].value = "nope"
    w.run()
    qtbot.waitUntil(lambda: w.button.enabled, timeout=60_000)
    assert "'nope'" in w.status.value and w.result is None
    assert not [ly for ly in viewer.layers if ly.name.startswith("communities")]


@pytest.mark.napari
def test_public_multi_animal_case(make_napari_viewer, qtbot, shared_dir):
    """The outside case read as a user would: the four fish, their label column and epochs."""
    case = shared_dir / "cases" / "connectome_multi_animal"
    if not case.exists():
        pytest.skip(f"{case} is absent")
    from neuroana.viz.napari._analysis_widgets import connectome_widget

    paths = sorted(case.glob("fish-*_ophys.nwb"))
    viewer = make_napari_viewer()
    layers = [_open(viewer, p, p.stem) for p in paths]
    w = connectome_widget(viewer)
    w.layer_box.value = [p.stem for p in paths]
    w.data_fields["roi_label"].value, w.data_fields["epochs"].value = "neuron_label", "epochs"
    for k, v in dict(window="30", step="", n_components="4", n_restarts=2, n_runs=2).items():
        w.param_fields[k].value = v
    _ = w.run()
    qtbot.waitUntil(lambda: w.button.enabled, timeout=300_000)
    assert w.result is not None, w.status.value
    res = w.result.estimator.result_
    for p, ly in zip(paths, layers, strict=True):
        painted = viewer.layers[f"communities {p.stem}"].data
        traces = w.result.inputs["traces"][p.stem]
        label_of = dict(
            zip(traces["roi_id"].values.tolist(), traces["roi"].values.tolist(), strict=True)
        )
        for e in range(res.sizes["episode"]):
            comm = dict(
                zip(
                    res["roi"].values.tolist(),
                    res["episode_communities"].values[e].tolist(),
                    strict=True,
                )
            )
            np.testing.assert_array_equal(
                painted[e], _brute_paint(ly.data, ly.metadata["roi_ids"], label_of, comm)
            )
        assert (painted > 0).any()


# ------------------------------------------------------------------------- a sixth analysis
TOY = """
import numpy as np, xarray as xr
DATA_KEYS = {"bin_size": True}

def read_inputs(paths, data):
    from neuroana.io import read_spike_counts
    return {"X": read_spike_counts(paths[0], data["bin_size"]).values.astype(float)}

def results(est, inputs):
    ev = est.explained_variance_ratio_
    return xr.Dataset({"ratio": ("component", ev)}), {"fitted": {}, "scores": {"first": float(ev[0])}}
"""


@pytest.mark.napari
def test_a_registered_sixth_analysis_gets_a_widget(
    make_napari_viewer, qtbot, tmp_path, monkeypatch
):
    from sklearn.decomposition import PCA

    from neuroana.analysis import Analysis, register, unregister
    from neuroana.datasets import make_session
    from neuroana.io import read_spike_counts, write_session_nwb
    from neuroana.viz.napari._analysis_widgets import registry_widget

    (tmp_path / "toy_pipeline_widget.py").write_text(textwrap.dedent(TOY))
    monkeypatch.syspath_prepend(str(tmp_path))
    path = write_session_nwb(
        make_session(random_state=0, duration=20.0, n_units=4), tmp_path / "s.nwb"
    )
    register(
        Analysis(
            "toy",
            estimator="sklearn.decomposition:PCA",
            pipeline="toy_pipeline_widget",
            simulate="toy_pipeline_widget:read_inputs",
            demo="toy_pipeline_widget:read_inputs",
        )
    )
    try:
        viewer = make_napari_viewer()
        w = registry_widget(viewer)
        assert "toy" in w.analysis_box.choices
        w.analysis_box.value = "toy"
        inner = w.inner
        assert set(inner.param_fields) == set(PCA().get_params())  # every parameter, defaults
        assert list(inner.data_fields) == ["bin_size"]
        inner.files.value = [path]
        inner.data_fields["bin_size"].value = "0.1"
        inner.param_fields["n_components"].value = "2"
        worker = inner.run()
        assert worker is not None, inner.status.value
        qtbot.waitUntil(lambda: inner.button.enabled, timeout=60_000)
        assert inner.result is not None, inner.status.value
        ref = PCA(n_components=2).fit(read_spike_counts(path, 0.1).values.astype(float))
        np.testing.assert_allclose(inner.result.dataset["ratio"], ref.explained_variance_ratio_)
        assert f"first: {ref.explained_variance_ratio_[0]:.4g}" in inner.status.value
    finally:
        unregister("toy")
        sys.modules.pop("toy_pipeline_widget", None)
