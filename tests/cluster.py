"""A Spark standalone cluster on loopback (a master and workers started with `spark-class`) and Spark clients run as
subprocesses (`shelltrace ...`, spark-submit): for tests/test_cluster.py and benchmarks/cluster_vs_local.py.

Every daemon and every client runs in its own process group (executors and their Python workers are a worker's
children, a driver's JVM is its Python's child, so they share the group); stopping terminates the groups (SIGTERM,
then SIGKILL) and `alive_in_groups()` lists, from `ps`, whatever of them is still alive. Nothing else on the machine is
touched.

    with Standalone(workdir) as cluster:          # starts, waits for the workers; stops on exit, also on errors
        proc, seconds = run_cli([*run_args(manifest, lake), "--master", cluster.master_url])
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).resolve().parent
PYTHON = sys.executable
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def spark_env(**extra: str) -> dict:
    """The environment for Spark daemons and clients: the pip-installed Spark, loopback, this interpreter (the
    virtualenv's) for Python workers and the driver."""
    env = dict(os.environ)
    env.update(SPARK_HOME=str(SPARK_HOME), SPARK_LOCAL_IP=LOOPBACK, PYSPARK_PYTHON=PYTHON,
               PYSPARK_DRIVER_PYTHON=PYTHON)
    env.update(extra)
    return env


class ClusterError(RuntimeError):
    pass


class Standalone:
    """`workers` workers with `cores` cores and `memory` each, on 127.0.0.1; daemon logs and work dirs in `workdir`."""

    def __init__(self, workdir: Path, workers: int = 2, cores: int = 1, memory: str = "2g"):
        self.workdir = Path(workdir)
        self.workers, self.cores, self.memory = workers, cores, memory
        self.port, self.webui_port = free_port(), free_port()
        self.procs: list[tuple[str, subprocess.Popen, Path]] = []
        self.log_dir = self.workdir / "logs"
        self.work_dir = self.workdir / "work"

    @property
    def master_url(self) -> str:
        return f"spark://{LOOPBACK}:{self.port}"

    @property
    def webui_url(self) -> str:
        return f"http://{LOOPBACK}:{self.webui_port}"

    # ------------------------------------------------------------------------------------------------ daemons

    def _spawn(self, name: str, args: list[str]) -> None:
        log = self.log_dir / f"{name}.log"
        env = spark_env(SPARK_WORKER_DIR=str(self.work_dir), SPARK_LOG_DIR=str(self.log_dir),
                        SPARK_PID_DIR=str(self.workdir))
        with open(log, "wb") as fh:
            proc = subprocess.Popen([str(SPARK_HOME / "bin" / "spark-class"), *args], stdout=fh,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    cwd=str(self.workdir), start_new_session=True)
        self.procs.append((name, proc, log))

    def start(self, timeout: float = 120) -> "Standalone":
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._spawn("master", ["org.apache.spark.deploy.master.Master", "--host", LOOPBACK,
                                   "--port", str(self.port), "--webui-port", str(self.webui_port)])
            for i in range(self.workers):
                self._spawn(f"worker{i + 1}", [
                    "org.apache.spark.deploy.worker.Worker", "--cores", str(self.cores), "--memory", self.memory,
                    "--host", LOOPBACK, "--webui-port", str(free_port()), "--work-dir", str(self.work_dir),
                    self.master_url])
            self.wait_for_workers(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def state(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"{self.webui_url}/json/", timeout=5) as resp:
                return json.load(resp)
        except (OSError, ValueError):
            return None

    def wait_for_workers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            dead = [(name, p.returncode) for name, p, _ in self.procs if p.poll() is not None]
            if dead:
                raise ClusterError(f"Spark daemon(s) exited while starting: {dead}\n{self.log_tails()}")
            state = self.state()
            if state and state.get("aliveworkers") == self.workers:
                return
            time.sleep(1)
        alive = state.get("aliveworkers") if state else "no answer from the master's /json/"
        raise ClusterError(f"standalone cluster {self.master_url}: {alive} of {self.workers} workers alive after "
                           f"{timeout:.0f}s\n{self.log_tails()}")

    def log_tails(self, lines: int = 25) -> str:
        out = []
        for name, _, log in self.procs:
            text = log.read_text(errors="replace").splitlines() if log.exists() else ["(no log)"]
            out.append(f"--- {name} ({log}), last {lines} lines:\n" + "\n".join(text[-lines:]))
        return "\n".join(out)

    def stop(self, grace: float = 20) -> None:
        """Terminate every daemon's process group (the daemon, its executors, their Python workers): SIGTERM, then
        SIGKILL for what is left after `grace` seconds. Safe to call twice."""
        groups = [p.pid for _, p, _ in self.procs]
        for pgid in groups:
            _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for _, p, _ in self.procs:          # reap the daemons themselves (no zombies left in ps)
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        reap_groups(groups, grace=max(1.0, deadline - time.monotonic()))   # executors, Python workers; then SIGKILL
        for _, p, _ in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def leftovers(self) -> list[str]:
        """`ps` lines of processes still alive in the daemons' process groups (zombies excluded)."""
        return alive_in_groups([p.pid for _, p, _ in self.procs])

    def app_ids(self) -> set[str]:
        """Ids of the applications the master has seen (running and completed)."""
        state = self.state() or {}
        return {a["id"] for key in ("activeapps", "completedapps") for a in state.get(key, [])}

    def executor_dirs(self, app_id: str) -> list[Path]:
        """The work folders of an application's executors (their fetched jars and files, stdout, stderr)."""
        return sorted(p for p in (self.work_dir / app_id).glob("*") if p.is_dir())

    def __enter__(self) -> "Standalone":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# ------------------------------------------------------------------------------------------------ Spark clients

DRIVER_GROUPS: list[int] = []      # process groups of the client processes run_process started (driver JVMs included)


def run_process(cmd: list[str], env: dict | None = None, timeout: float = 900, cwd: str | None = None):
    """Run a Spark client (a driver: Python and the JVM it launches) in its own process group: (CompletedProcess,
    seconds). On a timeout the whole group is killed; afterwards the group gets a few seconds to exit (the driver's
    JVM ends when its Python parent is gone), then SIGKILL."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env=env or spark_env(), cwd=cwd, start_new_session=True)
    DRIVER_GROUPS.append(proc.pid)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\n[killed after {timeout:.0f}s]"
    finally:
        reap_groups([proc.pid])
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), time.perf_counter() - t0


def reap_groups(groups: list[int], grace: float = 15) -> None:
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and alive_in_groups(groups):
        time.sleep(0.5)
    for pgid in groups:
        _signal_group(pgid, signal.SIGKILL)


def alive_in_groups(groups) -> list[str]:
    """`ps` lines of live processes (zombies excluded) in these process groups."""
    wanted = {str(g) for g in groups}
    if not wanted:
        return []
    out = subprocess.run(["ps", "-eo", "pid=,pgid=,stat=,args="], capture_output=True, text=True, timeout=30).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) >= 3 and parts[1] in wanted and not parts[2].startswith("Z"):
            rows.append(line.strip()[:200])
    return rows


def shelltrace_command() -> list[str]:
    """The installed `shelltrace` console script beside this interpreter, else `python -m jobs.cli`."""
    script = Path(PYTHON).parent / "shelltrace"
    return [str(script)] if script.exists() else [PYTHON, "-m", "jobs.cli"]


def run_cli(args: list[str], env: dict | None = None, timeout: float = 900, cwd: str | None = None):
    """`shelltrace <args>` in a new process (its own driver JVM): (CompletedProcess, seconds)."""
    return run_process([*shelltrace_command(), *args], env=env, timeout=timeout, cwd=cwd)


def run_args(manifest: dict, lake: str, *extra: str) -> list[str]:
    """`run` over a generated set (jobs.generate's manifest) with its alert and log windows."""
    (a_from, a_to), (l_from, l_to) = manifest["alert_window"], manifest["log_window"]
    return ["run", "--alerts", manifest["alerts_dir"], "--iis", manifest["iis_dir"], "--lake", lake,
            "--alerts-from", a_from, "--alerts-to", a_to, "--logs-from", l_from, "--logs-to", l_to, *extra]


def job_seconds(stderr: str) -> float | None:
    """The job's own figure from its last log line, `<name> finished in 12.3s (exit 0)`: from the job's start,
    session (driver JVM) start included, Python start-up and imports not."""
    found = re.findall(r" finished in (\d+(?:\.\d+)?)s \(exit", stderr)
    return float(found[-1]) if found else None


def tail(text: str, chars: int = 4000) -> str:
    return text[-chars:]


# Run with `python -c EXECUTOR_PROBE <master>`: a session from jobs.session on the cluster, a task per core reporting
# the interpreter its Python worker runs; prints one JSON line.
EXECUTOR_PROBE = """
import json, sys
from jobs.config import load_config
from jobs.session import get_spark
spark = get_spark(load_config(None, ["spark.shuffle_partitions=2"]), master=sys.argv[1], app_name="shelltrace-probe")
sc = spark.sparkContext
pythons = sc.parallelize(range(4), 4).map(lambda _: __import__("sys").executable).distinct().collect()
print(json.dumps({"app_id": sc.applicationId, "executor_pythons": sorted(pythons)}))
spark.stop()
"""
