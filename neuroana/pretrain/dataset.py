"""User inputs (spike dicts, binned DataArrays, modality DataArrays) -> window arrays -> batches."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from neuroana.errors import TokenizeError
from neuroana.pretrain.modality import (
    ModalityStream,
    behaviour_targets,
    modality_from_dataarray,
    modality_tokens,
)
from neuroana.pretrain.tokenize import (
    SpikeEvents,
    TokenConfig,
    UnitVocab,
    events_from_binned,
    events_from_spike_times,
    tokenize,
)

MAX_MODALITY_TOKENS = 32


def as_events(spikes, session: str = "session0", t_start=None, t_stop=None) -> SpikeEvents:
    """Spike-times dict, binned ``(time, unit)`` DataArray or :class:`SpikeEvents` -> events."""
    if isinstance(spikes, SpikeEvents):
        return spikes
    if isinstance(spikes, Mapping):
        return events_from_spike_times(spikes, session=session, t_start=t_start, t_stop=t_stop)
    if isinstance(spikes, xr.DataArray):
        return events_from_binned(spikes, session=session)
    raise TokenizeError(
        f"spikes is a {type(spikes).__name__}; expected a dict unit -> spike times, a binned "
        "xarray.DataArray (time, unit) or SpikeEvents"
    )


def as_streams(modalities) -> list[ModalityStream]:
    """``{name: DataArray(time[, feature])}`` -> streams (sorted by name)."""
    if modalities is None:
        return []
    if not isinstance(modalities, Mapping):
        raise TokenizeError(
            f"stimulus must be a dict name -> DataArray(time, feature), got {type(modalities).__name__}"
        )
    return [modality_from_dataarray(modalities[k], k) for k in sorted(modalities)]


@dataclass(frozen=True)
class WindowArrays:
    """Everything a batch needs, as NumPy arrays indexed by window."""

    arrays: dict

    def __len__(self) -> int:
        return int(self.arrays["t_end"].shape[0])

    def subset(self, idx) -> WindowArrays:
        return WindowArrays({k: v[idx] for k, v in self.arrays.items()})


def build_windows(
    events: SpikeEvents,
    t_end: np.ndarray,
    config: TokenConfig,
    unit_index: np.ndarray,
    streams: list[ModalityStream] = (),
    behaviour: ModalityStream | None = None,
    rng: np.random.Generator | None = None,
) -> WindowArrays:
    """Tokenize windows and attach modality tokens and behaviour targets."""
    tw = tokenize(events, t_end, config, unit_index, rng=rng)
    a = {
        "t_end": tw.t_end,
        "cur_unit": tw.cur_unit,
        "cur_bin": tw.cur_bin,
        "cur_len": tw.cur_len,
        "past_unit": tw.past_unit,
        "past_offset": tw.past_offset.astype(np.float32),
    }
    for s in streams:
        v, off, valid = modality_tokens(s, tw.t_end, config, MAX_MODALITY_TOKENS)
        a[f"mod_{s.name}_values"] = v
        a[f"mod_{s.name}_offset"] = off.astype(np.float32)
        a[f"mod_{s.name}_valid"] = valid
    if behaviour is not None:
        a["behaviour"] = behaviour_targets(behaviour, tw.t_end)
    return WindowArrays(a)


def to_batch(w: WindowArrays, idx, device) -> dict[str, torch.Tensor]:
    """Tensors of the windows ``idx`` on ``device``, trimmed to the longest sequence."""
    a = {k: v[idx] for k, v in w.arrays.items()}
    lc = max(int(a["cur_len"].max()), 1)
    lp = max(int((a["past_unit"] >= 0).sum(1).max()), 1)
    a["cur_unit"], a["cur_bin"] = a["cur_unit"][:, :lc], a["cur_bin"][:, :lc]
    a["past_unit"], a["past_offset"] = a["past_unit"][:, :lp], a["past_offset"][:, :lp]
    return {k: torch.as_tensor(np.ascontiguousarray(v), device=device) for k, v in a.items()}


def session_unit_index(events: SpikeEvents, vocab: UnitVocab, grow: bool) -> np.ndarray:
    """Vocabulary index of each unit of ``events`` (grow the vocabulary or refuse unknown units)."""
    if grow:
        return np.asarray(vocab.extend(events.keys), dtype=np.int64)
    return vocab.lookup(events.keys)
