"""Benchmark: neuroana.connectome.ntf vs tensorly's non_negative_parafac_hals, to the same error.

Planted tensor: 1770 pairs (60 ROIs) x 600 windows x 20 animals, rank 8, |Gaussian| noise. Cases:

* ``dense``: the whole tensor.
* ``neurons``: 6 of the 60 ROIs missing in every animal (a different 6 each), so every pair that
  involves one of them is masked in that animal for all windows (how missing neurons look).
* ``speckled``: 10 % of the entries masked uniformly at random (what rank selection holds out).

Anchor: tensorly ``non_negative_parafac_hals`` (numpy backend, ``init="random"``, ``tol=0``) runs
``--iters`` iterations; its relative error (over the observed entries) is the target. tensorly's
HALS has no mask, so the masked anchor is its HALS with EM imputation, the way tensorly's own
masked solvers treat masks: before every iteration the masked entries are filled with the current
model (``non_negative_parafac_hals(..., n_iter_max=1, init=previous)``). neuroana ``ntf`` (CPU,
float64 and float32, random init, ``mask=``) runs until it reaches that error.

ntf applies its thread rule (:func:`neuroana.backend.threads.fit_threads`: one thread on a saturated
machine or for small fits); the last column shows the count it picked (the load when it ran).
Timing follows ``benchmarks/_harness.py``: wall clock, same BLAS and torch threads on both sides
(``--threads 1 2`` gives one section per count), contenders interleaved, median (min-max) of
``--repeats`` runs, busy runs flagged (``--strict`` refuses them), OpenBLAS variables removed.

    python benchmarks/connectome.py                       # dense + neurons mask, 1 thread
    python benchmarks/connectome.py --threads 1 2 --cases dense neurons speckled
    python benchmarks/connectome.py --quick               # 595 x 200 x 20 (35 ROIs)
"""

from __future__ import annotations

if __name__ == "__main__":  # before numpy: drop OPENBLAS_CORETYPE / L2_SIZE and re-exec
    import _harness

    _harness.prepare()
else:  # imported (tests): the harness is a sibling module
    from benchmarks import _harness

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from neuroana.connectome import factor_match_score  # noqa: E402
from neuroana.connectome.ntf import ntf  # noqa: E402


def planted(n_rois, n_windows, n_animals, rank, noise, seed):
    rng = np.random.default_rng(seed)
    n_pairs = n_rois * (n_rois - 1) // 2
    facs = [rng.random((s, rank)) for s in (n_pairs, n_windows, n_animals)]
    x = np.einsum("ir,jr,kr->ijk", *facs)
    x += np.abs(rng.normal(0.0, noise * x.std(), x.shape))
    return x, facs


