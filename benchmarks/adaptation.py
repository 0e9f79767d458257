"""Batched torch solve of optimal gains vs a per-condition loop (anchor), side by side in one run.

Timing rules in ``benchmarks/_harness.py``: wall clock, ``--threads`` (default 1) for BLAS and torch
alike, loop and batched solve interleaved, median (min-max) of ``--repeats`` runs, busy runs flagged.

Run: python benchmarks/adaptation.py [--device auto] [--n-conditions 256] [--repeats 3]
"""

if __name__ == "__main__":  # before numpy: drop OPENBLAS_CORETYPE / L2_SIZE and re-exec
    import _harness

    _harness.prepare()
else:
    from benchmarks import _harness

import argparse  # noqa: E402

import numpy as np  # noqa: E402

from neuroana.adaptation import RecurrentGainNetwork, biased_prior, optimal_gains  # noqa: E402
from neuroana.adaptation.batched import batched_adaptation  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--n-conditions", type=int, default=256)
    ap.add_argument("--n-neurons", type=int, default=36)
    _harness.add_arguments(ap, repeats=3, threads=(1,))
    a = ap.parse_args()
    print(_harness.header("adaptation: batched optimal gains vs a per-condition loop"))
    print(_harness.set_threads(a.threads[0]))
    net = RecurrentGainNetwork(n_neurons=a.n_neurons, stimuli=2 * a.n_neurons)
    rng = np.random.default_rng(0)
    P = np.stack(
        [
            biased_prior(net.stimuli, rng.uniform(-90, 90), rng.uniform(0.1, 0.6))
            for _ in range(a.n_conditions)
        ]
    )
    t = _harness.time_interleaved(
        {
            "loop": lambda: np.stack(
                [optimal_gains(net, p, method="newton").gains.values for p in P]
            ),
            "batched": lambda: batched_adaptation(net.W, net.F, P, device=a.device),
        },
        a.repeats,
    )
    _harness.report_busy(t, a)
    loop, sol = t["loop"].result, t["batched"].result
    t_loop, t_b = t["loop"].median, t["batched"].median
    err = np.max(np.abs(sol.gains / loop - 1))
    print(f"conditions={a.n_conditions} N={a.n_neurons} device={a.device}")
    print(
        f"per-condition loop (anchor): {t_loop:.3f}s   batched: {t_b:.3f}s   "
        f"speed-up x{t_loop / t_b:.1f}"
    )
    print(f"wall medians of {a.repeats}: loop {t['loop'].fmt()}, batched {t['batched'].fmt()}")
    print(f"max relative gain difference: {err:.2e}")


if __name__ == "__main__":
    main()
