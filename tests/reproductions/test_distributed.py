"""The data-parallel helpers every reproduction uses (ctx.sampler, ctx.shard, ctx.mean_over_ranks,
ctx.local_batch), tested without a reproduction: shards per rank, and two real gloo processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from reproductions.api import ConfigError, RunContext  # noqa: E402
from reproductions.devices import fp32_exact  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("n", [12, 13])
def test_shards_of_two_ranks_are_disjoint_and_cover_the_data(tmp_path, n):
    ranks = [RunContext(tmp_path, rank=r, world_size=2, seed=3) for r in (0, 1)]
    shards = [set(ctx.shard(n)) for ctx in ranks]
    assert not shards[0] & shards[1]
    assert shards[0] | shards[1] == set(range(n))
    assert abs(len(shards[0]) - len(shards[1])) <= 1


def test_sampler_of_two_ranks_is_disjoint_covers_the_data_and_reshuffles_per_epoch(tmp_path):
    data = list(range(20))
    ranks = [RunContext(tmp_path, rank=r, world_size=2, seed=3) for r in (0, 1)]
    samplers = [ctx.sampler(data, shuffle=True) for ctx in ranks]
    epoch0 = [list(s) for s in samplers]
    assert not set(epoch0[0]) & set(epoch0[1]) and sorted(epoch0[0] + epoch0[1]) == data
    for s in samplers:
        s.set_epoch(1)
    epoch1 = [list(s) for s in samplers]
    assert sorted(epoch1[0] + epoch1[1]) == data and epoch1 != epoch0
    # Same seed on every rank is what makes the shards agree: a rank with another seed would overlap.
    assert [list(RunContext(tmp_path, rank=0, world_size=2, seed=3).sampler(data))] == [epoch0[0]]


def test_sampler_pads_an_odd_dataset_by_repeating_unless_drop_last(tmp_path):
    """DistributedSampler's documented behaviour, which run.json's per-rank counts reveal."""
    data = list(range(7))
    padded = [list(RunContext(tmp_path, rank=r, world_size=2).sampler(data, shuffle=False)) for r in (0, 1)]
    assert [len(p) for p in padded] == [4, 4] and set(padded[0] + padded[1]) == set(data)
    dropped = [list(RunContext(tmp_path, rank=r, world_size=2).sampler(data, shuffle=False, drop_last=True))
               for r in (0, 1)]
    assert [len(d) for d in dropped] == [3, 3] and not set(dropped[0]) & set(dropped[1])


def test_local_batch_splits_the_global_batch_or_refuses(tmp_path):
    assert RunContext(tmp_path, world_size=2).local_batch(256) == 128
    assert RunContext(tmp_path).local_batch(33) == 33
    with pytest.raises(ConfigError, match="does not split over 3"):
        RunContext(tmp_path, world_size=3).local_batch(256)
    ctx = RunContext(tmp_path)
    ctx.count_examples(5)
    ctx.count_examples(7)
    assert ctx.examples_seen == 12


RANK_SCRIPT = textwrap.dedent('''
    import json, sys
    import torch.distributed as dist
    from reproductions.api import RunContext
    from reproductions import distributed

    rank, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    ctx = RunContext(out, rank=rank, world_size=2)
    ctx.count_examples(10 + rank)
    result = {"mean": ctx.mean_over_ranks(1.0 + 3.0 * rank),  # ranks hold 1.0 and 4.0
              "examples": distributed.gather_ints(ctx.examples_seen),
              "backend": distributed.backend_name(), "batch": ctx.local_batch(64)}
    dist.destroy_process_group()
    print(json.dumps(result))
''')


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built in")
def test_mean_over_ranks_and_gathered_counts_with_two_gloo_processes(tmp_path):
    port = str(free_port())
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", RANK_SCRIPT, str(rank), port, str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    for result in results:
        assert result["mean"] == pytest.approx(2.5)
        assert result["examples"] == [10, 11]
        assert result["backend"] == "gloo" and result["batch"] == 32


def test_fp32_exact_turns_tf32_off_inside_and_restores_after():
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    before = (matmul.allow_tf32, cudnn.allow_tf32)
    try:
        matmul.allow_tf32 = cudnn.allow_tf32 = True  # as the runner sets them on CUDA
        with fp32_exact():
            assert matmul.allow_tf32 is False and cudnn.allow_tf32 is False
        assert matmul.allow_tf32 is True and cudnn.allow_tf32 is True
        with pytest.raises(RuntimeError), fp32_exact():
            raise RuntimeError("a failed check")
        assert matmul.allow_tf32 is True and cudnn.allow_tf32 is True
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = before[0], before[1]
