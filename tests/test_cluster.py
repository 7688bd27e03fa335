"""The jobs on a real Spark standalone cluster (a master and two one-core workers on loopback, tests/cluster.py): the
same `shelltrace run` gives the same gold table as local mode; the executors fetch the Delta jars from the driver and
run the virtualenv's Python; spark-submit with the package as a wheel (--py-files) and submit.py lands on it; and
nothing the tests started outlives them.

Drivers run as subprocesses: this process already holds the suite's local SparkSession (one SparkContext per JVM).
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from pyspark.testing import assertDataFrameEqual

from jobs.cli import main as shelltrace
from jobs.config import load_config
from jobs.generate import generate
from jobs.session import cached_jars
from tests.cluster import (DRIVER_GROUPS, EXECUTOR_PROBE, PYTHON, SPARK_HOME, Standalone, alive_in_groups, run_args,
                           run_cli, run_process, spark_env, tail)

REPO = Path(__file__).resolve().parents[1]
GOLD = "gold/attacker_summary"
RUN_SPECIFIC = ["HuntRunId", "PublishedAt"]
# the same settings for both runs: two cores either way
SETTINGS = ["--set", "spark.shuffle_partitions=2"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Master and two workers (1 core, 2g each); fails (never skips) with the daemons' log tails when they do not
    come up. Stopped at the end of the module, also when a test failed; whatever is left is an error."""
    c = Standalone(tmp_path_factory.mktemp("cluster"), workers=2, cores=1, memory="2g")
    try:
        c.start(timeout=180)
        yield c
    finally:
        c.stop()
        left = c.leftovers() + alive_in_groups(DRIVER_GROUPS)
        assert not left, "processes still alive after the cluster was stopped:\n" + "\n".join(left)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """2 days x 2,000 requests with the planted shells, hourly blobs (few files: the run stays short)."""
    return generate(str(tmp_path_factory.mktemp("exports")), days=2, requests_per_day=2000, layout="PT1H")


@pytest.fixture(scope="module")
def cluster_run(cluster, exports, tmp_path_factory):
    """`shelltrace run --master spark://...` as a subprocess: (lake, seconds, the application's id)."""
    lake = str(tmp_path_factory.mktemp("cluster-lake") / "lake")
    before = cluster.app_ids()
    proc, seconds = run_cli([*run_args(exports, lake, *SETTINGS), "--master", cluster.master_url], timeout=900)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{tail(proc.stdout)}\n{tail(proc.stderr)}"
    apps = sorted(cluster.app_ids() - before)
    assert len(apps) == 1, f"expected one application on {cluster.master_url}, the master saw {apps}"
    return lake, seconds, apps[0]


@pytest.fixture(scope="module")
def local_run(spark, exports, tmp_path_factory):
    """The same `shelltrace run` in local mode, in this process on the suite's session: (lake, seconds)."""
    lake = str(tmp_path_factory.mktemp("local-lake") / "lake")
    t0 = time.perf_counter()
    code = shelltrace(run_args(exports, lake, *SETTINGS))
    assert code == 0
    return lake, time.perf_counter() - t0


def test_gold_on_a_standalone_cluster_equals_local_mode(spark, cluster_run, local_run, capsys):
    (cluster_lake, cluster_s, app_id), (local_lake, local_s) = cluster_run, local_run
    on_cluster = spark.read.format("delta").load(f"{cluster_lake}/{GOLD}").drop(*RUN_SPECIFIC)
    local = spark.read.format("delta").load(f"{local_lake}/{GOLD}").drop(*RUN_SPECIFIC)
    assert local.count() > 10
    assertDataFrameEqual(on_cluster, local)
    with capsys.disabled():
        print(f"\n[cluster vs local] shelltrace run, same exports: standalone cluster (2 workers x 1 core, "
              f"{app_id}) {cluster_s:.1f}s as a new process; local mode {local_s:.1f}s in the suite's running "
              f"session (no JVM start). Fair figures: benchmarks/cluster_vs_local.py")


def test_cluster_executors_fetched_the_delta_jars_from_the_driver(cluster, cluster_run):
    _, _, app_id = cluster_run
    executors = cluster.executor_dirs(app_id)
    assert len(executors) == 2, f"executor folders of {app_id}: {executors}\n{cluster.log_tails()}"
    for folder in executors:
        fetched = sorted(p.name for p in folder.glob("*.jar"))
        assert any(n.startswith("io.delta_delta-spark_") for n in fetched), f"{folder}: {fetched}"
        assert any(n.startswith("io.delta_delta-storage-") for n in fetched), f"{folder}: {fetched}"


def test_cluster_executors_run_the_virtualenvs_python(cluster, tmp_path):
    proc, _ = run_process([PYTHON, "-c", EXECUTOR_PROBE, cluster.master_url], cwd=str(tmp_path), timeout=300)
    assert proc.returncode == 0, f"{tail(proc.stdout)}\n{tail(proc.stderr)}"
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["app_id"].startswith("app-"), found          # a standalone application, not local-...
    assert found["executor_pythons"] == [PYTHON], found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The package built as a wheel from a copy of the checkout (a stale build/ folder cannot leak into it)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "lake", "demo",
        "spark-warehouse", "metastore_db", "benchmarks", "tests", "*.whl"))
    proc, _ = run_process([PYTHON, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(root / "dist"), str(src)],
                          timeout=600)
    assert proc.returncode == 0, f"pip wheel failed:\n{tail(proc.stdout)}\n{tail(proc.stderr)}"
    wheels = sorted((root / "dist").glob("shelltrace-*-py3-none-any.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_spark_submit_with_the_wheel_lands_on_the_cluster(spark, cluster, exports, wheel, tmp_path):
    # submit.py alone in a folder: the driver can import shelltrace only from the wheel given with --py-files
    (tmp_path / "app").mkdir()
    launcher = shutil.copy(REPO / "submit.py", tmp_path / "app" / "submit.py")
    lake = str(tmp_path / "lake")
    package = load_config()["spark"]["delta_package"]
    jars = cached_jars(package)
    delta = ["--jars", ",".join(jars)] if jars else ["--packages", package]
    before = cluster.app_ids()
    proc, _ = run_process(
        [str(SPARK_HOME / "bin" / "spark-submit"), "--master", cluster.master_url, *delta, "--py-files", str(wheel),
         launcher, "land", "--source", "w3c_iis_log", "--input", exports["iis_dir"], "--lake", lake],
        env=spark_env(), cwd=str(tmp_path / "app"), timeout=600)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{tail(proc.stdout)}\n{tail(proc.stderr)}"
    # spark-submit passes the Python driver's stderr on to its stdout
    assert f"submit.py: shelltrace from {wheel}/jobs" in proc.stdout
    assert len(cluster.app_ids() - before) == 1
    assert spark.read.format("delta").load(f"{lake}/bronze/w3c_iis_log").count() == exports["counts"]["iis_rows"]


def test_stopping_the_cluster_leaves_no_process_behind(cluster):
    # the last test of the module: stop now and look (the fixture's teardown stops again and checks again)
    assert cluster.leftovers(), "the cluster was not running"
    cluster.stop()
    assert cluster.leftovers() == []
    assert alive_in_groups(DRIVER_GROUPS) == []
