"""Several processes: the torchrun launch (one machine, several nodes, a scheduler's line) and its workers.

The launching runner starts torchrun and waits; every worker runs `worker_main`, and
rank 0 reports its outcome in ``worker.json`` (or, for a `prepare_launch` line with no
runner around, writes the final ``run.json`` itself).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from reproductions import devices, distributed, record
from reproductions.execution import Outcome, execute, sigterm_as_interrupt
from reproductions.registry import Entry, get
from reproductions.run_folder import WORKER_RESULT, finish_record, new_run_dir, start_record
from reproductions.run_request import Echo, RunRequest, RunResult, check_topology
from reproductions.terminal import rich_progress


def _package_root() -> Path:
    return Path(__file__).resolve().parent.parent


def torchrun_args(request: RunRequest) -> list[str]:
    """torchrun's own options: one machine standalone, or a static rendezvous at node 0's endpoint.

    The static backend keeps ``--node-rank`` meaningful: node 0 always holds global rank 0,
    so the record is written where the user started node 0.
    """
    if request.nnodes == 1:
        return ["--standalone", f"--nproc-per-node={request.nproc}"]
    return [f"--nnodes={request.nnodes}", f"--node-rank={request.node_rank}", "--rdzv-backend=static",
            f"--rdzv-endpoint={request.rdzv_endpoint}", f"--nproc-per-node={request.nproc}"]


def worker_command(request: RunRequest, run_dir: Path, *, resuming: bool, finish: bool = False) -> list[str]:
    """The full torchrun command line whose workers run the experiment in `run_dir`."""
    cmd = [sys.executable, "-m", "torch.distributed.run", *torchrun_args(request),
           "-m", "reproductions", "_worker", str(run_dir), "--device", request.device]
    if resuming:
        cmd.append("--resume")
    if not request.progress:
        cmd.append("--no-progress")
    if finish:
        cmd.append("--finish")
    return cmd


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_package_root()), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _launch(cmd: list[str]) -> tuple[int, bool]:
    """Run torchrun to its end; (exit code, whether the user interrupted it)."""
    proc = subprocess.Popen(cmd, env=_worker_env())
    try:
        return proc.wait(), False
    except KeyboardInterrupt:  # Ctrl-C reached the workers too; SIGTERM would not: pass it on
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=60), True  # time for rank 0 to checkpoint and report
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            proc.kill()
            return proc.wait(), True


def execute_distributed(request: RunRequest, run_dir: Path, resuming: bool, echo: Echo) -> Outcome:
    """Start this machine's workers under torchrun; rank 0 reports its outcome in worker.json."""
    result_path = run_dir / WORKER_RESULT
    result_path.unlink(missing_ok=True)
    cmd = worker_command(request, run_dir, resuming=resuming)
    echo(f"launching: torchrun {' '.join(torchrun_args(request))}")
    code, interrupted = _launch(cmd)
    data = record.read_json(result_path) if result_path.is_file() else None
    result_path.unlink(missing_ok=True)
    if data is not None and (data["status"] != "interrupted" or interrupted or code == 0):
        return Outcome(**data)
    if interrupted:
        return Outcome(status="interrupted")
    # Rank 0 was stopped (or died) because another worker failed: that is a failure, not an interrupt.
    return Outcome(status="failed", error=f"a worker failed: torchrun exited with code {code} (see its log above)",
                   error_kind="exception", notes=(data or {}).get("notes") or {})


