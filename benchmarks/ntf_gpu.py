"""NTF at paper scale on a GPU: ms per iteration, a batched rank sweep, peak memory.

Paper scale: 17955 pairs x 1000 windows x 21 animals, rank 10, float32 (tensorly's torch backend:
31.2 ms/iteration on an H200; the memory-bandwidth floor of two passes over the 1.5 GB tensor is
about 1 ms). Goals: <= 3 ms/iteration; ranks 2-12 x 16 restarts (each rank one batched fit)
<= 15 s; peak GPU memory reported next to the tensor's own size (no Khatri-Rao product of the
large mode is formed, so the excess stays a few percent of the tensor).

The tensor is planted on the device (a host copy would be 3 GB of float64) and fitted through the
solver core (:mod:`neuroana.connectome._hals`, the code ``ntf`` runs after moving the data). The
same code runs on the CPU at a small size (``--device cpu --small``; tests/connectome/test_ntf.py
runs it that way), so the CUDA path is exercised without a card. ``--graph`` also times the
iteration captured in a CUDA graph (one launch instead of ~10^3 small HALS kernels).

    python benchmarks/ntf_gpu.py                 # on the GPU machine
    python benchmarks/ntf_gpu.py --device cpu --small
The last line is ``RESULT {json}`` (parsed by gpu_check.py and the test).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from neuroana.connectome._hals import Problem, State, iterate, rebalance


def planted(shape, rank, device, seed=0, noise=0.1):
    g = torch.Generator(device=device).manual_seed(seed)
    facs = [torch.rand((s, rank), generator=g, device=device) for s in shape]
    x = torch.einsum("ir,jr,kr->ijk", *facs)
    x += (noise * x.std()) * torch.randn(x.shape, generator=g, device=device).abs_()
    return x


def start(prob, shape, rank, restarts, device, seed):
    g = torch.Generator(device=device).manual_seed(seed)
    factors = [torch.rand((restarts, s, rank), generator=g, device=device) for s in shape]
    inner, model = prob.inner_and_norm(factors)
    lam = (inner / model).clamp_min(1e-12) ** (1.0 / len(shape))
    factors = [f * lam.to(f.dtype).view(-1, 1, 1) for f in factors]
    st = State(factors, extrapolate=True)
    rebalance(st)
    return st


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def ms_per_iteration(prob, st, n_inner, n, device):
    for _ in range(3):
        iterate(prob, st, n_inner)
    sync(device)
    t = time.perf_counter()
    for _ in range(n):
        iterate(prob, st, n_inner)
    sync(device)
    return (time.perf_counter() - t) / n * 1e3


def graphed_ms_per_iteration(prob, st, n_inner, n, device):
    """The same iteration replayed from a CUDA graph; state copied back between replays."""
    for _ in range(3):
        iterate(prob, st, n_inner)
    torch.cuda.synchronize()
    inputs = (st.prev, st.hat, st.point, [st.loss, st.beta, st.beta_bar])
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        iterate(prob, st, n_inner)  # warm-up on the side stream
    torch.cuda.current_stream().wait_stream(stream)
    st.prev, st.hat, st.point = inputs[0], inputs[1], inputs[2]
    st.loss, st.beta, st.beta_bar = inputs[3]
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        iterate(prob, st, n_inner)
    outputs = (st.prev, st.hat, st.point, [st.loss, st.beta, st.beta_bar])

    def step():
        graph.replay()
        for ins, outs in zip(inputs, outputs, strict=True):
            for a, b in zip(ins, outs, strict=True):
                a.copy_(b)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / n * 1e3


def rank_sweep(prob, shape, ranks, restarts, max_iter, tol, device):
    """Every rank as one batched fit of ``restarts`` restarts; returns seconds and per-rank rows."""
    rows = []
    sync(device)
    t0 = time.perf_counter()
    for r in ranks:
        st = start(prob, shape, r, restarts, device, seed=r)
        prev = None
        for it in range(1, max_iter + 1):
            loss = iterate(prob, st, 8)
            if it % 10 == 0:  # one host sync per 10 iterations
                if prev is not None and float(((prev - loss).abs() / prev).max()) <= tol:
                    break
                prev = loss.clone()
        rel = (loss.min() / prob.norm2).sqrt().item()
        rows.append({"rank": r, "iterations": it, "best_rel_error": rel})
    sync(device)
    return time.perf_counter() - t0, rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--small", action="store_true", help="300 x 60 x 7, ranks 2-4, 3 restarts")
    p.add_argument("--iters", type=int, default=50, help="timed iterations")
    p.add_argument("--sweep-max-iter", type=int, default=200)
    p.add_argument("--sweep-tol", type=float, default=1e-5)
    p.add_argument("--graph", action="store_true", help="also time a CUDA-graph replay")
    a = p.parse_args(argv)
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("ntf_gpu: no CUDA device (use --device cpu --small to run the code here)")
    if a.small:
        shape, rank, ranks, restarts = (300, 60, 7), 4, [2, 3, 4], 3
    else:
        shape, rank, ranks, restarts = (17955, 1000, 21), 10, list(range(2, 13)), 16
    if dev.type == "cpu":
        torch.set_num_threads(1)  # the small CPU run: one thread (a shared box)
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "CPU"
    print(f"# NTF at {'small' if a.small else 'paper'} scale on {name}, torch {torch.__version__}")
    x = planted(shape, rank, dev)
    tensor_gb = x.numel() * x.element_size() / 1e9
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    prob = Problem(x, None)
    result = {"device": name, "shape": list(shape), "rank": rank, "tensor_gb": tensor_gb}
    for restarts_timed in (1, restarts):
        st = start(prob, shape, rank, restarts_timed, dev, seed=0)
        ms = ms_per_iteration(prob, st, 8, a.iters, dev)
        result[f"ms_per_iteration_{restarts_timed}_restarts"] = ms
        print(f"rank {rank}, {restarts_timed} restart(s): {ms:.2f} ms/iteration (8 HALS sweeps)")
    st = start(prob, shape, rank, 1, dev, seed=0)
    result["ms_per_iteration_1_restart_2_sweeps"] = ms_per_iteration(prob, st, 2, a.iters, dev)
    print(
        f"rank {rank}, 1 restart, 2 sweeps: {result['ms_per_iteration_1_restart_2_sweeps']:.2f} ms"
    )
    if a.graph and dev.type == "cuda":
        try:
            st = start(prob, shape, rank, 1, dev, seed=0)
            result["ms_per_iteration_graph"] = graphed_ms_per_iteration(prob, st, 8, a.iters, dev)
            print(f"CUDA graph replay: {result['ms_per_iteration_graph']:.2f} ms/iteration")
        except RuntimeError as err:  # capture problems are reported, not fatal
            print(f"CUDA graph capture failed: {err}")
    seconds, rows = rank_sweep(prob, shape, ranks, restarts, a.sweep_max_iter, a.sweep_tol, dev)
    result["sweep_seconds"] = seconds
    result["sweep"] = rows
    print(f"rank sweep {ranks[0]}-{ranks[-1]} x {restarts} restarts: {seconds:.2f} s")
    for row in rows:
        print(
            f"  rank {row['rank']}: {row['iterations']} it, best rel.err {row['best_rel_error']:.4f}"
        )
    if dev.type == "cuda":
        peak = (torch.cuda.max_memory_allocated() - base) / 1e9
        result["peak_gb_beyond_tensor"] = peak
        print(f"peak GPU memory beyond the tensor: {peak:.3f} GB (tensor {tensor_gb:.2f} GB)")
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
