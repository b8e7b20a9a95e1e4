"""The reproduction runner, tested on a tiny linear-regression reproduction written by a fixture.

The toy package lives in a temp folder and is registered the way a plugin would be
(``$DIGEST_REPRODUCTIONS``), so these tests exercise discovery, the CLI and the torchrun
path without depending on the real reproductions.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from reproductions import cli, devices, registry, run_request, runner, terminal  # noqa: E402
from reproductions.errors import RunnerUsageError, UnknownReproduction  # noqa: E402
from reproductions.runner import RunRequest  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

TOY_INIT = '''
from reproductions.api import Card, Claim

CARD = Card(
    name="toy-linear", paper_id="0000.00001", title="A linear model fits a line", authors="Test",
    summary="Least squares by SGD.", measures="final training MSE",
    claims=(Claim(metric="final_loss", value=0.001, unit="MSE", source="Table 1", higher_is_better=False),),
    presets={
        "smoke": {"steps": 12, "lr": 0.05, "fail": False, "interrupt_at": -1, "sigterm_at": -1, "need_data": False},
        "cpu": {"steps": 40, "lr": 0.05, "fail": False, "interrupt_at": -1, "sigterm_at": -1, "need_data": False},
        "gpu": {"steps": 400, "lr": 0.05, "fail": False, "interrupt_at": -1, "sigterm_at": -1, "need_data": False},
    },
)
'''

TOY_EXPERIMENT = '''
import os
import random
import signal

import numpy as np
import torch

from reproductions.data import load_sst2


def run(config, ctx):
    if config["need_data"]:
        load_sst2(ctx.data_dir)
    x = torch.randn(32, 3)  # seeded by the runner: the data differ by seed
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1 * torch.randn(32, 1)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"])
    state = {"step": 0}
    saved = ctx.load_checkpoint()
    if saved is not None:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        state["step"] = saved["step"]
        ctx.note("resumed_from_step", saved["step"])
    ctx.autosave(lambda: {"model": model.state_dict(), "opt": opt.state_dict(), "step": state["step"]})
    net = ctx.wrap_model(model)
    rows = list(ctx.shard(len(x)))
    with ctx.progress(config["steps"], "fit") as advance:
        for step in range(state["step"], config["steps"]):
            if step == config["interrupt_at"] and not ctx.resume:
                raise KeyboardInterrupt
            if step == config["sigterm_at"] and not ctx.resume:
                os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler preempting the job would
            if config["fail"] and step == 3:
                raise ValueError("the toy failed on purpose")
            with ctx.autocast():
                loss = ((net(x[rows]) - y[rows]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            ctx.count_examples(len(rows))
            state["step"] = step + 1
            ctx.log(step, loss=loss.item())
            advance(1)
    ctx.note("data", "synthetic: 32 points on a plane")
    with torch.no_grad():
        final = ((model(x) - y) ** 2).mean().item()
    return {"final_loss": final, "py_draw": random.random(), "np_draw": float(np.random.rand()),
            "weights": model.weight.flatten().tolist()}
'''


SEEDED_TOY = '''
"""A reproduction that loops over its seeds itself (as one comparing arms over seeds does)."""
import torch

from reproductions.api import Card

CARD = Card(name="toy-seeds", paper_id="0000.00002", title="Seeds inside", authors="Test", summary="",
            measures="a draw per seed", presets={"smoke": {"seeds": 2}, "cpu": {"seeds": 3}, "gpu": {"seeds": 5}})


def run(config, ctx):
    draws = {}
    for seed in config["seeds"]:
        torch.manual_seed(seed)
        draws[str(seed)] = torch.rand(()).item()
        ctx.log(seed, draw=draws[str(seed)])
    return {"seeds_seen": list(config["seeds"]), "draw": {"mean": sum(draws.values()) / len(draws), "per_seed": draws}}
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """Register the toy reproduction through $DIGEST_REPRODUCTIONS; return its name."""
    pkg = tmp_path / "plugins" / "toy_linear_repro"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(TOY_INIT))
    (pkg / "experiment.py").write_text(textwrap.dedent(TOY_EXPERIMENT))
    (pkg.parent / "toy_seeds_repro").mkdir()
    (pkg.parent / "toy_seeds_repro" / "__init__.py").write_text(SEEDED_TOY)
    monkeypatch.syspath_prepend(str(pkg.parent))
    monkeypatch.setenv(registry.EXTRA_ENV, "toy_linear_repro, toy_seeds_repro")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(pkg.parent), str(REPO)]))
    for mod in ("toy_linear_repro", "toy_linear_repro.experiment", "toy_seeds_repro"):
        sys.modules.pop(mod, None)
    return "toy-linear"


def request(name, out, **kw):
    return RunRequest(name=name, out=out, preset=kw.pop("preset", "smoke"), device="cpu", progress=False, **kw)


def quiet(_line):
    pass


# ---------------------------------------------------------------- registry and CLI errors

def test_registry_finds_toy_without_importing_its_experiment(toy):
    entries = registry.discover()
    assert toy in entries
    assert entries[toy].card.paper_id == "0000.00001"
    assert "toy_linear_repro.experiment" not in sys.modules
    assert callable(entries[toy].load_run())


def test_unknown_name_lists_known_ones_and_exits_2(toy, capsys):
    with pytest.raises(UnknownReproduction, match="toy-linear"):
        registry.get("no-such-paper")
    assert cli.main(["run", "no-such-paper"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "unknown reproduction 'no-such-paper'" in err and "toy-linear" in err


def test_list_json_shows_presets_and_measures(toy, capsys):
    assert cli.main(["list", "--json"]) == 0
    items = {item["name"]: item for item in json.loads(capsys.readouterr().out)}
    assert items[toy]["presets"] == ["smoke", "cpu", "gpu"]
    assert items[toy]["measures"] == "final training MSE"


# ---------------------------------------------------------------- --set

def test_set_values_parse_as_json_else_string():
    assert run_request.parse_sets(["a=true", "b=3", "c=1e-3", "d=[1, 2]", "e=hello", "f=null", "g=a=b"]) == {
        "a": True, "b": 3, "c": 0.001, "d": [1, 2], "e": "hello", "f": None, "g": "a=b"}
    with pytest.raises(RunnerUsageError, match="key=value"):
        run_request.parse_sets(["novalue"])


def test_set_keys_and_types_are_checked(toy):
    card = registry.get(toy).card
    config, opts = run_request.resolve_config(card, "smoke", {"lr": 1, "steps": 5, "compile": True})
    assert config["lr"] == 1 and config["steps"] == 5 and "compile" not in config
    assert opts["compile"] is True
    with pytest.raises(RunnerUsageError, match="unknown --set key.*lrate.*config keys: steps, lr"):
        run_request.resolve_config(card, "smoke", {"lrate": 0.1})
    with pytest.raises(RunnerUsageError, match="expected a value like 12"):
        run_request.resolve_config(card, "smoke", {"steps": "many"})
    with pytest.raises(RunnerUsageError, match="expected a value like 12"):
        run_request.resolve_config(card, "smoke", {"steps": 2.5})
    with pytest.raises(RunnerUsageError, match="compile= expects true or false"):
        run_request.resolve_config(card, "smoke", {"compile": "yes"})
    with pytest.raises(RunnerUsageError, match="no preset 'huge'"):
        run_request.resolve_config(card, "huge", {})


def test_cli_rejects_unknown_set_key_with_exit_2(toy, tmp_path, capsys):
    assert cli.main(["run", toy, "--preset", "smoke", "--set", "nope=1", "--out", str(tmp_path)]) == 2
    assert "unknown --set key(s) for toy-linear: nope" in capsys.readouterr().err
    assert not (tmp_path / toy).exists()  # no run folder for a usage error


# ---------------------------------------------------------------- device choice

def test_device_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    cpu = devices.choose_device("auto")
    assert cpu.type == "cpu" and "no CUDA or MPS" in cpu.reason
    assert devices.default_preset({"smoke": {}, "cpu": {}, "gpu": {}}) == "cpu"

    monkeypatch.setattr(devices, "_mps_available", lambda: True)
    mps = devices.choose_device("auto")
    assert mps.type == "mps" and "MPS" in mps.reason
    assert devices.choose_device("cpu").type == "cpu"

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: f"Fake H100 #{i}")
    cuda = devices.choose_device("auto", local_rank=1)
    assert str(cuda.device) == "cuda:1" and "CUDA is available" in cuda.reason and "Fake H100 #1" in cuda.reason
    assert devices.default_preset({"smoke": {}, "cpu": {}, "gpu": {}}) == "gpu"


def test_explicit_missing_device_is_a_usage_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    with pytest.raises(RunnerUsageError, match="no CUDA device"):
        devices.choose_device("cuda")
    with pytest.raises(RunnerUsageError, match="MPS"):
        devices.choose_device("mps")
    with pytest.raises(RunnerUsageError, match="unknown device"):
        devices.choose_device("tpu")


# ---------------------------------------------------------------- a run and its folder

def test_run_folder_holds_record_metrics_and_plot(toy, tmp_path):
    result = runner.run(request(toy, tmp_path), echo=quiet)
    assert result.status == "completed" and result.exit_code == 0
    run_dir = result.run_dir
    assert run_dir.parent == tmp_path / toy
    rec = json.loads((run_dir / "run.json").read_text())
    for key in ("name", "paper_id", "preset", "config", "seed", "seeds", "device", "versions", "git",
                "started_at", "finished_at", "duration_s", "status", "metrics", "notes", "claims", "data"):
        assert key in rec, key
    assert rec["config"] == {"steps": 12, "lr": 0.05, "fail": False, "interrupt_at": -1, "sigterm_at": -1, "need_data": False}
    assert rec["device"]["type"] == "cpu" and rec["device"]["reason"] == "requested"
    assert rec["versions"]["torch"] == torch.__version__
    assert rec["notes"]["data"].startswith("synthetic")
    claim = rec["claims"][0]
    assert claim["metric"] == "final_loss" and claim["paper"]["value"] == 0.001 and claim["kind"] == "value"
    loss = rec["metrics"]["final_loss"]
    assert claim["estimate"] == pytest.approx(loss) and claim["n_seeds"] == 1
    # one seed, no tolerance: above the paper's loss is the worse side, below it is "better than the paper"
    assert claim["verdict"] == ("contradicted" if loss > 0.001 else "inconclusive")
    assert rec["exploratory"] is None and rec["analysis"]["status"] == "computed"
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(12))
    assert rows[-1]["loss"] < rows[0]["loss"]  # it did learn
    png = (run_dir / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    assert "curves.png" in rec["artefacts"] and "metrics.jsonl" in rec["artefacts"]


def test_same_seed_is_bit_identical_and_another_seed_differs(toy, tmp_path):
    a = runner.run(request(toy, tmp_path, seed=7), echo=quiet)
    b = runner.run(request(toy, tmp_path, seed=7), echo=quiet)
    c = runner.run(request(toy, tmp_path, seed=8), echo=quiet)
    assert a.run_dir != b.run_dir
    assert a.metrics == b.metrics  # exact: floats compared bit for bit (python, numpy and torch draws)

    def losses(r):
        return [json.loads(line)["loss"] for line in (r.run_dir / "metrics.jsonl").read_text().splitlines()]

    assert losses(a) == losses(b)
    assert c.metrics["final_loss"] != a.metrics["final_loss"]
    assert c.metrics["py_draw"] != a.metrics["py_draw"] and c.metrics["np_draw"] != a.metrics["np_draw"]


def test_several_seeds_give_mean_std_and_per_seed_metrics(toy, tmp_path):
    result = runner.run(request(toy, tmp_path, seed=3, seeds=3), echo=quiet)
    rec = result.record
    assert rec["seeds"] == [3, 4, 5]
    per_seed = [rec["metrics_by_seed"][s]["final_loss"] for s in ("3", "4", "5")]
    assert len(set(per_seed)) == 3
    import statistics
    assert rec["metrics"]["final_loss"] == pytest.approx(statistics.fmean(per_seed))
    assert rec["metrics_std"]["final_loss"] == pytest.approx(statistics.stdev(per_seed))
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["seed"] for r in rows} == {3, 4, 5}


def test_experiment_that_loops_seeds_itself_is_called_once_with_the_list(toy, tmp_path):
    result = runner.run(request("toy-seeds", tmp_path, seed=4, seeds=3), echo=quiet)
    assert result.status == "completed"
    assert result.record["config"]["seeds"] == [4, 5, 6] == result.metrics["seeds_seen"]
    assert result.record["metrics_by_seed"] == {} and set(result.metrics["draw"]["per_seed"]) == {"4", "5", "6"}
    lines = terminal.summary_lines(result)
    assert lines[1] == "  exploratory: not the preset's pre-registered run (--seeds 3, --seed 4); its claims feed no verdict"
    assert lines[2].startswith("  draw = ")  # the {"mean": ...} dict is a headline
    preset_count = runner.run(request("toy-seeds", tmp_path, seed=0), echo=quiet)
    assert preset_count.metrics["seeds_seen"] == [0, 1]


def test_experiment_with_seeds_key_gets_the_list(toy, tmp_path):
    config = {"seeds": 3, "lr": 0.1}
    assert run_request.plan_seeds(config, 10, None) == [10, 11, 12] and config["seeds"] == [10, 11, 12]
    config = {"seeds": 5}
    assert run_request.plan_seeds(config, 0, 2) == [0, 1] and config["seeds"] == [0, 1]
    assert run_request.plan_seeds({"lr": 1}, 4, 2) == [4, 5]
    with pytest.raises(RunnerUsageError):
        run_request.plan_seeds({}, 0, 0)


# ---------------------------------------------------------------- failure, interrupt, resume

def test_failed_run_records_error_and_cli_exits_1(toy, tmp_path, capsys):
    code = cli.main(["run", toy, "--preset", "smoke", "--device", "cpu", "--set", "fail=true",
                     "--out", str(tmp_path), "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "python -m reproductions: error: ValueError: the toy failed on purpose"
    (run_dir,) = (tmp_path / toy).iterdir()
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["status"] == "failed" and rec["error"] == "ValueError: the toy failed on purpose"
    assert rec["finished_at"] and rec["duration_s"] is not None


def test_missing_dataset_names_the_files_and_exits_1(toy, tmp_path, capsys):
    code = cli.main(["run", toy, "--preset", "smoke", "--device", "cpu", "--set", "need_data=true",
                     "--data-dir", str(tmp_path / "nodata"), "--out", str(tmp_path / "runs"), "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]
    assert "Traceback" not in err and line.startswith("python -m reproductions: error: dataset 'sst2' not found")
    assert "train.tsv, dev.tsv" in line and str(tmp_path / "nodata" / "sst2") in line


def test_interrupt_checkpoints_then_resume_matches_uninterrupted_run(toy, tmp_path):
    full = runner.run(request(toy, tmp_path / "a", seed=1), echo=quiet)

    cut = runner.run(request(toy, tmp_path / "b", seed=1, overrides={"interrupt_at": 5}), echo=quiet)
    assert cut.status == "interrupted" and cut.exit_code == 130
    rec = json.loads((cut.run_dir / "run.json").read_text())
    assert rec["status"] == "interrupted" and rec["checkpoint_saved"] is True
    assert torch.load(cut.run_dir / "checkpoint.pt", weights_only=False)["step"] == 5

    resumed = runner.run(RunRequest(name=toy, out=tmp_path / "b", resume=True, device="cpu", progress=False),
                         echo=quiet)
    assert resumed.run_dir == cut.run_dir and resumed.status == "completed"
    assert resumed.record["notes"]["resumed_from_step"] == 5
    assert len(resumed.record["resumed_at"]) == 1
    steps = [json.loads(line)["step"] for line in (cut.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(12))  # 0-4 before the cut, 5-11 after
    # Same seed, same data, same optimiser state: resuming loses nothing.
    assert resumed.metrics["weights"] == full.metrics["weights"]

    with pytest.raises(RunnerUsageError, match="nothing to resume"):
        runner.run(RunRequest(name=toy, out=tmp_path / "b", resume=True, device="cpu", progress=False), echo=quiet)


def test_sigterm_is_an_interrupt_with_checkpoint(toy, tmp_path):
    result = runner.run(request(toy, tmp_path, overrides={"sigterm_at": 4}), echo=quiet)
    assert result.status == "interrupted" and result.record["checkpoint_saved"] is True
    assert torch.load(result.run_dir / "checkpoint.pt", weights_only=False)["step"] == 4


def test_cli_interrupt_exits_130(toy, tmp_path, capsys):
    code = cli.main(["run", toy, "--preset", "smoke", "--device", "cpu", "--set", "interrupt_at=2",
                     "--out", str(tmp_path), "--no-progress"])
    assert code == 130
    captured = capsys.readouterr()
    assert "interrupted" in captured.err and "--resume-from" in captured.out


# ---------------------------------------------------------------- several processes

@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built in")
def test_two_process_gloo_run_matches_single_process(toy, tmp_path, monkeypatch):
    """torchrun with 2 CPU processes: each fits half the points, DDP averages the gradients,
    so the final model equals the one-process fit; only rank 0 writes metrics."""
    single = runner.run(request(toy, tmp_path / "one", seed=2), echo=quiet)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    # In-process runner, real torchrun underneath: saves one interpreter start on a busy CI box.
    two = runner.run(request(toy, tmp_path / "two", seed=2, nproc=2), echo=quiet)
    assert two.status == "completed", two.error
    run_dir = two.run_dir
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["status"] == "completed" and rec["runner"]["nproc"] == 2
    assert rec["notes"]["distributed"] == "2 processes, backend gloo"
    assert rec["world_size"] == 2 and rec["backend"] == "gloo" and rec["examples_per_rank"] == [16 * 12, 16 * 12]
    assert single.record["world_size"] == 1 and single.record["examples_per_rank"] == [32 * 12]
    assert rec["metrics"]["weights"] == pytest.approx(single.metrics["weights"], abs=1e-5)
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(12))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built in")
def test_two_nodes_on_localhost_train_as_one_run_recorded_by_node_0(toy, tmp_path, monkeypatch):
    """Two launches (node ranks 0 and 1, one process each) meet at 127.0.0.1: one 2-rank gloo run,
    the same fit as one process on all the data; only node 0 leaves a run folder."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    endpoint = f"127.0.0.1:{_free_port()}"
    nodes = [request(toy, tmp_path / f"node{k}", seed=2, nnodes=2, node_rank=k, rdzv_endpoint=endpoint)
             for k in (0, 1)]
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda r: runner.run(r, echo=quiet), nodes)
    assert first.status == "completed", first.error
    assert second.status == "completed" and "node 0 wrote" in terminal.summary_lines(second)[0]
    rec = json.loads((first.run_dir / "run.json").read_text())
    assert rec["world_size"] == 2 and rec["backend"] == "gloo" and rec["runner"]["nnodes"] == 2
    assert rec["examples_per_rank"] == [16 * 12, 16 * 12]
    assert not (tmp_path / "node1").exists()  # the follower wrote nothing that lasts
    single = runner.run(request(toy, tmp_path / "one", seed=2), echo=quiet)
    assert rec["metrics"]["weights"] == pytest.approx(single.metrics["weights"], abs=1e-5)


