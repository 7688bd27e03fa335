"""The same `shelltrace run` in local mode and on a Spark standalone cluster on this machine (a master and two workers
with one core each, on loopback: tests/cluster.py, the cluster of tests/test_cluster.py), over the same generated
exports. Both runs are new processes (`shelltrace run`, each starting its own driver JVM) with two cores in all:
`--master local[2]` against two one-core executors. Prints wall time and the job's own time (its log's `run finished
in`: the driver JVM's start included, Python's start-up not) for each and writes
benchmarks/results/cluster_vs_local.json, with the machine's load average (other processes share the cores).

    python benchmarks/cluster_vs_local.py                              # 2 days x 2,000 requests (the test's set)
    python benchmarks/cluster_vs_local.py --requests-per-day 100000
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from jobs.generate import generate  # noqa: E402
from tests.cluster import Standalone, alive_in_groups, DRIVER_GROUPS, job_seconds, run_args, run_cli, tail  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SETTINGS = ["--set", "spark.shuffle_partitions=2"]


def _run(name: str, manifest: dict, lake: Path, master: str) -> dict:
    proc, wall = run_cli([*run_args(manifest, str(lake), *SETTINGS), "--master", master], timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"{name}: exit {proc.returncode}\n{tail(proc.stdout)}\n{tail(proc.stderr)}")
    rows = re.findall(r"attacker rows (\d+)", proc.stdout)
    figures = {"master": master, "wall_seconds": round(wall, 1), "job_seconds": job_seconds(proc.stderr),
               "gold_rows": int(rows[-1]) if rows else None}
    print(f"  {name:8} {figures['wall_seconds']:7.1f}s wall, {figures['job_seconds']}s in the job "
          f"({master}; {figures['gold_rows']} gold rows)", flush=True)
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--requests-per-day", type=int, default=2000)
    parser.add_argument("--work", default=str(ROOT / "benchmarks" / "work" / "cluster_vs_local"))
    args = parser.parse_args(argv)

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    manifest = generate(str(work / "exports"), days=args.days, requests_per_day=args.requests_per_day,
                        layout="PT1H")
    print(f"exports: {manifest['counts']['iis_rows']} IIS rows, {manifest['counts']['alert_rows']} alert rows",
          flush=True)
    load_before = os.getloadavg()
    with Standalone(work / "cluster", workers=2, cores=1, memory="2g") as cluster:
        local = _run("local", manifest, work / "lake-local", "local[2]")
        on_cluster = _run("cluster", manifest, work / "lake-cluster", cluster.master_url)
    left = alive_in_groups([*DRIVER_GROUPS])
    if left:
        print("warning: processes still alive:\n" + "\n".join(left))
    data = {
        "exports": {"days": args.days, "requests_per_day": args.requests_per_day, "layout": "PT1H",
                    "iis_rows": manifest["counts"]["iis_rows"], "alert_rows": manifest["counts"]["alert_rows"],
                    "iis_files": manifest["counts"]["iis_files"], "alert_files": manifest["counts"]["alert_blobs"]},
        "local": local,
        "cluster": {**on_cluster, "workers": 2, "cores_per_worker": 1, "worker_memory": "2g"},
        "cluster_over_local_wall": round(on_cluster["wall_seconds"] / local["wall_seconds"], 2),
        "same_gold_row_count": local["gold_rows"] == on_cluster["gold_rows"],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "cluster_vs_local.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"cluster / local (wall): {data['cluster_over_local_wall']}\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
