"""Training-step throughput of the NVAE: our settings vs the same model with the speed-ups off.

    python bench/nvae.py [--steps 6] [--rounds 3] [--batch 32] [--preset cpu|gpu] [--compile] [--threads 1]

Baseline: fp32, contiguous (NCHW) tensors, eager. Ours: what the preset trains with on
this device. On CUDA that is bf16 autocast + channels_last + torch.compile. On the CPU
only channels_last applies (oneDNN's depthwise and 3x3 convolutions run faster in
NHWC); bf16 autocast is measured as an extra row but not used (slow without AMX), and
torch.compile is measured only with ``--compile`` (minutes of compilation on 2 cores).
Every step includes the spectral regulariser, the BN-scale penalty and KL balancing, as in
training (the model has weight-normalised convolutions, as in training).
Prints a table, then ``ratio=<ours/baseline>`` as the last line.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from reproductions.nvae import CARD  # noqa: E402
from reproductions.nvae.experiment import loss_fn  # noqa: E402
from reproductions.nvae.model import NVAE, NVAEConfig, count_params  # noqa: E402
from reproductions.nvae.regularizers import SpectralRegularizer  # noqa: E402


def images_per_second(mcfg: NVAEConfig, device: torch.device, batch: int, steps: int, *, channels_last: bool,
                      bf16: bool, compile: bool) -> float:
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = NVAE(mcfg).to(device).to(memory_format=fmt)
    opt = torch.optim.Adamax(model.parameters(), lr=1e-3)
    spectral = SpectralRegularizer(model)
    forward = torch.compile(model) if compile else model
    sizes = model.group_sizes().to(device)
    x = (torch.rand(batch, 1, 28, 28, device=device) < 0.13).float().contiguous(memory_format=fmt)
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    warmup = 3 if compile else 2
    for i in range(warmup + steps):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        with amp:
            loss, _ = loss_fn(forward, x, 0.5, True, sizes, spectral, 0.01, model, 0.01)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default=None, help="model size from this preset (default: gpu on CUDA, else cpu)")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3, help="alternate all variants this many times; report medians")
    ap.add_argument("--compile", action="store_true", help="also measure torch.compile on the CPU")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    preset = args.preset or ("gpu" if device.type == "cuda" else "cpu")
    mcfg = NVAEConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in CARD.presets[preset]["model"].items()})
    batch = args.batch or CARD.presets[preset]["batch_size"]
    cuda = device.type == "cuda"
    rows = [("baseline: fp32, NCHW, eager", dict(channels_last=False, bf16=False, compile=False)),
            ("channels_last", dict(channels_last=True, bf16=False, compile=False)),
            ("bf16 autocast", dict(channels_last=False, bf16=True, compile=False))]
    if cuda or args.compile:
        rows.append(("torch.compile", dict(channels_last=False, bf16=False, compile=True)))
    ours = dict(channels_last=True, bf16=cuda, compile=cuda)
    rows.append((f"ours: {'bf16 + channels_last + compile' if cuda else 'channels_last (fp32, eager)'}", ours))
    print(f"device={device} threads={torch.get_num_threads()} preset={preset} batch={batch} steps={args.steps} "
          f"params={count_params(NVAE(mcfg))}")
    print(f"{'variant':<44} {'images/s':>10} {'x baseline':>10}")
    # Variants alternate round by round so a shared machine's load drift hits all of them alike.
    samples: dict[str, list[float]] = {name: [] for name, _ in rows}
    for _ in range(args.rounds):
        for name, opts in rows:
            samples[name].append(images_per_second(mcfg, device, batch, args.steps, **opts))
    results = {name: sorted(v)[len(v) // 2] for name, v in samples.items()}
    base = results[rows[0][0]]
    for name, _ in rows:
        print(f"{name:<44} {results[name]:>10.1f} {results[name] / base:>10.2f}")
    print(f"ratio={results[rows[-1][0]] / results[rows[0][0]]:.3f}")


if __name__ == "__main__":
    main()
