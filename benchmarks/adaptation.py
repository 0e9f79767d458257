"""Batched torch solve of optimal gains vs a per-condition loop (anchor), side by side in one run.

Run: python benchmarks/adaptation.py [--device auto] [--n-conditions 256]
"""

import argparse
import time

import numpy as np

from neuroana.adaptation import RecurrentGainNetwork, biased_prior, optimal_gains
from neuroana.adaptation.batched import batched_adaptation


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--n-conditions", type=int, default=256)
    ap.add_argument("--n-neurons", type=int, default=36)
    a = ap.parse_args()
    net = RecurrentGainNetwork(n_neurons=a.n_neurons, stimuli=2 * a.n_neurons)
    rng = np.random.default_rng(0)
    P = np.stack(
        [
            biased_prior(net.stimuli, rng.uniform(-90, 90), rng.uniform(0.1, 0.6))
            for _ in range(a.n_conditions)
        ]
    )
    t0 = time.perf_counter()
    loop = np.stack([optimal_gains(net, p, method="newton").gains.values for p in P])
    t_loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    sol = batched_adaptation(net.W, net.F, P, device=a.device)
    t_b = time.perf_counter() - t0
    err = np.max(np.abs(sol.gains / loop - 1))
    print(f"conditions={a.n_conditions} N={a.n_neurons} device={a.device}")
    print(
        f"per-condition loop (anchor): {t_loop:.3f}s   batched: {t_b:.3f}s   "
        f"speed-up x{t_loop / t_b:.1f}"
    )
    print(f"max relative gain difference: {err:.2e}")


# ----------------------------------------------------------------------------- run_all.py
def parse_rows(out: str) -> list:
    """This script's rows of the ``run_all.py`` summary table, read from its printed output."""
    from _table import NUM, Row, fmt, met, search  # benchmarks/ is on sys.path

    m = search(rf"anchor\): {NUM}s\s+batched: {NUM}s", out, "timing line")
    loop, batched = float(m.group(1)), float(m.group(2))
    err = float(search(rf"max relative gain difference: {NUM}", out, "gain difference").group(1))
    n = search(r"conditions=(\d+) N=(\d+)", out, "sizes")
    return [
        Row(
            "adaptation",
            f"optimal gains wall s, {n.group(1)} conditions x {n.group(2)} neurons "
            f"(max rel. diff {err:.0e})",
            "per-condition Newton loop",
            fmt(batched, " s"),
            fmt(loop, " s"),
            f"{loop / batched:.1f}x less",
            "faster, same gains (< 1e-6)",
            met(batched < loop and err < 1e-6),
        )
    ]


if __name__ == "__main__":
    main()
