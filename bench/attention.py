"""Benchmark: our attention core (`reproductions.self_attention.attention.attend`) vs SDPA.

Forward + backward of the attention core (q, k, v of shape (B, H, T, D) -> output), the
part the two differ in; projections are identical and left out. "ours" is the very
function every reproduction's attention module calls, not a copy. Causal mask. Sequence
lengths 128, 256, ..., up to ``--max-len`` (16384 by default on CUDA, 2048 on CPU); a
length that runs out of memory prints ``nan``.

Peak memory:
* CUDA: ``torch.cuda.max_memory_allocated`` above the memory held before the step.
* CPU: peak resident set size (VmHWM from /proc/self/status, reset before each
  measurement by writing 5 to /proc/self/clear_refs) minus the RSS before the step.
  Freed heap is returned first (glibc ``malloc_trim``) so one case does not reuse the
  other's resident pages. Coarser than the CUDA number (page granularity, allocator
  caching), Linux only; "n/a" elsewhere.

On CUDA the SDPA column uses the flash / memory-efficient backends (``--dtype bf16`` by
default there) and TFLOP/s is printed beside the H100's dense bf16 peak (~989 TFLOP/s).
The last line is ``ratio=<our time / SDPA time at T=2048>``.

    python bench/attention.py --max-len 2048          # CPU
    python bench/attention.py --device cuda           # on the GPU machine
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reproductions.self_attention.attention import attend  # noqa: E402
from reproductions.self_attention.model import causal_mask  # noqa: E402

H100_BF16_DENSE_TFLOPS = 989.0


def ours(q, k, v, mask):
    """The repository's attention core on (B, H, T, D) tensors, with the boolean causal mask."""
    return attend(q, k, v, mask)


def sdpa(q, k, v, mask):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def _rss_kib(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else None


def _reset_cpu_peak() -> bool:
    """Hand freed heap back to the OS (else the next case reuses resident pages and shows ~0), reset VmHWM."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure(fn, b, h, t, d, device, dtype, reps: int) -> tuple[float, float | None]:
    """(median seconds per forward+backward, peak extra memory in MiB or None)."""
    g = torch.Generator(device="cpu").manual_seed(0)
    q, k, v = (torch.randn(b, h, t, d, generator=g).to(device, dtype).requires_grad_() for _ in range(3))
    mask = causal_mask(t, device)
    up = torch.randn(b, h, t, d, generator=g).to(device, dtype)

    def step():
        out = fn(q, k, v, mask)
        out.backward(up)
        q.grad = k.grad = v.grad = None

    step()  # warm-up (kernel selection, allocator)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        ok = _reset_cpu_peak()
        base = _rss_kib("VmRSS") if ok else None
    step()
    if cuda:
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        hwm = _rss_kib("VmHWM")
        peak = (hwm - base) / 1024 if base is not None and hwm is not None else None
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2], peak


def flops_fwd_bwd(b, h, t, d) -> float:
    """Matmul FLOPs of causal attention fwd+bwd: 2 matmuls fwd, 4 bwd (+ recompute ignored), half masked."""
    return 2.0 * b * h * t * t * d * (2 + 4) / 2


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--max-len", type=int, default=None, help="largest sequence length (default 16384 CUDA, 2048 CPU)")
    p.add_argument("--batch", type=int, default=None, help="default 4 on CUDA, 1 on CPU")
    p.add_argument("--heads", type=int, default=None, help="default 16 on CUDA, 4 on CPU")
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default=None, help="default bf16 CUDA, fp32 CPU")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions (default 10 CUDA, 3 CPU)")
    a = p.parse_args(argv)
    device = torch.device(a.device)
    cuda = device.type == "cuda"
    max_len = a.max_len or (16384 if cuda else 2048)
    b, h = a.batch or (4 if cuda else 1), a.heads or (16 if cuda else 4)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[a.dtype or ("bf16" if cuda else "fp32")]
    reps = a.reps or (10 if cuda else 3)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU, {torch.get_num_threads()} threads"
    mem_note = "CUDA max_memory_allocated" if cuda else "peak RSS delta (VmHWM after clear_refs)"
    print(f"attention core fwd+bwd, causal, B={b} H={h} D={a.head_dim} {str(dtype).split('.')[-1]} on {name}")
    print(f"memory: {mem_note}, MiB above the inputs")
    header = f"{'T':>6} {'ours ms':>10} {'sdpa ms':>10} {'ours/sdpa':>9} {'ours MiB':>9} {'sdpa MiB':>9}"
    if cuda:
        header += f" {'ours TF/s':>9} {'sdpa TF/s':>9} {'sdpa %peak':>10}"
    print(header)
    lengths = [t for t in (128, 256, 512, 1024, 2048, 4096, 8192, 16384) if t <= max_len]
    ratio_at_2048 = None
    for t in lengths:
        row = {}
        for label, fn in (("ours", ours), ("sdpa", sdpa)):
            try:
                row[label] = measure(fn, b, h, t, a.head_dim, device, dtype, reps)
            except torch.OutOfMemoryError:
                row[label] = (math.nan, None)
                if cuda:
                    torch.cuda.empty_cache()
        (to, mo), (ts, ms) = row["ours"], row["sdpa"]
        fmt_mem = lambda m: f"{m:9.1f}" if m is not None else f"{'n/a':>9}"  # noqa: E731
        line = f"{t:>6} {1e3 * to:>10.2f} {1e3 * ts:>10.2f} {to / ts:>9.2f} {fmt_mem(mo)} {fmt_mem(ms)}"
        if cuda:
            f = flops_fwd_bwd(b, h, t, a.head_dim)
            line += f" {f / to / 1e12:>9.1f} {f / ts / 1e12:>9.1f} {100 * f / ts / 1e12 / H100_BF16_DENSE_TFLOPS:>9.1f}%"
        print(line)
        if t == 2048:
            ratio_at_2048 = to / ts
    if cuda:
        print(f"H100 dense bf16 peak: {H100_BF16_DENSE_TFLOPS:.0f} TFLOP/s (FLOPs counted: causal half of 6 matmuls)")
    if ratio_at_2048 is None:
        print("(T=2048 not measured: raise --max-len)")
        print("ratio=nan")
    else:
        print(f"ratio={ratio_at_2048:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
