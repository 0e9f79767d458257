"""Benchmark: neuroana.connectome.ntf (batched torch HALS) vs tensorly non_negative_parafac_hals.

Same planted tensor (1770 pairs x 600 windows x 20 animals, rank 8, |Gaussian| noise), same rank,
equal restarts, both from random initialisations, timed in one run:

1. tensorly ``non_negative_parafac_hals`` (numpy backend, ``init="random"``) runs ``--iters``
   iterations (``tol=0``) per restart; its best relative error is the target.
2. neuroana ``ntf`` on the CPU (float64 and float32) runs until its best restart reaches that
   relative error (or ``--iters * 5`` iterations).

CPU time is process CPU time (``time.process_time``) and wall time; both libraries run with the
same number of BLAS/OpenMP threads (``--threads``, default 1). When CUDA is present a GPU
section times ms/iteration for 1 restart and for batched restarts (throughput ratio), plus the time
for 16 restarts to reach tensorly's target error.

Run: ``python benchmarks/connectome.py`` (``--quick`` for a smaller tensor, ``--restarts N``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from neuroana.connectome import factor_match_score, ntf


def planted(n_pairs, n_windows, n_animals, rank, noise, seed):
    rng = np.random.default_rng(seed)
    facs = [rng.random((s, rank)) for s in (n_pairs, n_windows, n_animals)]
    x = np.einsum("ir,jr,kr->ijk", *facs)
    x += np.abs(rng.normal(0.0, noise * x.std(), x.shape))
    return x, facs


def run_tensorly(x, rank, iters, seed):
    import tensorly as tl
    from tensorly.decomposition import non_negative_parafac_hals

    tl.set_backend("numpy")
    c0, w0 = time.process_time(), time.perf_counter()
    cp, errors = non_negative_parafac_hals(
        x, rank, n_iter_max=iters, init="random", tol=0, random_state=seed, return_errors=True
    )
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    xh = tl.cp_to_tensor(cp)
    rel = float(np.linalg.norm(x - xh) / np.linalg.norm(x))
    return cpu, wall, rel, [np.asarray(f) for f in cp.factors]


def run_ours(x, rank, restarts, target, max_iter, seed, device, dtype):
    def stop(it, metrics):
        return metrics["rel_error"] <= target

    c0, w0 = time.process_time(), time.perf_counter()
    fit = ntf(
        x,
        rank,
        n_restarts=restarts,
        max_iter=max_iter,
        tol=0,
        device=device,
        dtype=dtype,
        random_state=seed,
        callbacks=[stop],
    )
    if device == "cuda":
        torch.cuda.synchronize()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return cpu, wall, fit


def gpu_section(x, rank, target, facs):
    print("\n## GPU (CUDA)", torch.cuda.get_device_name(0))
    xt = torch.as_tensor(x, dtype=torch.float32, device="cuda")
    from neuroana.connectome.ntf import _hals_iteration, _Problem, _random_init

    gen = torch.Generator(device="cuda")
    gen.manual_seed(0)
    prob = _Problem(xt, None)
    base = None
    print("| restarts | ms/iteration | throughput vs 1 restart |")
    print("|---|---|---|")
    for b in (1, 4, 16, 64):
        f = _random_init(xt.shape, rank, b, gen, "cuda", torch.float32)
        for _ in range(3):
            _hals_iteration(prob, f, 3)
        torch.cuda.synchronize()
        t = time.perf_counter()
        n = 30
        for _ in range(n):
            _hals_iteration(prob, f, 3)
        torch.cuda.synchronize()
        ms = (time.perf_counter() - t) / n * 1e3
        base = ms if base is None else base
        print(f"| {b} | {ms:.2f} | {b * base / ms:.1f}x |")
    for b in (1, 16):
        torch.cuda.synchronize()
        w0 = time.perf_counter()
        fit = ntf(
            x,
            rank,
            n_restarts=b,
            max_iter=2000,
            tol=0,
            device="cuda",
            random_state=0,
            callbacks=[lambda it, m: m["rel_error"] <= target],
        )
        torch.cuda.synchronize()
        wall = time.perf_counter() - w0
        fms = factor_match_score(facs, fit.factors, consider_weights=False).score
        print(
            f"GPU ntf {b} restart(s) to rel.err {target:.4f}: {wall:.2f} s wall, "
            f"{fit.n_iter} it, rel.err {fit.rel_error:.4f}, FMS vs truth {fms:.3f}"
        )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="590 x 200 x 20 tensor")
    p.add_argument("--restarts", type=int, default=1)
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--no-cpu", action="store_true", help="skip the CPU comparison")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS/OpenMP threads for both libraries (default 1: the 2-core CI box is "
        "shared, and oversubscribed OpenMP spin-waits distort both sides)",
    )
    a = p.parse_args()
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(a.threads)
    except ImportError:  # numpy BLAS threads then follow the environment
        pass
    torch.set_num_threads(a.threads)
    shape = (590, 200, 20) if a.quick else (1770, 600, 20)
    rank = 8
    x, facs = planted(*shape, rank, 0.1, 0)
    print(
        f"tensor {shape}, rank {rank}, restarts {a.restarts}, torch threads "
        f"{torch.get_num_threads()}"
    )
    target = None
    if not a.no_cpu:
        tl_cpu = tl_wall = 0.0
        best = (np.inf, None)
        for r in range(a.restarts):
            c, w, rel, f = run_tensorly(x, rank, a.iters, r)
            tl_cpu, tl_wall = tl_cpu + c, tl_wall + w
            best = min(best, (rel, f), key=lambda t: t[0])
        target = best[0]
        tl_fms = factor_match_score(facs, best[1], consider_weights=False).score
        rows = [
            (
                "tensorly non_negative_parafac_hals (numpy, random init)",
                tl_cpu,
                tl_wall,
                a.iters,
                target,
                tl_fms,
            )
        ]
        for dt in ("float64", "float32"):
            c, w, fit = run_ours(x, rank, a.restarts, target, a.iters * 5, 0, "cpu", dt)
            fms = factor_match_score(facs, fit.factors, consider_weights=False).score
            rows.append(
                (
                    f"neuroana ntf (torch CPU, {dt}, random init)",
                    c,
                    w,
                    fit.n_iter,
                    fit.rel_error,
                    fms,
                )
            )
        print(f"\n## CPU, to tensorly's relative error after {a.iters} iterations ({target:.5f})")
        print(
            "| method | CPU s | wall s | iterations | rel. error | FMS vs truth | CPU-time ratio |"
        )
        print("|---|---|---|---|---|---|---|")
        for name, c, w, it, rel, fms in rows:
            print(
                f"| {name} | {c:.1f} | {w:.1f} | {it} | {rel:.5f} | {fms:.3f} | {tl_cpu / c:.1f}x |"
            )
    if torch.cuda.is_available():
        if target is None:
            fit = ntf(
                x,
                rank,
                n_restarts=1,
                max_iter=a.iters,
                tol=0,
                device="cuda",
                dtype="float64",
                random_state=0,
            )
            target = fit.rel_error
        gpu_section(x, rank, target, facs)
    else:
        print("\n(no CUDA device: GPU section skipped)")


# ----------------------------------------------------------------------------- run_all.py
def parse_rows(out: str) -> list:
    """This script's rows of the ``run_all.py`` summary table, read from its printed output."""
    from _table import NUM, Row, fmt, met, search  # benchmarks/ is on sys.path

    row = r"^\| {name}[^|]*\| {num} \| {num} \| (\d+) \| {num} \| {num} \|"
    tl = search(row.format(name=r"tensorly", num=NUM), out, "tensorly row")
    tl_cpu = float(tl.group(1))
    shape = search(r"^tensor \(([\d, ]+)\)", out, "tensor").group(1).replace(", ", "x")
    rows = []
    for dt in ("float64", "float32"):
        m = search(row.format(name=rf"neuroana ntf \(torch CPU, {dt}", num=NUM), out, dt)
        cpu, it, rel = float(m.group(1)), int(m.group(3)), float(m.group(4))
        rows.append(
            Row(
                "connectome",
                f"NTF CPU s, {shape} rank 8, to rel.err {rel:.4f} ({dt}, {it} it)",
                "tensorly non_negative_parafac_hals",
                fmt(cpu, " s", 1),
                fmt(tl_cpu, " s", 1),
                f"{tl_cpu / cpu:.1f}x less",
                ">= 3x less",
                met(tl_cpu / cpu >= 3),
            )
        )
    return rows


if __name__ == "__main__":
    main()
