"""Picking the device, configuring it, and seeding every random number generator.

``auto`` means CUDA if present, then Apple's MPS, then the CPU; the choice comes with
the reason, which the runner prints and records. On CUDA the runner turns on TF32
matmuls and bf16 autocast (the experiment's ``ctx.autocast()``), because that is how
an H100 reaches its throughput; on the CPU it asks for deterministic algorithms so that
two runs with the same seed give bit-identical numbers.
"""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass
from typing import Any, Iterator

from reproductions.errors import RunnerUsageError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class DeviceChoice:
    device: Any  # torch.device
    reason: str  # why this one: printed and kept in run.json

    @property
    def type(self) -> str:
        return self.device.type


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def choose_device(requested: str = "auto", *, local_rank: int = 0) -> DeviceChoice:
    """The device to run on and why; an explicit request for a missing device is a usage error."""
    import torch

    if requested not in DEVICE_CHOICES:
        raise RunnerUsageError(f"unknown device {requested!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    cuda, mps = torch.cuda.is_available(), _mps_available()
    if requested == "cuda" and not cuda:
        raise RunnerUsageError("--device cuda requested but torch sees no CUDA device "
                               f"(torch {torch.__version__}, built with CUDA {torch.version.cuda})")
    if requested == "mps" and not mps:
        raise RunnerUsageError("--device mps requested but the MPS backend is not available")
    if requested == "cuda" or (requested == "auto" and cuda):
        index = local_rank % torch.cuda.device_count()
        device = torch.device("cuda", index)
        why = "requested" if requested == "cuda" else "auto: CUDA is available"
        return DeviceChoice(device, f"{why} ({torch.cuda.get_device_name(index)})")
    if requested == "mps" or (requested == "auto" and mps):
        why = "requested" if requested == "mps" else "auto: no CUDA, MPS (Apple GPU) is available"
        return DeviceChoice(torch.device("mps"), why)
    why = "requested" if requested == "cpu" else "auto: no CUDA or MPS device found"
    return DeviceChoice(torch.device("cpu"), why)


def default_preset(presets: dict[str, Any]) -> str:
    """``gpu`` when CUDA is present and the card has it, else ``cpu``, else the first preset."""
    import torch

    for preset in (("gpu", "cpu") if torch.cuda.is_available() else ("cpu",)):
        if preset in presets:
            return preset
    return next(iter(presets))


def configure(choice: DeviceChoice) -> dict[str, Any]:
    """Backend switches for the chosen device; returns what was set, for run.json."""
    import torch

    if choice.type == "cuda":
        torch.cuda.set_device(choice.device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        return {"amp": "bf16", "tf32": True, "pin_memory": True, "deterministic": False}
    return {"amp": None, "tf32": False, "pin_memory": False, "deterministic": choice.type == "cpu"}


@contextlib.contextmanager
def fp32_exact() -> Iterator[None]:
    """Full-precision fp32 matmuls and convolutions inside, whatever the runner set for speed.

    On CUDA the runner allows TF32 (10-bit mantissa products), which puts ~1e-3 errors
    into any fp32 comparison; exactness checks (``max_abs_err_vs_sdpa``) run inside this
    block. The previous switches come back on exit, also after an exception.
    """
    import torch

    # Only the allow_tf32 switches: torch 2.13 refuses get/set_float32_matmul_precision once
    # these legacy flags were set (the runner sets them on CUDA).
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def seed_everything(seed: int, *, deterministic: bool) -> None:
    """Seed python, numpy and torch; on request make torch pick deterministic kernels."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        # Needed by cuBLAS when deterministic mode is ever used on CUDA; harmless on the CPU.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)


def describe(choice: DeviceChoice) -> dict[str, Any]:
    """Device facts for run.json: type, name, compute capability, memory, count."""
    import platform

    import torch

    info: dict[str, Any] = {"type": choice.type, "reason": choice.reason, "str": str(choice.device)}
    if choice.type == "cuda":
        props = torch.cuda.get_device_properties(choice.device)
        info.update(name=props.name, capability=f"{props.major}.{props.minor}",
                    memory_gib=round(props.total_memory / 2**30, 1), count=torch.cuda.device_count())
    elif choice.type == "mps":
        info.update(name=f"Apple MPS ({platform.machine()})")
    else:
        info.update(name=_cpu_name(), threads=torch.get_num_threads())
    return info


def _cpu_name() -> str:
    """The CPU model ("AMD EPYC 7B13") where the OS tells it, else the architecture."""
    import platform

    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
