"""Data parallelism for the RL trainer: the same code under `accelerate launch` / torchrun (rl.md section 2).

    accelerate launch --multi_gpu --num_processes 2 $(which threadweaver) train rl --config rl.yaml

Every process holds the whole policy. A step's prompts are dealt out by position (position p goes to rank
p mod world), each rank rolls out all k rollouts of its prompts (a group never spans ranks, so the group
advantage is local), grades and packs them; T, the completion tokens of the WHOLE step, is summed over
ranks, each rank's loss is its tokens' share over that T, and the gradients are summed (not averaged)
over ranks before clipping, so every rank takes the identical optimizer step a single process would take
on the whole batch. Sampling seeds follow the global position, so a 2-process run rolls out exactly the
trajectories of a 1-process run (tests/trainers/test_accelerate_launch.py). Rank 0 writes the log and
the checkpoints. Backend: gloo on CPU, nccl on CUDA (one GPU per process: LOCAL_RANK).
"""

from __future__ import annotations

import os


def world() -> tuple[int, int]:
    """(rank, world size); joins the process group when launched with WORLD_SIZE > 1."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return 0, 1
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def local_device(name: str) -> str:
    """The device of this process: under data parallelism on CUDA, GPU LOCAL_RANK."""
    if name in ("auto", "cuda") and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch

        if torch.cuda.is_available():
            return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return name


def my_positions(n: int, rank: int, size: int) -> list[int]:
    """The step positions (0..n-1) this rank rolls out."""
    return [p for p in range(n) if p % size == rank]


def all_sum(value: float, size: int) -> float:
    if size <= 1:
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item())


def all_gather(items: list, size: int) -> list[list]:
    """Every rank's list (picklable objects of our own processes), in rank order."""
    if size <= 1:
        return [items]
    import torch.distributed as dist

    out: list = [None] * size
    dist.all_gather_object(out, items)
    return out


def sum_grads(params) -> None:
    """Sum every parameter's gradient over ranks (a rank with nothing to train contributes zeros)."""
    import torch
    import torch.distributed as dist

    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)


def barrier(size: int) -> None:
    if size > 1:
        import torch.distributed as dist

        dist.barrier()
