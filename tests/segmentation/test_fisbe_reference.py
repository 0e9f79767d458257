"""Exact equality with the official FISBe evaluation on every case of the public reference bank."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from neuroana.segmentation import EmptyGroundTruthError, aggregate, evaluate_instances, key_metrics


def _bank(shared_dir) -> Path:
    d = Path(shared_dir) / "fisbe_reference"
    if not d.is_dir():
        pytest.skip(f"{d} absent")
    return d


def _cases(shared_dir):
    return sorted(_bank(shared_dir).glob("pub*.npz"))


def _same(a, b, path=""):
    """Field-by-field exact equality of b (official) inside a; returns the mismatches."""
    if isinstance(b, dict):
        out = []
        for k, v in b.items():
            out += [f"{path}.{k} missing"] if k not in a else _same(a[k], v, f"{path}.{k}")
        return out
    if isinstance(b, list):
        if not isinstance(a, list) or len(a) != len(b):
            return [f"{path}: {a!r} != {b!r}"]
        return [
            m
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for m in _same(x, y, f"{path}[{i}]")
        ]
    if isinstance(b, float) and math.isnan(b):
        return [] if isinstance(a, float) and math.isnan(a) else [f"{path}: {a!r} != nan"]
    if isinstance(b, bool) or isinstance(a, bool) or a != b:
        return [f"{path}: {a!r} != {b!r}"]
    if isinstance(b, int) and not isinstance(a, int):
        return [f"{path}: type {type(a).__name__} != int"]
    return []


def _run(npz):
    d = np.load(npz, allow_pickle=False)
    return evaluate_instances(d["gt"], d["pred"], str(d["labeling"]), d["dim_neurons"].tolist())


@pytest.fixture(scope="module")
def results(shared_dir):
    out = {}
    for npz in _cases(shared_dir):
        ref = json.loads(npz.with_suffix(".json").read_text())
        if ref["official"]["status"] == "ok":
            out[npz.stem] = (_run(npz), ref)
    return out


def test_bank_has_all_cases(shared_dir, results):
    assert len(_cases(shared_dir)) == 27
    assert len(results) == 26


def test_every_case_every_official_field_identical(results):
    bad = {}
    for name, (r, ref) in results.items():
        m = _same(r, ref["official"]["metrics"])
        m += _same(
            key_metrics(r),
            {
                k: v
                for k, v in ref["key_metrics"].items()
                if k not in ("gt_skel_coverage", "TP_05_cldice")
            },
        )
        single = aggregate([r], [name])[r["labeling"]]
        m += _same(
            single["per_instance_counts"],
            ref["official"]["single_case_aggregate"]["per_instance_counts"],
        )
        m += _same(single["avS"], ref["official"]["single_case_aggregate"]["avS"])
        if m:
            bad[name] = m[:5]
    assert not bad, bad


def test_float32_fields_are_float32_values(results):
    # sanity: the official float32 quantities round-trip through float32 unchanged
    for r, _ in results.values():
        for v in r["general"]["TP_05_cldice"]:
            assert float(np.float32(v)) == v


def test_official_error_case_raises(shared_dir):
    errs = [
        p
        for p in _cases(shared_dir)
        if json.loads(p.with_suffix(".json").read_text())["official"]["status"] == "error"
    ]
    assert [p.stem for p in errs] == ["pub19_empty_gt"]
    with pytest.raises(EmptyGroundTruthError, match="no instance"):
        _run(errs[0])


def test_aggregate_json_identical(shared_dir, results):
    ref = json.loads((_bank(shared_dir) / "aggregate.json").read_text())
    names = list(results)
    agg = aggregate([results[n][0] for n in names], names)
    for split in ("completely", "partly", "combined"):
        assert _same(agg[split], ref[split]) == [], split


def test_official_summary_csv_rows(shared_dir, results):
    agg = aggregate([r for r, _ in results.values()], list(results))
    files = {
        "summary.csv": "combined",
        "summary_complete.csv": "completely",
        "summary_partly.csv": "partly",
    }
    for fname, split in files.items():
        with open(_bank(shared_dir) / "official_summary" / fname, newline="") as f:
            rows = list(csv.reader(f, delimiter=";"))
        header = rows[0][1:]
        for row in rows[1:]:
            name, vals = row[0], row[1:]
            if name in ("mean", "sum"):
                continue
            if name == "avg_inst":
                src = agg[split]["per_instance_counts"]
                gen, cm = src["general"], src["confusion_matrix"]
            else:
                gen, cm = results[name][0]["general"], results[name][0]["confusion_matrix"]
            for h, v in zip(header, vals, strict=True):
                table, key = h.split(" ", 1)
                mine = (
                    gen.get(key)
                    if table == "general"
                    else (
                        cm.get(key) if table == "confusion_matrix" else cm.get(table, {}).get(key)
                    )
                )
                mine = 0.0 if mine is None else mine
                # the CSV prints float32 aggregates with the float32 repr
                same = float(mine) == float(v) or str(np.float32(mine)) == v
                assert same, (fname, name, h, mine, v)
