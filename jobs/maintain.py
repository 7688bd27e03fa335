"""`shelltrace maintain`: keep a lake fast and bounded. For every shelltrace table that exists:

  1. compaction: OPTIMIZE. silver/iis_request is Z-ordered by (FileName, HostName) within each event date, and only
     in the dates that are fragmented (two or more files under half the target size, which is what hourly transforms
     leave behind), so the hunt's (file, host) lookups keep skipping files; every other table is bin-packed.
  2. VACUUM: removes files no version younger than the retention needs (default 168 hours, Delta's own minimum;
     shorter retentions are refused: a hunt still reading an older snapshot would lose its files).
  3. checkpoint: writes a Delta checkpoint of each table, which also deletes log files and checkpoints older than
     the table's delta.logRetentionDuration (30 days by default).

Idempotent: a second run finds nothing fragmented and nothing to vacuum, and commits nothing but VACUUM's own
bookkeeping. Safe beside a running hunt or transform: OPTIMIZE changes no data (readers see the same rows at every
version), VACUUM keeps every file a snapshot of the last <retention> hours reads, and a compaction that collides
with a concurrent write is abandoned for that table (reported; the next run retries it), never forced.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from dataclasses import dataclass, field

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.common import UserError, add_common_arguments, module_main
from jobs.io import Lake, delta_conflicts, session_settings
from schemas import tables as T
from schemas.sentinel import SOURCES

log = logging.getLogger("shelltrace")

# Delta's default delta.deletedFileRetentionDuration: VACUUM below it would delete files a reader may still need
MIN_RETAIN_HOURS = 168
ZORDER_BY = ("FileName", "HostName")


def lake_tables() -> list[str]:
    """Every table shelltrace writes, in lake-relative names."""
    from jobs.hunt import STAGING

    names = [T.bronze(s).name for s in SOURCES] + [T.quarantine(s).name for s in SOURCES]
    names += [T.LANDED_FILES.name, T.TRANSFORMED_RUNS.name, T.IIS_REQUEST.name, T.IIS_REQUEST_STATS.name,
              T.ALERT_ENTITY.name, T.WEBSHELL_CANDIDATE.name, T.ALERT_FINDING.name, STAGING,
              T.ATTACKER_SUMMARY.name, T.HUNT_WATERMARK.name, T.HUNT_WAITING.name]
    return names


@dataclass
class TableReport:
    name: str
    files_before: int = 0
    files_after: int = 0
    optimized: str = "-"          # what compaction did: "-", "bin-packed", "z-ordered N date(s)", "skipped: ..."
    vacuumed: int = 0             # files deleted by VACUUM
    checkpoint: str = "-"
    seconds: float = 0.0

    def line(self) -> str:
        return (f"maintain {self.name}: files {self.files_before} -> {self.files_after}, {self.optimized}, "
                f"vacuumed {self.vacuumed} file(s), checkpoint {self.checkpoint} ({self.seconds:.1f}s)")


@dataclass
class MaintainResult:
    tables: list[TableReport] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    def summary(self) -> str:
        changed = sum(1 for t in self.tables if t.files_after != t.files_before or t.vacuumed)
        return (f"maintain: {len(self.tables)} table(s), {changed} changed, "
                f"{sum(t.files_before for t in self.tables)} -> {sum(t.files_after for t in self.tables)} files, "
                f"{sum(t.vacuumed for t in self.tables)} vacuumed"
                + (f"; compaction skipped (concurrent write) on {', '.join(self.conflicts)}: run again later"
                   if self.conflicts else ""))


def _num_files(lake: Lake, name: str) -> int:
    return int(lake.delta(name).detail().first()["numFiles"])


def fragmented_dates(lake: Lake, name: str, target_bytes: int) -> list[str]:
    """Event dates of a date-partitioned table holding two or more files under half the target size. Reads only the
    file metadata (_metadata.file_path/file_size per file, footers for row counts), never the rows' columns."""
    files = (lake.read(name).select(F.col("_event_date").cast("string").alias("d"),
                                    F.col("_metadata.file_path").alias("p"),
                                    F.col("_metadata.file_size").alias("s"))
             .groupBy("d", "p").agg(F.max("s").alias("s")))
    small = (files.where(F.col("s") < target_bytes / 2).groupBy("d").count()
             .where(F.col("count") >= 2).orderBy("d"))
    return [r["d"] for r in small.collect()]   # one row per date: a few hundred at most


def target_file_bytes(lake: Lake, name: str, rows_per_file: int) -> int:
    """The byte size of `rows_per_file` rows of this table, from its own average (what transform writes per file)."""
    detail = lake.delta(name).detail().first()
    rows = lake.read(name).count()            # answered from Delta's file statistics
    if not rows:
        return 0
    return max(1 << 20, int(detail["sizeInBytes"] / rows * rows_per_file))


def _file_size(size: int) -> dict:
    """OPTIMIZE's bin size and small-file threshold."""
    return {"spark.databricks.delta.optimize.maxFileSize": size, "spark.databricks.delta.optimize.minFileSize": size}


