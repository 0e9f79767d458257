"""napari dock widgets: NWB traces/spikes, and one widget per analysis.

Widgets are thin clients of the public API. Fits run in a worker thread
(``napari.qt.threading.thread_worker``) with a progress indicator in napari's activity dock, so the
viewer never freezes; results come back as layers or plots.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget


class TracesWidget(QWidget):
    """The fluorescence trace of the ROI selected in an NWB ``ROIs`` layer, and the file's spikes.

    Pick a label in the ``ROIs`` layer (the label picker, or ``layer.selected_label``): the plot
    shows that ROI's trace over time, and below it a raster of the file's units when it has any.
    """

    def __init__(self, napari_viewer):
        super().__init__()
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.viewer = napari_viewer
        self.figure = Figure(figsize=(5, 4), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.status = QLabel("select a label in an NWB 'ROIs' layer")
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.canvas)
        self._cache: dict[str, tuple] = {}
        self._layer = None
        self.viewer.layers.selection.events.active.connect(self._on_active)
        self._on_active()

    def _on_active(self, event=None) -> None:
        layer = self.viewer.layers.selection.active
        if layer is None or "nwb_path" not in getattr(layer, "metadata", {}):
            return
        if self._layer is not None and hasattr(self._layer.events, "selected_label"):
            self._layer.events.selected_label.disconnect(self.update_plot)
        self._layer = layer
        if hasattr(layer.events, "selected_label"):
            layer.events.selected_label.connect(self.update_plot)
        self.update_plot()

    def _load(self, path: str) -> tuple:
        if path not in self._cache:
            from neuroana.io import NWBError, read_roi_traces, read_spike_times

            try:
                traces = read_roi_traces(path)
            except NWBError:
                traces = None
            try:
                spikes = read_spike_times(path)
            except NWBError:
                spikes = {}
            self._cache[path] = (traces, spikes)
        return self._cache[path]

    def update_plot(self, event=None) -> None:
        """Redraw for the active layer's file and selected label."""
        layer = self._layer
        if layer is None:
            return
        path = layer.metadata["nwb_path"]
        traces, spikes = self._load(path)
        label = int(getattr(layer, "selected_label", 0) or 0)
        self.figure.clear()
        n_axes = int(traces is not None) + int(bool(spikes))
        axes = self.figure.subplots(max(n_axes, 1), 1, squeeze=False)[:, 0]
        i = 0
        if traces is not None:
            ax = axes[i]
            i += 1
            roi_ids = layer.metadata.get("roi_ids", list(traces["roi"].values))
            if 1 <= label <= len(roi_ids):
                roi = roi_ids[label - 1]
                tr = traces.sel(roi=roi)
                ax.plot(tr["time"].values, tr.values, lw=0.8)
                ax.set_title(f"ROI {roi}")
                self.status.setText(f"{path}: ROI {roi}")
            else:
                ax.set_title("no ROI selected")
            ax.set_xlabel("time (s)")
        if spikes:
            ax = axes[i]
            units = list(spikes)
            ax.eventplot([np.asarray(spikes[u]) for u in units], linewidths=0.5)
            ax.set_yticks(range(len(units)), [str(u) for u in units], fontsize=6)
            ax.set_xlabel("time (s)")
            ax.set_ylabel("unit")
        self.canvas.draw_idle()