def make_mask(case, n_rois, shape, seed):
    """``None`` (dense), missing neurons per animal, or speckled entries."""
    rng = np.random.default_rng(seed + 1)
    if case == "dense":
        return None
    if case == "speckled":
        return rng.random(shape) >= 0.1
    iu = np.triu_indices(n_rois, 1)
    mask = np.ones(shape, bool)
    for k in range(shape[2]):
        gone = rng.choice(n_rois, size=max(1, n_rois // 10), replace=False)
        pair_gone = np.isin(iu[0], gone) | np.isin(iu[1], gone)
        mask[pair_gone, :, k] = False
    return mask


def rel_error(x, xh, mask):
    if mask is None:
        return float(np.linalg.norm(x - xh) / np.linalg.norm(x))
    return float(np.linalg.norm((x - xh)[mask]) / np.linalg.norm(x[mask]))


def run_tensorly(x, mask, rank, iters, seed):
    import tensorly as tl
    from tensorly.decomposition import non_negative_parafac_hals

    tl.set_backend("numpy")
    c0 = time.process_time()
    kw = dict(tol=0, init="random", random_state=seed)
    if mask is None:
        cp = non_negative_parafac_hals(x, rank, n_iter_max=iters, **kw)
    else:  # EM imputation: fill the masked entries with the model before every iteration
        filled = np.where(mask, x, x[mask].mean())
        cp = non_negative_parafac_hals(filled, rank, n_iter_max=1, **kw)
        for _ in range(iters - 1):
            filled = np.where(mask, x, tl.cp_to_tensor(cp))
            cp = non_negative_parafac_hals(filled, rank, n_iter_max=1, init=cp, tol=0)
    cpu = time.process_time() - c0
    rel = rel_error(x, tl.cp_to_tensor(cp), mask)
    w = np.asarray(cp.weights)
    factors = [np.asarray(f) * (w if n == 0 else 1) for n, f in enumerate(cp.factors)]
    return {"cpu": cpu, "rel": rel, "n_iter": iters, "factors": factors}


def run_ours(x, mask, rank, target, max_iter, seed, dtype, device="cpu"):
    used = []  # torch threads inside the fit (ntf's thread rule), read by the callback

    def stop(it, m):
        used.append(torch.get_num_threads())
        return m["rel_error"] <= target

    c0 = time.process_time()
    fit = ntf(
        x,
        rank,
        mask=mask,
        max_iter=max_iter,
        tol=0,
        device=device,
        dtype=dtype,
        random_state=seed,
        callbacks=[stop],
    )
    cpu = time.process_time() - c0
    factors = [f * (fit.weights if n == 0 else 1) for n, f in enumerate(fit.factors)]
    return {
        "cpu": cpu,
        "rel": fit.rel_error,
        "n_iter": fit.n_iter,
        "factors": factors,
        "threads": max(used) if used else "-",
    }


def section(x, facs, mask, case, threads, args):
    """One case at one thread count: interleaved runs, one table."""
    target = {}

    def tensorly_run():
        out = run_tensorly(x, mask, args.rank, args.iters, 0)
        target.setdefault("rel", out["rel"])
        return out

    fns = {"tensorly": tensorly_run}
    for dt in ("float64", "float32"):
        fns[dt] = lambda dt=dt: run_ours(x, mask, args.rank, target["rel"], args.iters * 5, 0, dt)
    timings = _harness.time_interleaved(fns, args.repeats)
    quiet = _harness.report_busy(timings, args)
    tl = timings["tensorly"]
    kind = "dense" if mask is None else f"masked {case} ({1 - mask.mean():.0%} missing)"
    anchor = "numpy" if mask is None else "numpy, EM-imputed mask"
    print(
        f"\n## {kind}, {threads} thread(s), to tensorly's relative error after {args.iters} "
        f"iterations ({target['rel']:.5f}){'' if quiet else ' -- BUSY, see above'}"
    )
    print(
        "| method | wall s (median) | CPU s (median) | iterations | rel. error | FMS vs truth "
        "| wall s min-max | wall-time ratio | torch threads used |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    names = {
        "tensorly": f"tensorly non_negative_parafac_hals ({anchor}, random init)",
        "float64": f"neuroana ntf (torch CPU, float64, {case}, random init)",
        "float32": f"neuroana ntf (torch CPU, float32, {case}, random init)",
    }
    for key, t in timings.items():
        r = t.result
        fms = factor_match_score(facs, r["factors"], consider_weights=False).score
        print(
            f"| {names[key]} | {t.median:.2f} | {r['cpu']:.2f} | {r['n_iter']} | {r['rel']:.5f} "
            f"| {fms:.3f} | {min(t.times):.2f}-{max(t.times):.2f} | {tl.median / t.median:.1f}x "
            f"| {r.get('threads', '-')} |"
        )
    return timings


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="595 x 200 x 20 tensor (35 ROIs)")
    p.add_argument("--iters", type=int, default=100, help="tensorly iterations (sets the target)")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument(
        "--cases", nargs="+", default=["dense", "neurons"], choices=["dense", "neurons", "speckled"]
    )
    _harness.add_arguments(p, repeats=3, threads=(1,))
    args = p.parse_args()
    n_rois, n_windows, n_animals = (35, 200, 20) if args.quick else (60, 600, 20)
    x, facs = planted(n_rois, n_windows, n_animals, args.rank, 0.1, 0)
    print(_harness.header("connectome NTF: neuroana ntf vs tensorly non_negative_parafac_hals"))
    print(f"tensor {x.shape}, rank {args.rank}, {args.repeats} interleaved repeats")
    ratios = []
    for threads in args.threads:
        print("\n" + _harness.set_threads(threads))
        for case in args.cases:
            mask = make_mask(case, n_rois, x.shape, 0)
            tim = section(x, facs, mask, case, threads, args)
            for dt in ("float64", "float32"):
                ratios.append(
                    (case, threads, dt, tim["tensorly"].median / tim[dt].median, tim[dt].fmt())
                )
    print("\n## summary: wall-time ratio tensorly / neuroana (target >= 5x)")
    print("| case | threads | dtype | neuroana wall s | ratio | >= 5x? |")
    print("|---|---|---|---|---|---|")
    for case, threads, dt, ratio, fmt in ratios:
        print(
            f"| {case} | {threads} | {dt} | {fmt} | {ratio:.1f}x | {'yes' if ratio >= 5 else 'NO'} |"
        )
    if not torch.cuda.is_available():
        print("\n(no CUDA device: GPU timings are in benchmarks/ntf_gpu.py, run by gpu_check.py)")


# ----------------------------------------------------------------------------- run_all.py
def parse_rows(out: str) -> list:
    """This script's rows of the ``run_all.py`` summary table, read from its printed output.

    One row per (case, threads, dtype) section: neuroana's median wall time to tensorly's
    relative error against tensorly's median wall time measured interleaved in the same run.
    """
    import re

    from _table import NUM, Row, fmt, met, search  # benchmarks/ is on sys.path

    shape = search(r"^tensor \(([\d, ]+)\)", out, "tensor").group(1).replace(", ", "x")
    rank = search(r"^tensor \([\d, ]+\), rank (\d+)", out, "rank").group(1)
    head = r"^## (.+?), (\d+) thread\(s\), to tensorly's relative error after \d+ iterations"
    row = r"^\| {name}[^|]*\| {num} \| {num} \| (\d+) \| {num} \|"
    sections = re.split(head, out, flags=re.M)
    rows = []
    for kind, threads, text in zip(sections[1::3], sections[2::3], sections[3::3], strict=True):
        tl = search(row.format(name="tensorly", num=NUM), text, f"tensorly row ({kind})")
        tl_wall = float(tl.group(1))
        for dt in ("float64", "float32"):
            name = rf"neuroana ntf \(torch CPU, {dt}"
            m = search(row.format(name=name, num=NUM), text, f"{dt} row ({kind})")
            wall, it, rel = float(m.group(1)), int(m.group(3)), float(m.group(4))
            rows.append(
                Row(
                    "connectome",
                    f"NTF wall s, {kind}, {shape} rank {rank}, to rel.err {rel:.4f} "
                    f"({dt}, {it} it)",
                    "tensorly non_negative_parafac_hals (same run)",
                    fmt(wall, " s"),
                    fmt(tl_wall, " s"),
                    f"{tl_wall / wall:.1f}x less",
                    ">= 5x less wall time",
                    met(tl_wall / wall >= 5),
                    threads,
                )
            )
    if not rows:
        raise LookupError("connectome: no timing section in the script's output")
    return rows


if __name__ == "__main__":
    main()
