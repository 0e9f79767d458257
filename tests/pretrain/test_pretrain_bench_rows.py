"""benchmarks/pretrain.py's ``parse_rows`` reads its recorded output (tests/bench_outputs/pretrain.txt,
a verbatim ``--sections case,sim`` run) truthfully."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def parse_rows():
    bench = str(ROOT / "benchmarks")
    sys.path.insert(0, bench)  # parse_rows imports benchmarks/_table.py
    spec = importlib.util.spec_from_file_location(
        "_bench_pretrain", ROOT / "benchmarks/pretrain.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    yield mod.parse_rows
    sys.path.remove(bench)


def test_rows_match_the_printed_numbers(parse_rows):
    out = (ROOT / "tests" / "bench_outputs" / "pretrain.txt").read_text()
    rows = {r.measure: r for r in parse_rows(out)}
    hub = re.search(r"== case hubnet.*?model \(default\)\s+([\d.]+)", out, re.S).group(1)
    assert rows["case hubnet: held-out bits/spike"].ours == hub
    assert rows["case hubnet: held-out bits/spike"].anchor_value == "0.1069"  # truth.json
    assert rows["case hubnet: excitatory-edge AUROC, held-out"].target == ">= 0.9"
    fs = rows["case behaviour: few-shot 0.01 R² (90 labels)"]
    # the anchor is the best of the package ridge, the untrained model and truth.json's ridge
    line = re.search(r"^\s+0\.01\s+\(90 labels\)\s+(.*)$", out, re.M).group(1).split()
    assert fs.ours == line[0] and float(fs.anchor_value) == max(map(float, line[1:]))
    assert {r.threads for r in rows.values()} == {"1"}
    assert all(r.anchor.endswith(("(same run)", "(recorded)")) for r in rows.values())
    assert sum(m.startswith("sim ") for m in rows) >= 8  # both simulated networks, 10 % rows too


def test_a_broken_output_is_reported(parse_rows):
    with pytest.raises(LookupError):
        parse_rows("nothing useful here\n")
