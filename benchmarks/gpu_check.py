"""The GPU checks still owed, as one prepared run for a lent card (H100/H200), under 5 minutes.

    python benchmarks/gpu_check.py            # on the GPU machine; prints one table at the end
    python benchmarks/gpu_check.py --dry-run  # the commands and their time caps, anywhere

Each step is an existing benchmark's GPU section, run in a subprocess with a wall-time cap so one
slow step cannot eat the others' time; its output is kept in full under ``--log-dir`` and its last
lines are echoed. The table names the card. What is owed (see benchmarks/RESULTS.md):

1. the learnt FISBe baseline's GPU preset (bf16, larger crops): never run on a card;
2. the pretraining model's GPU configuration (``SpikeRateModel(device="cuda")``) on the public
   spiking networks: the same quality numbers as on the CPU, and its fit time;
3. CPU/GPU agreement tests that skip without CUDA (connectome NTF, HMM-GLM scan path);
4. NTF at paper scale (``benchmarks/ntf_gpu.py``: 17955 x 1000 x 21, rank 10): ms/iteration
   (goal <= 3), ranks 2-12 x 16 restarts batched (goal <= 15 s), peak GPU memory beyond the tensor.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: (name, command, wall-time cap in seconds); the caps add up to under 5 minutes
STEPS = [
    (
        "cuda tests",
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu", "tests"],
        40,
    ),
    (
        "fisbe baselines (GPU preset)",
        [sys.executable, "benchmarks/fisbe_baselines.py", "--gpu"],
        60,
    ),
    (
        "ntf paper scale",
        [sys.executable, "benchmarks/ntf_gpu.py", "--graph"],
        90,
    ),
    (
        "pretrain quality (hub + few-shot)",
        [sys.executable, "benchmarks/pretrain.py", "--config", "gpu", "--sections", "case"],
        100,
    ),
]


def _card() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    except ImportError:  # pragma: no cover
        pass
    return "no CUDA device"


def ntf_summary(logs: Path) -> None:
    """The NTF step's goals, from the ``RESULT`` line of its log."""
    import json

    i = [name for name, _, _ in STEPS].index("ntf paper scale")
    lines = [ln for ln in (logs / f"{i}.log").read_text().splitlines() if ln.startswith("RESULT ")]
    if not lines:
        print("ntf paper scale: no RESULT line (see its log)")
        return
    r = json.loads(lines[-1].removeprefix("RESULT "))
    ms = min(r["ms_per_iteration_1_restarts"], r.get("ms_per_iteration_graph", float("inf")))
    print(f"\nNTF {r['shape']} rank {r['rank']} on {r['device']}")
    print(f"  ms/iteration, 1 restart: {ms:.2f} (goal <= 3: {'yes' if ms <= 3 else 'NO'})")
    print(f"  16 restarts batched: {r['ms_per_iteration_16_restarts']:.2f} ms/iteration")
    ok = r["sweep_seconds"] <= 15
    print(
        f"  rank sweep 2-12 x 16 restarts: {r['sweep_seconds']:.1f} s (goal <= 15: {'yes' if ok else 'NO'})"
    )
    print(
        f"  peak GPU memory beyond the {r['tensor_gb']:.2f} GB tensor: {r['peak_gb_beyond_tensor']:.3f} GB"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="print the steps, run nothing")
    ap.add_argument("--log-dir", default="gpu-check-logs", help="full output of each step")
    args = ap.parse_args(argv)
    if args.dry_run:
        for name, cmd, cap in STEPS:
            print(f"{name:36s} {cap:4d} s  {' '.join(cmd[1:])}")
        print(f"total cap {sum(c for _, _, c in STEPS)} s")
        return 0
    card = _card()
    if card == "no CUDA device":
        print("gpu_check: no CUDA device here; run it on the lent GPU machine (or --dry-run)")
        return 2
    logs = Path(args.log_dir)
    logs.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (name, cmd, cap) in enumerate(STEPS):
        log = logs / f"{i}.log"
        t0 = time.perf_counter()
        try:
            with open(log, "w") as fh:
                rc = subprocess.run(
                    cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, timeout=cap
                ).returncode
            status = "ok" if rc == 0 else f"exit {rc}"
        except subprocess.TimeoutExpired:
            status = f"over {cap} s"
        seconds = time.perf_counter() - t0
        rows.append((name, status, seconds, log))
        print(f"== {name}: {status} in {seconds:.0f} s; last lines of {log}:")
        print("".join(log.read_text().splitlines(keepends=True)[-15:]))
    ntf_summary(logs)
    print(f"\nGPU check on {card}")
    print(f"{'step':36s} {'status':12s} {'seconds':>8s}  log")
    for name, status, seconds, log in rows:
        print(f"{name:36s} {status:12s} {seconds:8.0f}  {log}")
    return 0 if all(r[1] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