def test_print_launch_prints_a_torchrun_line_that_runs_and_records(toy, tmp_path, capsys):
    code = cli.main(["run", toy, "--preset", "smoke", "--device", "cpu", "--out", str(tmp_path), "--print-launch",
                     "--nnodes", "2", "--node-rank", "1", "--rdzv-endpoint", "10.0.0.5:29400", "--nproc", "8"])
    line = capsys.readouterr().out.strip()
    assert code == 0 and line.startswith("PYTHONPATH=") and " torchrun --nnodes=2 --node-rank=1 " in line
    assert "--rdzv-backend=static --rdzv-endpoint=10.0.0.5:29400 --nproc-per-node=8" in line
    assert " _worker " in line and line.endswith("--finish")
    prepared = json.loads(next(tmp_path.rglob("run.json")).read_text())
    assert prepared["status"] == "prepared"
    # A one-machine line, run as a scheduler would (no runner around it): rank 0 writes run.json.
    out = tmp_path / "one"
    assert cli.main(["run", toy, "--preset", "smoke", "--device", "cpu", "--out", str(out), "--no-progress",
                     "--print-launch"]) == 0
    line = capsys.readouterr().out.strip()
    assert "--standalone --nproc-per-node=1" in line
    line = line.replace(" torchrun ", f" {sys.executable} -m torch.distributed.run ", 1)
    done = __import__("subprocess").run(["bash", "-c", line], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rec = json.loads(next(out.rglob("run.json")).read_text())
    assert rec["status"] == "completed" and rec["world_size"] == 1 and rec["examples_per_rank"] == [32 * 12]
    assert rec["device"]["type"] == "cpu" and rec["notes"]["distributed"] == "1 processes, backend gloo"
    same = runner.run(request(toy, tmp_path / "ref"), echo=quiet)  # the runner's own run, same seed
    assert rec["metrics"]["final_loss"] == pytest.approx(same.metrics["final_loss"], rel=1e-6)


@pytest.mark.parametrize("args, message", [
    (["--nnodes", "2"], "needs --rdzv-endpoint HOST:PORT"),
    (["--nnodes", "2", "--node-rank", "2", "--rdzv-endpoint", "h:1"], "--node-rank must be in 0..1"),
    (["--nnodes", "2", "--rdzv-endpoint", "nohostport"], "needs --rdzv-endpoint"),
    (["--nproc", "0"], "--nproc must be at least 1"),
])
def test_impossible_process_layouts_exit_2_in_one_line(toy, tmp_path, capsys, args, message):
    assert cli.main(["run", toy, "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- helpers experiments use

def test_sampler_and_shard_split_data_across_ranks(tmp_path):
    from reproductions.api import RunContext

    data = list(range(10))
    seen = []
    for rank in (0, 1):
        ctx = RunContext(tmp_path, rank=rank, world_size=2, seed=5)
        part = list(ctx.sampler(data, shuffle=True))
        assert len(part) == 5
        seen += part
        assert list(ctx.shard(5)) == list(range(rank, 5, 2))
        assert not ctx.is_main or rank == 0
    assert sorted(seen) == data  # every example exactly once per epoch
    single = RunContext(tmp_path, seed=5)
    assert list(single.sampler(data, shuffle=True)) == list(RunContext(tmp_path, seed=5).sampler(data))
    assert sorted(single.sampler(data)) == data and list(single.shard(3)) == [0, 1, 2]
    assert single.mean_over_ranks(torch.tensor(2.5)) == 2.5


def test_nested_metrics_average_per_key_and_claims_find_dotted_keys():
    from reproductions.api import Claim
    from reproductions.record import aggregate_seeds, compare_claims, headline

    per_seed = {"0": {"dropout": {"accuracy": 0.80}, "steps": 10, "ok": True},
                "1": {"dropout": {"accuracy": 0.84}, "steps": 10, "ok": True}}
    mean, std = aggregate_seeds(per_seed)
    assert mean["dropout"]["accuracy"] == pytest.approx(0.82) and mean["steps"] == 10 and mean["ok"] is True
    assert std["dropout"]["accuracy"] == pytest.approx(0.0282843, rel=1e-5) and std["steps"] == 0
    rows = compare_claims([Claim(metric="dropout.accuracy", value=0.9), Claim(metric="bleu", value=27.0)], mean)
    assert rows[0]["ours"] == pytest.approx(0.82) and rows[0]["difference"] == pytest.approx(-0.08)
    assert rows[1]["ours"] is None and rows[1]["difference"] is None
    assert headline({"arm": {"mean": 0.5, "std": 0.1}, "note": "x", "n": 3}) == {"arm": 0.5, "n": 3.0}
    nested = {"none": {"accuracy": {"mean": 0.79, "per_seed": [0.78, 0.80]}, "pgd": 0.2},
              "weissi": {"accuracy": {"mean": 0.81}, "pgd": 0.3}, "ok": True}
    assert headline(nested, limit=3) == {"none.accuracy": 0.79, "none.pgd": 0.2, "weissi.accuracy": 0.81}
    assert list(headline(nested, limit=2, prefer=["weissi.pgd"])) == ["weissi.pgd", "none.accuracy"]


def test_resume_from_a_folder_that_is_not_a_run_is_refused(toy, tmp_path):
    with pytest.raises(RunnerUsageError, match="no run.json"):
        runner.run(RunRequest(name=toy, out=tmp_path, resume_from=tmp_path, device="cpu", progress=False), echo=quiet)
    done = runner.run(request(toy, tmp_path), echo=quiet)
    with pytest.raises(RunnerUsageError, match="already completed"):
        runner.run(RunRequest(name=toy, out=tmp_path, resume_from=done.run_dir, device="cpu", progress=False),
                   echo=quiet)
    with pytest.raises(RunnerUsageError, match="drop --set"):
        runner.run(RunRequest(name=toy, out=tmp_path, resume_from=done.run_dir, overrides={"lr": 1.0},
                              device="cpu", progress=False), echo=quiet)


def test_discover_raises_on_a_broken_package_unless_told_to_skip(monkeypatch):
    from reproductions.registry import discover

    monkeypatch.setenv("DIGEST_REPRODUCTIONS", "no_such_reproduction_pkg")
    with pytest.raises(ModuleNotFoundError):
        discover()
    skipped = []
    found = discover(on_error=lambda module, exc: skipped.append(module))
    assert skipped == ["no_such_reproduction_pkg"]
    assert "drophead" in found  # the others are still there