def optimize(spark: SparkSession, lake: Lake, name: str, cfg: dict) -> str:
    ident = lake.ident(name)
    if name == T.IIS_REQUEST.name:
        per_file = int(cfg.get("transform", {}).get("rows_per_file", 250_000))
        target = target_file_bytes(lake, name, per_file)
        dates = fragmented_dates(lake, name, target) if target else []
        if not dates:
            return "not fragmented"
        where = ", ".join(f"DATE'{d}'" for d in dates)
        with session_settings(spark, _file_size(target)):
            spark.sql(f"OPTIMIZE {ident} WHERE _event_date IN ({where}) ZORDER BY ({', '.join(ZORDER_BY)})")
        return f"z-ordered {len(dates)} date(s) by {'/'.join(ZORDER_BY)} (~{target >> 20} MiB files)"
    # bin-packing at maintain.target_file_mb (set on the session by maintain() around all such tables)
    row = spark.sql(f"OPTIMIZE {ident}").select("metrics.numFilesAdded", "metrics.numFilesRemoved").first()
    return f"bin-packed {row[1]} -> {row[0]} file(s)" if row and row[1] else "nothing to compact"


def vacuum(spark: SparkSession, lake: Lake, name: str, retain_hours: float) -> int:
    rows = spark.sql(f"VACUUM {lake.ident(name)} RETAIN {retain_hours:g} HOURS").collect()
    # open-source Delta returns the table path; its history records the count of deleted files
    hist = lake.delta(name).history(2).where("operation = 'VACUUM END'").select("operationMetrics").first()
    if hist and hist[0]:
        return int(hist[0].get("numDeletedFiles", 0) or 0)
    return max(0, len(rows) - 1)


def checkpoint(spark: SparkSession, lake: Lake, name: str) -> str:
    """A checkpoint at the current version (also cleans up expired log files). Needs open-source Delta's DeltaLog on
    a path lake; elsewhere (Databricks, catalog tables) Delta's automatic checkpoints do it."""
    if not lake.by_path:
        return "automatic (catalog table)"
    try:
        delta_log = spark._jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, lake.path(name))
        snapshot = delta_log.update(False, spark._jvm.scala.Option.empty(), spark._jvm.scala.Option.empty())
        delta_log.checkpoint(snapshot, spark._jvm.scala.Option.empty())
        return f"at version {snapshot.version()}"
    except Exception as exc:  # noqa: BLE001 - an internal API: fall back to Delta's automatic checkpoints
        log.debug("maintain %s: explicit checkpoint unavailable: %s", name, exc)
        return "automatic (explicit checkpoint unavailable)"


def maintain(spark: SparkSession, lake: Lake, cfg: dict, retain_hours: float | None = None,
             do_vacuum: bool = True) -> MaintainResult:
    m = cfg.get("maintain", {}) or {}
    retain = float(m.get("retain_hours", MIN_RETAIN_HOURS) if retain_hours is None else retain_hours)
    if retain < MIN_RETAIN_HOURS:
        raise UserError(f"VACUUM retention {retain:g} hours is below {MIN_RETAIN_HOURS} (Delta's "
                        "delta.deletedFileRetentionDuration): a hunt or reader on an older snapshot would lose files")
    names = [n for n in lake_tables() if lake.exists(n)]
    if not names:
        raise UserError(f"no shelltrace tables under {lake.describe()}")
    result = MaintainResult()
    done = iter(range(1, len(names) + 1))

    def one(name: str) -> None:
        started = time.monotonic()
        rep = TableReport(name, files_before=_num_files(lake, name))
        try:
            rep.optimized = optimize(spark, lake, name, cfg)
        except delta_conflicts():
            rep.optimized = "skipped: a concurrent write changed the same files"
            result.conflicts.append(name)
        if do_vacuum:
            rep.vacuumed = vacuum(spark, lake, name, retain)
        rep.checkpoint = checkpoint(spark, lake, name)
        rep.files_after = _num_files(lake, name)
        rep.seconds = time.monotonic() - started
        result.tables.append(rep)
        log.info("[%d/%d] %s", next(done), len(names), rep.line())

    # VACUUM lists a table's folders in spark.sql.sources.parallelPartitionDiscovery.parallelism tasks (10,000 by
    # default: minutes of task scheduling per small table on a laptop); a shuffle's partition count is plenty
    listing = max(2, int(spark.conf.get("spark.sql.shuffle.partitions", "8")))
    with session_settings(spark, {"spark.sql.sources.parallelPartitionDiscovery.parallelism": listing}):
        if T.IIS_REQUEST.name in names:          # alone: it sets its own OPTIMIZE file size
            one(T.IIS_REQUEST.name)
        target = int(float(m.get("target_file_mb", 128)) * (1 << 20))
        with session_settings(spark, _file_size(target)):
            for name in names:
                if name != T.IIS_REQUEST.name:
                    one(name)
    result.tables.sort(key=lambda t: names.index(t.name))
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--retain-hours", type=float, metavar="H",
                        help=f"VACUUM retention (default maintain.retain_hours, {MIN_RETAIN_HOURS}; never less)")
    parser.add_argument("--no-vacuum", action="store_true", help="compact and checkpoint only")
    add_common_arguments(parser)


def body(args, cfg, spark) -> int:
    lake = Lake.from_config(spark, cfg)
    result = maintain(spark, lake, cfg, args.retain_hours, do_vacuum=not args.no_vacuum)
    print(result.summary())
    return 1 if result.conflicts else 0


def main(argv=None) -> int:
    return module_main("maintain", add_arguments, body, argv)


if __name__ == "__main__":
    sys.exit(main())
