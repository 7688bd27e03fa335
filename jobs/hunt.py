"""`shelltrace hunt`: web-shell candidates x IIS requests -> attacker summary, published to gold.

Windows are half-open [from, to). Either give them explicitly, or `--as-of` (default: now) with the configured
lookbacks (alerts 1 hour, logs 7 days, as in the Sentinel rule). The result is computed once (held by the
executors), checked by the quality gate, then upserted into gold/attacker_summary in one MERGE: a new key is
inserted; an existing key is replaced only when this run's LogWindowEnd is not older than the stored one; keys this
run did not see stay. A run the gate stops publishes nothing; its rows go to _staging/attacker_summary for
inspection.
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.common import UserError, add_common_arguments, module_main, new_run_id, parse_ts
from jobs.config import parse_duration
from jobs.io import Lake
from pipelines import hunt as H
from pipelines import quality as Q
from schemas import tables as T

log = logging.getLogger("shelltrace")

STAGING = "_staging/attacker_summary"


@dataclass
class Windows:
    alerts_from: datetime
    alerts_to: datetime
    logs_from: datetime
    logs_to: datetime

    def describe(self) -> str:
        f = "%Y-%m-%dT%H:%M:%SZ"
        return (f"alerts [{self.alerts_from:{f}}, {self.alerts_to:{f}}), "
                f"logs [{self.logs_from:{f}}, {self.logs_to:{f}})")


@dataclass
class HuntResult:
    run_id: str
    windows: Windows
    candidates: int = 0
    matched_requests: int = 0
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    files_read: int = 0
    files_total: int = 0
    published: bool = False
    gate: object = None

    def summary(self) -> str:
        return (f"hunt: candidates {self.candidates}, matched requests {self.matched_requests}, attacker rows "
                f"{self.rows}; gold inserted {self.inserted}, updated {self.updated}; silver/iis_request files read "
                f"{self.files_read} of {self.files_total} ({self.windows.describe()}; run {self.run_id})")


def resolve_windows(cfg: dict, alerts_from=None, alerts_to=None, logs_from=None, logs_to=None, as_of=None) -> Windows:
    hunt = cfg.get("hunt", {})
    now = parse_ts(as_of) if as_of else datetime.now(timezone.utc).replace(second=0, microsecond=0)
    a_to = parse_ts(alerts_to) if alerts_to else now
    a_from = parse_ts(alerts_from) if alerts_from else a_to - parse_duration(hunt.get("alert_lookback", "1h"))
    l_to = parse_ts(logs_to) if logs_to else now
    l_from = parse_ts(logs_from) if logs_from else l_to - parse_duration(hunt.get("log_lookback", "7d"))
    if a_from >= a_to:
        raise UserError(f"empty alert window: {a_from.isoformat()} is not before {a_to.isoformat()}")
    if l_from >= l_to:
        raise UserError(f"empty log window: {l_from.isoformat()} is not before {l_to.isoformat()}")
    return Windows(a_from, a_to, l_from, l_to)


def requests_scan(lake: Lake, w: Windows, pairs: list[tuple[str, str]], max_keys: int) -> DataFrame:
    """silver/iis_request restricted to the log window's dates, and, for a bounded number of candidate pairs, to
    their file and host names as literals: Delta prunes partitions and skips files by min/max statistics."""
    df = lake.read(T.IIS_REQUEST.name).where(
        (F.col("_event_date") >= F.lit(w.logs_from.date())) & (F.col("_event_date") <= F.lit(w.logs_to.date()))
        & H.in_window(F.col("TimeGenerated"), w.logs_from, w.logs_to))
    if 0 < len(pairs) <= max_keys:
        df = df.where(F.col("FileName").isin(sorted({p[0] for p in pairs}))
                      & F.col("HostName").isin(sorted({p[1] for p in pairs})))
    return df


def compute(spark: SparkSession, lake: Lake, cfg: dict, w: Windows, run_id: str,
            result: HuntResult, cands: DataFrame | None = None) -> tuple[DataFrame, DataFrame, DataFrame]:
    """The run's summary (not yet computed), and the persisted candidates and candidate keys it is built from.
    The candidates are those with an alert row in the alert window, unless given (incremental hunts)."""
    hunt = cfg.get("hunt", {})
    if cands is None:
        cands = lake.read(T.WEBSHELL_CANDIDATE.name).transform(H.candidates_in_window(w.alerts_from, w.alerts_to))
    cands = cands.persist()
    keys = H.candidate_keys(cands).persist()
    pairs = [(r.FileName, r.HostName) for r in keys.select("FileName", "HostName").collect()]
    result.candidates = cands.count()
    log.info("hunt: %d candidate(s) on %d (file, host) pair(s) in %s", result.candidates, len(pairs), w.describe())
    scan = requests_scan(lake, w, pairs, int(hunt.get("max_pushdown_keys", 5000)))
    result.files_read = len(scan.inputFiles()) if pairs else 0
    result.files_total = int(lake.delta(T.IIS_REQUEST.name).detail().first()["numFiles"])
    matched = scan.transform(H.matching_requests(keys, w.logs_from, w.logs_to))
    return (matched.transform(H.attacker_summary(int(hunt.get("max_set_size", 100))))
            .transform(H.with_run_columns(w.alerts_from, w.alerts_to, w.logs_from, w.logs_to, run_id))
            .select(*[f.name for f in T.GOLD_SCHEMA.fields])), cands, keys


def materialize(df: DataFrame) -> DataFrame:
    """The run's result computed once and held by the executors (a local checkpoint: its lineage is cut, so what
    the gate checks is exactly what is published; a lost executor fails the run rather than recomputing it)."""
    return df.localCheckpoint(eager=True)


def stage(lake: Lake, df: DataFrame, run_id: str) -> None:
    """Write a run's result to the staging table (one run's rows, replaced if the run id repeats): done when the
    gate stops a run, so its rows can be inspected there."""
    staging_def = T.TableDef(name=STAGING, schema=T.GOLD_SCHEMA, comment="Hunt results stopped by the quality gate",
                             properties={"shelltrace.layer": "staging"})
    lake.ensure(staging_def)
    writer = df.write.format("delta").mode("overwrite").option("replaceWhere", f"HuntRunId = '{run_id}'")
    writer.save(lake.path(STAGING)) if lake.by_path else writer.saveAsTable(lake.ident(STAGING).replace("`", ""))


def publish(lake: Lake, checked: DataFrame) -> tuple[int, int]:
    """Upsert the checked rows into gold in one Delta transaction (MERGE); (inserted, updated). The source is a
    local checkpoint (deterministic, already computed), so Delta need not materialize it again."""
    lake.ensure(T.ATTACKER_SUMMARY)
    cond = " AND ".join(f"t.{k} <=> s.{k}" for k in T.GOLD_KEY)
    with lake.session_setting("spark.databricks.delta.merge.materializeSource", "none"):
        m = (lake.delta(T.ATTACKER_SUMMARY.name).alias("t").merge(checked.alias("s"), cond)
             .whenMatchedUpdateAll(condition="s.LogWindowEnd >= t.LogWindowEnd")
             .whenNotMatchedInsertAll().execute().first())
    return int(m["num_inserted_rows"]), int(m["num_updated_rows"])


def require_silver(lake: Lake) -> None:
    for name in (T.WEBSHELL_CANDIDATE.name, T.IIS_REQUEST.name):
        if not lake.exists(name):
            raise UserError(f"{lake.describe()}/{name} does not exist: run `shelltrace transform` first")


def hunt(spark: SparkSession, lake: Lake, cfg: dict, w: Windows, *, run_id: str | None = None,
         cands: DataFrame | None = None, extra_frames=None) -> HuntResult:
    """Compute, check and publish (or, when the gate fails, stage). `cands` and `extra_frames` (name ->
    (DataFrame, expectations, index columns), validated with the rest) are for incremental hunts."""
    run_id = run_id or new_run_id("hunt")
    result = HuntResult(run_id, w)
    require_silver(lake)
    summary, cands, keys = compute(spark, lake, cfg, w, run_id, result, cands)
    try:
        checked = materialize(summary)
        stats = checked.agg(F.count("*").alias("rows"),
                            F.coalesce(F.sum("RequestCount"), F.lit(0)).alias("req")).first()
        result.rows, result.matched_requests = int(stats["rows"]), int(stats["req"])
        log.info("hunt: computed %d attacker row(s) from %d matched request(s)", result.rows, result.matched_requests)
        result.gate = check(spark, lake, cfg, w, run_id, checked, cands, extra_frames)
        if result.gate.failed_critical:
            stage(lake, checked, run_id)
            log.error("hunt: quality gate failed; nothing published (the run's rows are in %s, HuntRunId %s)",
                      lake.ident(STAGING), run_id)
            return result
        result.inserted, result.updated = publish(lake, checked)
        result.published = True
    finally:
        # the checked rows are a local checkpoint: its blocks go when the DataFrame is garbage-collected
        for df in (cands, keys):
            df.unpersist()
    return result


def quality_dir(lake: Lake, cfg: dict) -> str | None:
    configured = cfg.get("quality", {}).get("records_dir")
    if configured:
        return configured
    return f"{lake.root}/_quality" if lake.by_path and lake.root.startswith("/") else None


def check(spark: SparkSession, lake: Lake, cfg: dict, w: Windows, run_id: str, checked: DataFrame, cands: DataFrame,
          extra_frames=None):
    """Run the quality gate on the run's rows and on the run's inputs."""
    from jobs import gate as G

    host_stats = host_request_stats(lake, w).persist()
    frames = G.hunt_frames(
        cfg, checked,
        ledger=lake.read(T.LANDED_FILES.name) if lake.exists(T.LANDED_FILES.name) else None,
        findings=lake.read(T.ALERT_FINDING.name), entities=lake.read(T.ALERT_ENTITY.name),
        cands=cands, host_stats=host_stats, w=w)
    frames.update(extra_frames or {})
    try:
        gate = G.run_gate(run_id, frames, quality_dir(lake, cfg))
    finally:
        host_stats.unpersist()
    log.info("hunt: quality gate %s in %.1fs", gate.verdict, gate.seconds)
    return gate


def _requests_between(lake: Lake, start: datetime, end: datetime) -> DataFrame:
    return lake.read(T.IIS_REQUEST.name).where(
        (F.col("_event_date") >= F.lit(start.date())) & (F.col("_event_date") <= F.lit(end.date()))
        & H.in_window(F.col("TimeGenerated"), start, end))


def host_request_stats(lake: Lake, w: Windows) -> DataFrame:
    """Per host: IIS requests in the log window, and those without cIP or server name. From the per-minute table
    transform keeps (silver/iis_request_stats) for the window's whole minutes; only the partial minutes at its ends
    (a window not on the minute) are counted from the requests themselves. A lake without that table is scanned."""
    if not lake.exists(T.IIS_REQUEST_STATS.name):
        return Q.host_request_stats(_requests_between(lake, w.logs_from, w.logs_to))
    first = _ceil_minute(w.logs_from)
    end = max(first, w.logs_to.replace(second=0, microsecond=0))
    edges = [(a, b) for a, b in ((w.logs_from, min(first, w.logs_to)), (max(end, w.logs_from), w.logs_to)) if a < b]
    edge_stats = None
    for a, b in edges:
        part = Q.host_request_stats(_requests_between(lake, a, b))
        edge_stats = part if edge_stats is None else edge_stats.unionByName(part)
    return Q.host_stats_from_minutes(lake.read(T.IIS_REQUEST_STATS.name), first, end, edge_stats)


def _ceil_minute(t: datetime) -> datetime:
    floor = t.replace(second=0, microsecond=0)
    return floor if floor == t else floor + timedelta(minutes=1)


def show_gold(lake: Lake, run_id: str, top: int) -> None:
    gold = lake.read(T.ATTACKER_SUMMARY.name).where(F.col("HuntRunId") == run_id)
    cols = ["AttackerIP", "HostName", "SiteName", "ShellLocation", "RequestCount", "StartTime", "EndTime",
            "RequestMethods", "RequestStatusCodes", "PathMatched", "AlertIds"]
    gold.orderBy(F.desc("RequestCount"), "AttackerIP").select(
        *cols[:-1], F.size("AlertIds").alias("Alerts")).show(top, truncate=60)


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("windows (ISO-8601, UTC when no zone; half-open [from, to))")
    g.add_argument("--alerts-from", metavar="TS")
    g.add_argument("--alerts-to", metavar="TS")
    g.add_argument("--logs-from", metavar="TS")
    g.add_argument("--logs-to", metavar="TS")
    g.add_argument("--as-of", metavar="TS", help="end of both windows when not given (default now); the starts "
                   "are as-of minus hunt.alert_lookback (1h) and hunt.log_lookback (7d)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_window_arguments(parser)
    parser.add_argument("--incremental", action="store_true",
                        help="scheduled mode: hunt the alerts landed (by ingestion) since the last successful "
                             "incremental run, plus alerts still waiting for their host's IIS logs (retried for "
                             "hunt.retry_missing_logs, default 24h), over their log lookback up to --as-of (default "
                             "now); the watermark moves only after publishing, and two runs at once cannot both "
                             "take the same alerts (the second stops; a dead run's claim expires after "
                             "hunt.claim_timeout). The alert window options do not apply")
    add_common_arguments(parser)


def windows_from_args(cfg, args) -> Windows:
    return resolve_windows(cfg, args.alerts_from, args.alerts_to, args.logs_from, args.logs_to, args.as_of)


def finish(lake: Lake, cfg: dict, result: HuntResult) -> int:
    """Print the published rows, the summary, the gate's report; the exit status (3 when the gate failed)."""
    from jobs.common import EXIT_QUALITY
    from jobs.gate import report

    if result.published:
        show_gold(lake, result.run_id, int(cfg.get("hunt", {}).get("show_top", 20)))
    print(result.summary())
    if result.gate is not None:
        for line in report(result.gate):
            print(line)
    return 0 if result.published else EXIT_QUALITY


def body(args, cfg, spark) -> int:
    lake = Lake.from_config(spark, cfg)
    if args.incremental:
        from jobs import incremental

        if args.alerts_from or args.alerts_to or args.logs_from or args.logs_to:
            raise UserError("--incremental takes its windows from the watermark: use --as-of only")
        inc = incremental.run(spark, lake, cfg, parse_ts(args.as_of) if args.as_of else None)
        code = finish(lake, cfg, inc.hunt) if inc.hunt is not None else 0
        print(inc.summary())
        return code
    return finish(lake, cfg, hunt(spark, lake, cfg, windows_from_args(cfg, args)))


def main(argv=None) -> int:
    return module_main("hunt", add_arguments, body, argv)


if __name__ == "__main__":
    sys.exit(main())
