"""Shared by the benchmark scripts: session, timing, peak memory, results file."""
from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"


def session(master: str | None = None, overrides=()):
    from jobs.common import setup_logging
    from jobs.config import load_config
    from jobs.session import get_spark

    setup_logging(False)
    cfg = load_config(None, list(overrides))
    return get_spark(cfg, master=master, app_name="shelltrace-bench"), cfg


@contextmanager
def timed(figures: dict, key: str):
    t0 = time.perf_counter()
    yield
    figures[key] = round(time.perf_counter() - t0, 2)
    print(f"  {key}: {figures[key]:.1f}s", flush=True)


def driver_jvm_peak_mb(spark) -> float:
    """Peak heap use of the driver JVM (local mode: driver and executors), from its memory pools."""
    jvm = spark.sparkContext._jvm
    pools = jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans()
    total = 0
    for i in range(pools.size()):
        p = pools.get(i)
        if p.getType().name() == "HEAP" and p.getPeakUsage() is not None:
            total += p.getPeakUsage().getUsed()
    return round(total / 1e6, 1)


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "python_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def save(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"results: {path}")
    return path