def run_follower(request: RunRequest, run_dir: Path, rec: dict[str, Any], resuming: bool, echo: Echo) -> RunResult:
    """Node K > 0: lend this machine's processes to the run node 0 records; write nothing that lasts.

    Its workers need the run's config: a fresh run gets a private temporary copy of the
    record; a resumed one reads the folder named by --resume/--resume-from (a shared
    filesystem, where the checkpoint is).
    """
    private = None
    if not resuming:
        private = Path(tempfile.mkdtemp(prefix=f"{rec['name']}-node{request.node_rank}-"))
        run_dir = private
        record.write_json(run_dir / record.RUN_FILE, rec)
    echo(f"node {request.node_rank} of {request.nnodes}: joining {request.rdzv_endpoint}; node 0 writes the record")
    t0 = time.monotonic()
    try:
        with sigterm_as_interrupt():
            code, interrupted = _launch(worker_command(request, run_dir, resuming=resuming))
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)
    status = "interrupted" if interrupted else ("completed" if code == 0 else "failed")
    rec.update(status=status, node_rank=request.node_rank, duration_s=round(time.monotonic() - t0, 3),
               error=None if code == 0 or interrupted else f"torchrun exited with code {code} on node "
                                                            f"{request.node_rank} (see its log above)")
    return RunResult(run_dir, status, rec)


def prepare_launch(request: RunRequest, *, entries: dict[str, Entry] | None = None,
                   echo: Echo | None = None) -> str:
    """Write the run folder (status ``prepared``) and return the torchrun line that runs it.

    For a cluster scheduler: start the printed line on every node (changing ``--node-rank``),
    with the run folder on a filesystem they share; rank 0 writes the final record itself
    (``_worker --finish``), as the runner would.
    """
    echo = echo or (lambda line: print(line, file=sys.stderr))
    entry = get(request.name, entries)
    check_topology(request)
    run_dir, rec, resuming = start_record(entry, request, echo)
    if not resuming:
        run_dir = new_run_dir(Path(request.out), entry.card.name, run_dir.name)
        rec["status"] = "prepared"
        record.write_json(run_dir / record.RUN_FILE, rec)
    cmd = worker_command(request, run_dir.resolve(), resuming=resuming, finish=True)
    cmd[:3] = ["torchrun"]  # what a scheduler's job script calls; same as python -m torch.distributed.run
    # the checkout first on the path, keeping what the job's environment already has there
    path = f"PYTHONPATH={shlex.quote(str(_package_root()))}" + "${PYTHONPATH:+:$PYTHONPATH}"
    return f"{path} " + " ".join(shlex.quote(c) for c in cmd)


def worker_main(run_dir: Path, device: str, resume: bool, progress: bool, finish: bool = False) -> int:
    """Body of one torchrun worker: join the group, run the experiment, rank 0 reports.

    Rank 0 reports to the launching runner in worker.json, or with `finish` (a line from
    `prepare_launch`, no runner around) writes the final run.json itself.
    """
    t0 = time.monotonic()
    rec = record.read_json(run_dir / record.RUN_FILE)
    entry = get(rec["name"])
    rank, world_size, local_rank = distributed.env_rank()
    choice = devices.choose_device(device, local_rank=local_rank)
    distributed.init_process_group(choice.type)
    backend = distributed.backend_name()
    outcome = None
    try:
        with sigterm_as_interrupt():  # torchrun stops workers with SIGTERM: checkpoint first
            outcome = execute(entry, rec, run_dir, choice, rank=rank, world_size=world_size, resume=resume,
                              progress_factory=rich_progress if progress else None)
            if outcome.status == "completed":  # every rank got here: safe to gather
                outcome.examples_per_rank = distributed.gather_ints(outcome.examples_seen, choice.device)
        outcome.backend = backend
        if rank == 0:
            outcome.notes.setdefault("distributed", f"{world_size} processes, backend {backend}")
            if finish:
                rec.update(device=devices.describe(choice))
                rec["runner"]["device_setup"] = devices.configure(choice)
                previous = float(rec.get("duration_s") or 0.0)
                finish_record(entry.card, run_dir, rec, outcome, previous + time.monotonic() - t0, lambda line: None)
            else:
                record.write_json(run_dir / WORKER_RESULT, outcome.as_dict())
    finally:
        # After a completed run every rank is alive: wait for rank 0's report before tearing down.
        # After a failure a barrier could wait forever for a rank that is gone.
        distributed.destroy_process_group(wait_for_all=outcome is not None and outcome.status == "completed")
    return {"completed": 0, "interrupted": 130}.get(outcome.status, 1)
