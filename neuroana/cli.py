"""Command line: a thin client of the public API.

``neuroana demo``                      run every analysis on the embedded synthetic data
``neuroana run CONFIG.yaml [--check]`` run one analysis on your files as a YAML file describes
``neuroana info FILE.nwb``             list what an NWB file holds
``neuroana fetch NAME [--dest DIR]``   download a dataset from its manifest, checksum-verified
``neuroana fisbe evaluate ...``        FISBe benchmark metrics for a prediction
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _cmd_demo(args: argparse.Namespace) -> int:
    from neuroana.demo import run_demo

    run_demo(Path(args.out), quick=args.quick, only=args.only)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from neuroana.runner import load_config, run_config

    if args.check:
        cfg = load_config(args.config)
        print(f"{args.config}: valid ({cfg.analysis}, {len(cfg.inputs)} input(s) -> {cfg.output})")
        return 0
    res = run_config(args.config)
    for key, value in res.summary.get("scores", {}).items():
        if key != "per_sample":
            print(f"{key}: {value}")
    for p in res.files:
        print(p)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from neuroana.io import contents_rows
    from neuroana.io.nwb_contents import COLUMNS

    # printed without pandas (as DataFrame.to_string(index=False) would: right-aligned columns)
    rows = [COLUMNS] + [tuple(str(r[c]) for c in COLUMNS) for r in contents_rows(args.file)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    for row in rows:
        print(" ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from neuroana.io.download import fetch
    from neuroana.io.manifests import list_manifests

    if args.name is None:
        for name in list_manifests():
            print(name)
        return 0
    paths = fetch(args.name, dest=args.dest, files=args.file or None)
    for p in paths:
        print(p)
    return 0


def _cmd_fisbe_evaluate(args: argparse.Namespace) -> int:
    from neuroana.io.results import write_json_atomic
    from neuroana.segmentation import evaluate_files

    result = evaluate_files(args.gt, args.pred, split_file=args.split_file, labeling=args.labeling)
    if args.out:
        write_json_atomic(result, args.out)
    else:
        json.dump(result, sys.stdout, indent=2, default=float)
        print()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuroana", description=__doc__.splitlines()[0])
    from neuroana import __version__

    parser.add_argument("--version", action="version", version=f"neuroana {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="run the analyses on the embedded synthetic data")
    p.add_argument("--out", default="neuroana-report", help="report folder (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="smallest sizes (for tests)")
    p.add_argument(
        "--only", nargs="+", default=None, metavar="SECTION", help="run only these sections"
    )
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("run", help="run one analysis on your files, configured by a YAML file")
    p.add_argument("config", help="YAML with keys analysis, inputs, data, params, output")
    p.add_argument("--check", action="store_true", help="only validate the configuration")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("info", help="list what an NWB file holds")
    p.add_argument("file")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("fetch", help="download a dataset described in data_manifests/")
    p.add_argument("name", nargs="?", help="manifest name; omit to list them")
    p.add_argument("--dest", default=None, help="cache folder (default: ~/.cache/neuroana)")
    p.add_argument("--file", action="append", help="only this file of the manifest (repeatable)")
    p.set_defaults(func=_cmd_fetch)

    p = sub.add_parser("fisbe", help="FISBe benchmark tools")
    fsub = p.add_subparsers(dest="fisbe_command", required=True)
    e = fsub.add_parser("evaluate", help="benchmark metrics of a prediction against ground truth")
    e.add_argument("--gt", required=True, help="ground-truth zarr sample")
    e.add_argument("--pred", required=True, help="predicted zarr sample")
    e.add_argument("--split-file", default=None, help="split list naming completely/partly samples")
    e.add_argument("--labeling", choices=["completely", "partly"], default=None)
    e.add_argument("--out", default=None, help="write results as JSON here (atomically)")
    e.set_defaults(func=_cmd_fisbe_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    # the command line writes figures to files and never opens a window; matplotlib is imported
    # only by the commands that draw (a cheap `neuroana info` must not pay for it)
    if "matplotlib" in sys.modules:
        sys.modules["matplotlib"].use("Agg")
    else:
        os.environ.setdefault("MPLBACKEND", "Agg")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as err:
        print(f"neuroana {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
