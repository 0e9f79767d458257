"""Multi-process training with ``torch.distributed`` (``torchrun``-compatible; gloo on CPU).

The model code does not change: :func:`neuroana.pretrain.train.train_model` wraps the model in
``DistributedDataParallel`` when a process group is initialised, gives each rank its share of the same
global batch and normalises losses by the global token count. Under ``torchrun``::

    torchrun --nproc_per_node=4 my_script.py   # my_script calls init_from_env() then SpikeFormer.fit

Only rank 0 writes checkpoints.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import torch
import torch.distributed as dist


def init_from_env(backend: str | None = None) -> tuple[int, int, torch.device]:
    """Initialise the process group from ``torchrun``'s environment (``RANK``, ``WORLD_SIZE``, ...).

    Returns ``(rank, world_size, device)``; without those variables returns ``(0, 1, auto device)``
    and initialises nothing.

    Examples
    --------
    >>> from neuroana.pretrain.distributed import init_from_env
    >>> init_from_env()[:2]  # not under torchrun
    (0, 1)
    """
    from neuroana.backend import resolve_device

    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) < 2:
        return 0, 1, resolve_device("auto")
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend)
    rank = dist.get_rank()
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    return rank, dist.get_world_size(), device


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, fn: Callable, args: tuple) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        fn(rank, *args)
    finally:
        dist.destroy_process_group()


def spawn_gloo(fn: Callable, nprocs: int, *args) -> None:
    """Run ``fn(rank, *args)`` in ``nprocs`` local processes joined by a gloo group (CPU tests)."""
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(nprocs, _free_port(), fn, args), nprocs=nprocs, join=True)
