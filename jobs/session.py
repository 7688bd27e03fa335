"""SparkSession factory: local[*] by default, a cluster with --master, the running session on Databricks, and under
spark-submit the master and jars spark-submit was given (--master, --packages or --jars).

Delta jars come from Maven Central on first use (Ivy) and are then cached under ~/.cache/shelltrace/jars so later
sessions start without a resolution step. `python -m jobs.session --fetch-jars` does that once (the Makefile's set-up).
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from conf import CONF_DIR

log = logging.getLogger("shelltrace")

JAR_CACHE = Path(os.environ.get("SHELLTRACE_JAR_CACHE", Path.home() / ".cache" / "shelltrace" / "jars"))


def on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def under_spark_submit() -> bool:
    """This Python driver was started by spark-submit (or the pyspark shell): its JVM is already running, with the
    master, jars and driver options spark-submit was given (PySpark connects to it through this variable)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def _jar_dir(package: str) -> Path:
    return JAR_CACHE / hashlib.sha1(package.encode()).hexdigest()[:12]


def cached_jars(package: str) -> list[str]:
    folder = _jar_dir(package)
    if not (folder / ".complete").exists():
        return []
    return sorted(glob.glob(str(folder / "*.jar")))


def _cache_resolved_jars(spark, package: str) -> None:
    """After a session resolved `package` with Ivy, keep the jar files for the next sessions."""
    jars = spark.sparkContext.getConf().get("spark.jars", "")
    paths = [p.replace("file://", "").replace("file:", "") for p in jars.split(",") if p.strip()]
    paths = [p for p in paths if p.endswith(".jar") and os.path.exists(p)]
    if not paths:
        return
    folder = _jar_dir(package)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for path in paths:
        shutil.copy2(path, tmp / os.path.basename(path))
    (tmp / ".complete").write_text(package + "\n")
    if folder.exists():
        shutil.rmtree(tmp)
    else:
        os.replace(tmp, folder)


def _python_in_utc() -> None:
    """The Python process's local time zone becomes UTC, like the session's. PySpark converts naive datetimes with it
    (createDataFrame reads them as local time, collect returns local time): without this, a job on a machine set to
    another zone would shift every timestamp it passes between Python and Spark (watermarks, windows, claims)."""
    if os.environ.get("TZ") != "UTC" and hasattr(time, "tzset"):
        os.environ["TZ"] = "UTC"
        time.tzset()


def get_spark(cfg: dict | None = None, master: str | None = None, verbose: bool = False, app_name: str | None = None):
    """Return a Delta-enabled SparkSession configured from `cfg['spark']`."""
    from pyspark.sql import SparkSession

    _python_in_utc()
    scfg = (cfg or {}).get("spark", {}) or {}
    extra = {str(k): str(v) for k, v in (scfg.get("conf") or {}).items()}
    common = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(scfg.get("shuffle_partitions", 8)),
        # JSON maps built from raw export lines may repeat a key: keep the last, never fail the job.
        "spark.sql.mapKeyDedupPolicy": "LAST_WIN",
    }

    if on_databricks():
        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        for key, value in {**common, **extra}.items():
            try:
                spark.conf.set(key, value)
            except Exception:  # noqa: BLE001 - some settings are fixed by the cluster policy
                log.debug("could not set %s on the running session", key)
        return spark

    package = scfg.get("delta_package") or "io.delta:delta-spark_4.2_2.13:4.4.0"
    # Under spark-submit the driver's JVM runs already: the master, the jars on the driver's class path, driver memory
    # and Java options are spark-submit's (--master, --packages/--jars, --driver-memory). Setting spark.master here
    # would silently replace the cluster with config's local[*]; spark.jars set now would reach the executors but
    # not the driver. So only session settings are applied, and the Delta classes are checked.
    submitted = under_spark_submit()
    builder = SparkSession.builder
    if not submitted:
        master = master or scfg.get("master") or "local[*]"
        if master.startswith("local") and "SPARK_LOCAL_IP" not in os.environ:
            os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
        builder = builder.master(master)
    builder = (
        builder.appName(app_name or scfg.get("app_name") or "shelltrace")
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.databricks.delta.schema.autoMerge.enabled", "false")
    )
    for key, value in common.items():
        builder = builder.config(key, value)
    if not verbose and not submitted:
        log4j = CONF_DIR / "log4j2.properties"
        builder = builder.config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log4j}")
        builder = builder.config("spark.executor.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log4j}")
    jars = [] if submitted else cached_jars(package)
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    elif not submitted:
        builder = builder.config("spark.jars.packages", package)
    for key, value in extra.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if not verbose:
        spark.sparkContext.setLogLevel("ERROR")
    if submitted:
        _require_delta_classes(spark, package)
    elif not jars:
        _cache_resolved_jars(spark, package)
    return spark


def _require_delta_classes(spark, package: str) -> None:
    """A driver started by spark-submit without the Delta jars fails later with "'JavaPackage' object is not
    callable"; say what to pass instead."""
    from py4j.java_gateway import JavaClass

    if not isinstance(spark.sparkContext._jvm.io.delta.tables.DeltaTable, JavaClass):
        from jobs.common import UserError

        raise UserError(f"the Delta jars are not on the driver's class path: give spark-submit --packages {package} "
                        f"(or --jars \"$(python -m jobs.session --print-jars)\")")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.session",
                                     description="Start a session once: fetches and caches the Delta jars.")
    parser.add_argument("--fetch-jars", action="store_true", help="resolve the Delta jars from Maven Central and cache them")
    parser.add_argument("--print-jars", action="store_true",
                        help="print the cached Delta jars as one comma-separated list (for spark-submit --jars); "
                             "fetches them first when the cache is empty")
    args = parser.parse_args(argv)
    from jobs.config import load_config

    cfg = load_config()
    if args.print_jars and cached_jars(cfg["spark"]["delta_package"]):
        print(",".join(cached_jars(cfg["spark"]["delta_package"])))
        return 0
    spark = get_spark(cfg)
    spark.range(1).count()
    package = cfg["spark"]["delta_package"]
    version = spark.version
    spark.stop()
    if args.print_jars:
        print(",".join(cached_jars(package)))
    else:
        print(f"Spark {version}; Delta jars for {package}: {len(cached_jars(package))} cached in {_jar_dir(package)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
