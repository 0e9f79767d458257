"""Start-up cost: ``import neuroana.io`` and ``neuroana info FILE`` (issue 15: <= 0.3 s and <= 1 s).

Every measurement is a fresh interpreter (``subprocess``), repeated; the table quotes the median and
the min-max. ``import neuroana.io`` is timed two ways: the cumulative time ``python -X importtime``
reports for the ``neuroana.io`` line (the import itself) and the wall time of the whole process
next to that of ``python -c pass`` measured in the same run (the interpreter's own start, the
anchor). The first real use, importing the NWB readers (``read_roi_traces``, ``read_spike_times``,
``open_nwb``), is reported too (numpy, pandas, xarray, h5py; never torch). The import-time listing is also checked for ``torch`` (must not be there).

    python benchmarks/startup.py                       # this checkout
    python benchmarks/startup.py --repeats 15
    python benchmarks/startup.py --compare /path/to/other/checkout   # interleaved, same machine

``--compare`` runs the same commands against another source tree (e.g. an older commit exported
with ``git archive``) interleaved with this one, so both see the same load. A run whose spread
(max / min) exceeds 1.5 is flagged as taken on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_FILE = REPO.parent / "shared" / "data" / "nwb" / "pynapple_suite2p_2022_08_08.nwb"
BUSY_SPREAD = 1.5
#: the first real use: the readers a notebook calls first (their modules are imported on use)
READERS = "from neuroana.io import read_roi_traces, read_spike_times, open_nwb"


def _env(tree: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(k, "1")
    return env


def _wall(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    # run in the tree itself: `python -c` puts the working folder first on sys.path
    res = subprocess.run(cmd, env=env, cwd=env["PYTHONPATH"], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-2000:]}")
    return wall, res.stderr


def _importtime_s(stderr: str, module: str) -> float:
    """Cumulative seconds of ``module`` in a ``-X importtime`` listing."""
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|(\s*)(\S+)$", line)
        if m and m.group(3) == module:
            return int(m.group(1)) / 1e6
    raise ValueError(f"{module} not in the import-time listing")


def _summary(values: list[float]) -> str:
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    flag = "  BUSY (spread > 1.5)" if lo > 0 and hi / lo > BUSY_SPREAD else ""
    return f"{med:7.3f} s  ({lo:.3f}-{hi:.3f}){flag}"


def measure(trees: dict[str, Path], nwb: Path, repeats: int) -> dict[str, dict[str, list[float]]]:
    keys = ("python", "import_io", "import_io_wall", "readers", "info")
    out = {name: {k: [] for k in keys} for name in trees}
    torch_seen = {name: False for name in trees}
    for _ in range(repeats):  # interleaved: every tree sees the same load
        for name, tree in trees.items():
            env = _env(tree)
            base, _ = _wall([sys.executable, "-c", "pass"], env)
            wall, err = _wall([sys.executable, "-X", "importtime", "-c", "import neuroana.io"], env)
            out[name]["python"].append(base)
            out[name]["import_io"].append(_importtime_s(err, "neuroana.io"))
            out[name]["import_io_wall"].append(wall)
            torch_seen[name] |= bool(re.search(r"\|\s+torch$", err, re.M))
            out[name]["readers"].append(_wall([sys.executable, "-c", READERS], env)[0])
            info, _ = _wall([sys.executable, "-m", "neuroana.cli", "info", str(nwb)], env)
            out[name]["info"].append(info)
    for name in trees:
        out[name]["torch_imported"] = torch_seen[name]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE, help="NWB file for `neuroana info`")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--compare", type=Path, default=None, help="another source tree, interleaved")
    args = ap.parse_args(argv)
    trees = {"this": REPO}
    if args.compare is not None:
        trees["compare"] = args.compare.resolve()
    print(
        f"python {platform.python_version()} on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs; load average {os.getloadavg()}"
    )
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')!r}; thread env set to 1")
    print(f"file: {args.file}; {args.repeats} repeats, median (min-max)\n")
    res = measure(trees, args.file, args.repeats)
    rows = [
        ("python -c pass (anchor)", "python"),
        ("import neuroana.io (importtime, cumulative)", "import_io"),
        ("python -c 'import neuroana.io' (process wall)", "import_io_wall"),
        ("first readers import (process wall)", "readers"),
        ("neuroana info FILE (wall)", "info"),
    ]
    for name, tree in trees.items():
        print(
            f"[{name}] {tree}  torch imported by `import neuroana.io`: "
            f"{res[name]['torch_imported']}"
        )
        for label, key in rows:
            print(f"  {label:45s} {_summary(res[name][key])}")
    if "compare" in res:
        print("\nratios compare / this (medians):")
        for label, key in rows[1:]:
            a = statistics.median(res["compare"][key])
            b = statistics.median(res["this"][key])
            print(f"  {label:45s} {a / b:6.1f}x")
    return 0


# ----------------------------------------------------------------------------- run_all.py
def parse_rows(out: str) -> list:
    """This script's rows of the ``run_all.py`` summary table, read from its printed output.

    The anchor is ``python -c pass`` (the interpreter's own start) measured in the same run.
    """
    from _table import NUM, Row, fmt, met, search  # benchmarks/ is on sys.path

    block = out.split("[compare]")[0]  # this checkout only

    def med(label: str) -> float:
        return float(search(rf"^\s+{label}\s+{NUM} s", block, label).group(1))

    base = med(r"python -c pass \(anchor\)")
    imp = med(r"import neuroana\.io \(importtime, cumulative\)")
    imp_wall = med(r"python -c 'import neuroana\.io' \(process wall\)")
    info = med(r"neuroana info FILE \(wall\)")
    torch = search(r"torch imported by `import neuroana.io`: (\w+)", block, "torch").group(1)
    anchor = "python -c pass (same run)"
    return [
        Row(
            "general",
            f"python -c 'import neuroana.io' wall s (importtime {imp:.3f} s; torch: {torch})",
            anchor,
            fmt(imp_wall, " s", 3),
            fmt(base, " s", 3),
            f"{imp_wall - base:+.3f} s",
            "<= 0.3 s over python start, no torch",
            met(imp_wall - base <= 0.3 and torch == "False"),
            "1",
        ),
        Row(
            "general",
            "neuroana info FILE wall s (whole process)",
            anchor,
            fmt(info, " s", 3),
            fmt(base, " s", 3),
            f"{info - base:+.3f} s",
            "<= 1 s",
            met(info <= 1.0),
            "1",
        ),
    ]


if __name__ == "__main__":
    sys.exit(main())
