"""Shared by the benchmark scripts: session, timing, peak memory, results file."""
from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import sys
import tempfile
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


def add_run_arguments(ap, what: str = "data and lakes") -> None:
    """The arguments the benchmarks share: --workdir, --master, --set KEY=VALUE (repeatable)."""
    ap.add_argument("--workdir", help=f"{what} go here (default: a temporary folder, removed at the end)")
    ap.add_argument("--master", help="Spark master (default local[*])")
    ap.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                    help="override a configuration key (repeatable)")


@contextmanager
def workdir(given: str | None, prefix: str):
    """A benchmark's working folder: `given` (created if missing, kept afterwards), or a new temporary folder that
    is removed at the end, also when the run fails."""
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def timed(figures: dict, key: str):
    t0 = time.perf_counter()
    yield
    figures[key] = round(time.perf_counter() - t0, 2)
    print(f"  {key}: {figures[key]:.1f}s", flush=True)


def _heap_pools(spark) -> list:
    jvm = spark.sparkContext._jvm
    pools = jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans()
    # MemoryType is an enum: str() of it is its description ("Heap memory"), name() is "HEAP"
    return [pools.get(i) for i in range(pools.size()) if pools.get(i).getType().name() == "HEAP"]


def driver_jvm_peak_mb(spark) -> float:
    """Peak heap use of the driver JVM (local mode: driver and executors) since it started or since the last
    `reset_jvm_peaks`: the sum of its heap pools' peaks (an upper bound: the pools need not peak at the same moment).
    Never 0 for a live JVM; when no pool reports a peak, the heap's current use is returned instead."""
    total = sum(p.getPeakUsage().getUsed() for p in _heap_pools(spark) if p.getPeakUsage() is not None)
    if total <= 0:
        total = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getMemoryMXBean() \
            .getHeapMemoryUsage().getUsed()
    return round(total / 1e6, 1)


def reset_jvm_peaks(spark) -> None:
    """Reset the peaks of every memory pool of the driver JVM to its current use (so each stage has its own peak)."""
    jvm = spark.sparkContext._jvm
    pools = jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans()
    for i in range(pools.size()):
        pools.get(i).resetPeakUsage()


def jvm_memory(spark) -> dict:
    """Heap figures of the driver JVM: the sum of the heap pools' peaks since the last reset, the old generation's
    peak (long-lived data), the heap in use now and its maximum (-Xmx), in MB."""
    pools = _heap_pools(spark)
    old = [p for p in pools if any(k in p.getName() for k in ("Old", "Tenured"))]
    heap = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage()
    return {"jvm_heap_peak_mb": driver_jvm_peak_mb(spark),
            "jvm_old_gen_peak_mb": round(sum(p.getPeakUsage().getUsed() for p in old) / 1e6, 1) if old else None,
            "jvm_heap_used_mb": round(heap.getUsed() / 1e6, 1),
            "jvm_heap_max_mb": round(heap.getMax() / 1e6, 1)}


_STAGE_FIELDS = {"memory_spilled_mb": "memoryBytesSpilled", "disk_spilled_mb": "diskBytesSpilled",
                 "input_mb": "inputBytes", "output_mb": "outputBytes", "shuffle_read_mb": "shuffleReadBytes",
                 "shuffle_write_mb": "shuffleWriteBytes"}


def spark_stages(spark) -> dict | None:
    """Every stage attempt the application's status store holds, (stageId, attemptId) -> its byte counters
    (spill, input, output, shuffle). The store is the one the web UI shows; Spark fills it from its listener bus
    even with spark.ui.enabled=false. It keeps the last spark.ui.retainedStages stages (default 1000). None when the
    store cannot be reached (e.g. Spark Connect)."""
    try:
        sc = spark.sparkContext
        jsc = sc._jsc.sc()
        try:
            jsc.listenerBus().waitUntilEmpty(10_000)     # stages that just ended are in the store
        except Exception:  # noqa: BLE001 - a timeout only means the figures may miss the very last events
            pass
        gw = sc._gateway
        seq = jsc.statusStore().stageList(None, False, False, gw.new_array(gw.jvm.double, 0), None)
        out = {}
        for i in range(seq.size()):
            s = seq.apply(i)
            out[(s.stageId(), s.attemptId())] = {k: int(getattr(s, m)()) for k, m in _STAGE_FIELDS.items()}
        return out
    except Exception:  # noqa: BLE001
        return None


def stage_metrics_since(spark, before: dict | None) -> dict:
    """Spill and I/O of the stages that ran since `before` (a `spark_stages` snapshot), summed, in MB."""
    after = spark_stages(spark)
    if after is None or before is None:
        return {"spill": "unavailable: Spark's status store is not reachable from this session"}
    new = [v for k, v in after.items() if k not in before]
    out = {k: round(sum(v[k] for v in new) / 1e6, 1) for k in _STAGE_FIELDS}
    out["spark_stages"] = len(new)
    return out


def reset_process_peak_rss() -> bool:
    """Reset this process's peak resident set size (Linux: /proc/self/clear_refs); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def process_peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM) in MB: since the last reset_process_peak_rss when it worked."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) * 1024 / 1e6, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6, 1)


def machine() -> dict:
    mem = None
    try:
        mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {"cpus": os.cpu_count(), "memory_gb": mem, "python": platform.python_version(),
            "platform": platform.platform(),
            "python_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def save(name: str, data: dict, results_dir: str | Path | None = None) -> Path:
    folder = Path(results_dir) if results_dir else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"results: {path}")
    return path
