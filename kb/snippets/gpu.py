"""GPU policy: ``--gpu`` demands a usable CUDA device, and what the report records about it."""

from __future__ import annotations

import os

from kb.errors import KbError
from kb.snippets.environment import Environment


class NoCudaError(KbError):
    """--gpu on a machine (or cluster) without a usable CUDA device."""


def require_cuda(env: Environment, where: str = "this machine") -> None:
    """Fail at once (exit 2) unless CUDA snippets can run; the message says what is missing."""
    if not env.gpus:
        raise NoCudaError(
            f"--gpu needs a CUDA device, and {where} has none (no NVIDIA GPU found via nvidia-smi); "
            "run without --gpu to validate on the CPU (CUDA snippets are then skipped), or use --ray ADDRESS"
        )
    if env.cuda is None:
        raise NoCudaError(
            f"--gpu needs a CUDA build of torch, but {env.executable} has torch {env.torch or '(not installed)'} "
            "built without CUDA; point the cuda profile's interpreter at an environment with CUDA torch"
        )


def devices(env: Environment) -> list[str]:
    """Device ids a local run may hand out (one snippet per device at a time).

    A CUDA_VISIBLE_DEVICES already set (by a batch scheduler, say) is respected: only those are used.
    """
    if not env.cuda_usable:
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and not d.strip().startswith("-")]
    return [str(i) for i in range(env.gpu_count)]


def gpu_record(env: Environment) -> dict:
    """What results.json says about the GPUs (name, driver, CUDA, torch)."""
    return {
        "gpu": env.gpu,
        "gpu_count": env.gpu_count,
        "driver": env.driver,
        "cuda": env.cuda,
        "torch": env.torch,
        "gpus": env.gpus,
    }
