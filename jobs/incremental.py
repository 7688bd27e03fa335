"""`shelltrace hunt --incremental`: scheduled hunts that take the alerts landed since the previous successful run.

By ingestion, not by alert time: an alert that arrives late (export lag, a re-sent alert) has an old TimeGenerated and
falls outside a fixed "last hour" window, which is how the Sentinel rule misses it. Each run:

1. reads the watermark: the `to_ingested` of the last published run (`_state/hunt_watermark`), and the newest
   `_ingested_at` of alert rows silver holds (bronze rows of transformed landing runs);
2. claims the window (from_ingested = the watermark) with one MERGE on that key. Delta's optimistic concurrency makes
   the claim exclusive: of two runs starting at once, one inserts the claim row and the other either sees it or fails
   its commit (ConcurrentAppendException), and stops without publishing. A claim whose run died is taken over after
   `hunt.claim_timeout`; a failed run marks its claim `failed`, so the next run retries the same window at once;
3. hunts the window's alerts, plus the alerts still waiting for their host's IIS logs, over their log lookback
   (from the earliest alert time minus `hunt.log_lookback` to now), through the same stage -> gate -> publish path;
4. after publishing, records which alerts are still waiting (their host has no IIS request in the log window; kept
   until `hunt.retry_missing_logs` after they were first seen waiting) and only then marks the claim published,
   which moves the watermark. A run that fails anywhere before that leaves the watermark where it was.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import hunt as HJ
from jobs.common import new_run_id
from jobs.config import parse_duration
from jobs.io import Lake, delta_conflicts
from pipelines import quality as Q
from schemas import tables as T

log = logging.getLogger("shelltrace")

EPOCH = datetime(1970, 1, 1)
CLAIMED, PUBLISHED, FAILED = "claimed", "published", "failed"


@dataclass
class IncrementalResult:
    run_id: str
    from_ingested: datetime | None = None
    to_ingested: datetime | None = None
    claimed: bool = False
    holder: str | None = None
    new_alerts: int = 0
    retried_alerts: int = 0
    waiting: list = field(default_factory=list)
    expired: list = field(default_factory=list)
    hunt: HJ.HuntResult | None = None

    def summary(self) -> str:
        if not self.claimed:
            return (f"hunt --incremental: the window from {self.from_ingested} is held by run {self.holder}; "
                    f"nothing done (run {self.run_id})")
        if self.hunt is None:
            return f"hunt --incremental: no alert landed since {self.from_ingested} and none waiting (run {self.run_id})"
        state = "published; watermark moved to" if self.hunt.published else "NOT published; watermark stays before"
        return (f"hunt --incremental: {self.new_alerts} new and {self.retried_alerts} retried alert(s) ingested in "
                f"({self.from_ingested}, {self.to_ingested}]; {state} {self.to_ingested if self.hunt.published else self.from_ingested}; "
                f"{len(self.waiting)} alert(s) waiting for IIS logs, {len(self.expired)} given up (run {self.run_id})")


def _naive(t: datetime) -> datetime:
    return t.astimezone(timezone.utc).replace(tzinfo=None) if t.tzinfo else t


def watermark(lake: Lake) -> datetime:
    row = (lake.read(T.HUNT_WATERMARK.name).where(F.col("status") == PUBLISHED)
           .agg(F.max("to_ingested").alias("w")).first())
    return row["w"] if row and row["w"] is not None else EPOCH


def newest_transformed_alert(lake: Lake) -> datetime | None:
    """The newest `_ingested_at` of alert rows silver holds (their landing run was transformed)."""
    if not lake.exists("bronze/security_alert"):
        return None
    done = (lake.read(T.TRANSFORMED_RUNS.name).where(F.col("source") == "security_alert")
            .select(F.col("land_run_id").alias("_run_id")).distinct())
    row = (lake.read("bronze/security_alert").join(F.broadcast(done), "_run_id")
           .agg(F.max("_ingested_at").alias("w")).first())
    return row["w"] if row else None


def claim(lake: Lake, start: datetime, run_id: str, timeout: timedelta) -> str:
    """Claim the window starting at `start` for `run_id`; returns the run that holds it after the attempt."""
    spark = lake.spark
    now = _naive(datetime.now(timezone.utc))
    src = spark.createDataFrame([(start, run_id, now)], "from_ingested timestamp, run_id string, claimed_at timestamp")
    try:
        (lake.delta(T.HUNT_WATERMARK.name).alias("t")
         .merge(src.alias("s"), "t.from_ingested = s.from_ingested")
         .whenMatchedUpdate(
             condition=f"t.status = '{FAILED}' OR (t.status = '{CLAIMED}' AND t.claimed_at < "
                       f"timestamp'{now - timeout:%Y-%m-%d %H:%M:%S}')",
             set={"run_id": "s.run_id", "status": f"'{CLAIMED}'", "claimed_at": "s.claimed_at",
                  "finished_at": "null", "to_ingested": "null", "alerts": "null"})
         .whenNotMatchedInsert(values={"from_ingested": "s.from_ingested", "run_id": "s.run_id",
                                       "status": f"'{CLAIMED}'", "claimed_at": "s.claimed_at"})
         .execute())
    except delta_conflicts() as exc:
        log.info("hunt --incremental: another run claimed the window from %s first (%s)", start,
                 type(exc).__name__)
    row = lake.read(T.HUNT_WATERMARK.name).where(F.col("from_ingested") == F.lit(start)).select("run_id").first()
    return row["run_id"] if row else ""


def _finish_claim(lake: Lake, start: datetime, run_id: str, status: str, to_ingested=None, alerts=None) -> None:
    values = {"status": f"'{status}'", "finished_at": "current_timestamp()"}
    if to_ingested is not None:
        values["to_ingested"] = f"timestamp'{to_ingested:%Y-%m-%d %H:%M:%S.%f}'"
    if alerts is not None:
        values["alerts"] = str(int(alerts))
    lake.delta(T.HUNT_WATERMARK.name).update(
        (F.col("from_ingested") == F.lit(start)) & (F.col("run_id") == run_id), values)


def last_waiting(lake: Lake) -> DataFrame:
    """The waiting alerts recorded by the last published incremental run."""
    last = (lake.read(T.HUNT_WATERMARK.name).where(F.col("status") == PUBLISHED)
            .orderBy(F.desc("to_ingested")).select("run_id").first())
    waiting = lake.read(T.HUNT_WAITING.name)
    return waiting.where(F.col("run_id") == (last["run_id"] if last else ""))


def run(spark: SparkSession, lake: Lake, cfg: dict, as_of: datetime | None = None) -> IncrementalResult:
    hunt_cfg = cfg.get("hunt", {})
    result = IncrementalResult(new_run_id("hunt"))
    HJ.require_silver(lake)
    for tdef in (T.HUNT_WATERMARK, T.HUNT_WAITING):
        lake.ensure(tdef)
    now = _naive(as_of or datetime.now(timezone.utc).replace(second=0, microsecond=0))
    start = watermark(lake)
    end = newest_transformed_alert(lake)
    result.from_ingested = start
    holder = claim(lake, start, result.run_id, parse_duration(hunt_cfg.get("claim_timeout", "2h")))
    if holder != result.run_id:
        result.holder = holder
        return result
    result.claimed = True
    try:
        return _hunt_claimed(spark, lake, cfg, result, start, end, now)
    except BaseException:
        _finish_claim(lake, start, result.run_id, FAILED)
        raise


def _hunt_claimed(spark, lake, cfg, result: IncrementalResult, start, end, now) -> IncrementalResult:
    hunt_cfg = cfg.get("hunt", {})
    retry_for = parse_duration(hunt_cfg.get("retry_missing_logs", "24h"))
    # the watermark always moves forward (each window's start is its claim key): with nothing new ingested the run
    # still retries the waiting alerts, and the next window starts just after this one
    end = end if end is not None and end > start else start + timedelta(microseconds=1)
    result.to_ingested = end
    result.expired = sorted(r.SystemAlertId for r in last_waiting_expired(lake, now).collect())
    if result.expired:
        log.warning("hunt --incremental: gave up waiting for IIS logs of %d alert(s): %s", len(result.expired),
                    ", ".join(result.expired[:10]))
    new_ids = (lake.read("bronze/security_alert")
               .where((F.col("_ingested_at") > F.lit(start)) & (F.col("_ingested_at") <= F.lit(end)))
               .select("SystemAlertId").distinct())
    waiting = last_waiting(lake).where(F.col("retry_until") > F.lit(now)).select(
        "SystemAlertId", "waiting_since", "retry_until").persist()
    ids = new_ids.unionByName(waiting.select("SystemAlertId")).distinct()
    cands = (lake.read(T.WEBSHELL_CANDIDATE.name).join(ids, "SystemAlertId")
             .select("FileName", "HostName", "Directory", "SystemAlertId",
                     F.array_min("AlertTimes").alias("AlertTime"))
             .persist())
    try:
        result.new_alerts = new_ids.count()
        result.retried_alerts = waiting.count()
        times = cands.agg(F.min("AlertTime").alias("a"), F.max("AlertTime").alias("b")).first()
        if times["a"] is None:
            log.info("hunt --incremental: no web-shell candidate among %d new and %d waiting alert(s)",
                     result.new_alerts, result.retried_alerts)
            _finish_claim(lake, start, result.run_id, PUBLISHED, end, 0)
            return result
        lookback = parse_duration(hunt_cfg.get("log_lookback", "7d"))
        w = HJ.Windows(times["a"].replace(tzinfo=timezone.utc), times["b"].replace(tzinfo=timezone.utc)
                       + timedelta(microseconds=1),
                       min(times["a"], now).replace(tzinfo=timezone.utc) - lookback, now.replace(tzinfo=timezone.utc))
        log.info("hunt --incremental: %d new and %d retried alert(s) ingested in (%s, %s]; %s", result.new_alerts,
                 result.retried_alerts, start, end, w.describe())
        stats = HJ.host_request_stats(lake, w)
        still = (Q.candidate_host_logs(cands, stats).where(~F.col("has_logs"))
                 .select("HostName", F.explode("AlertIds").alias("SystemAlertId")))
        waiting_now = (cands.join(still, ["SystemAlertId", "HostName"]).select("SystemAlertId", "HostName", "FileName")
                       .distinct().join(waiting.select("SystemAlertId", "waiting_since", "retry_until"),
                                        "SystemAlertId", "left")
                       .withColumn("waiting_since", F.coalesce("waiting_since", F.lit(now)))
                       .withColumn("retry_until", F.coalesce("retry_until", F.lit(now + retry_for)))
                       .withColumn("run_id", F.lit(result.run_id))
                       .select(*[f.name for f in T.HUNT_WAITING.schema.fields]).persist())
        extra = {"alerts_waiting": (waiting_now, [_waiting_expectation()], ["SystemAlertId", "HostName"])}
        result.hunt = HJ.hunt(spark, lake, cfg, w, run_id=result.run_id, cands=cands, extra_frames=extra)
        if not result.hunt.published:
            _finish_claim(lake, start, result.run_id, FAILED)
            return result
        lake.append(waiting_now, T.HUNT_WAITING.name)
        result.waiting = [(r.SystemAlertId, r.HostName) for r in waiting_now.select("SystemAlertId", "HostName")
                          .limit(1000).collect()]
        _finish_claim(lake, start, result.run_id, PUBLISHED, end, result.new_alerts + result.retried_alerts)
        waiting_now.unpersist()
        return result
    finally:
        cands.unpersist()
        waiting.unpersist()


def last_waiting_expired(lake: Lake, now: datetime) -> DataFrame:
    """Alerts of the previous published run's waiting list whose retry time is over (reported once, then dropped)."""
    previous = (lake.read(T.HUNT_WATERMARK.name).where(F.col("status") == PUBLISHED)
                .orderBy(F.desc("to_ingested")).select("run_id").first())
    if previous is None:
        return lake.read(T.HUNT_WAITING.name).limit(0).select("SystemAlertId")
    return (lake.read(T.HUNT_WAITING.name).where((F.col("run_id") == previous["run_id"])
                                                 & (F.col("retry_until") <= F.lit(now)))
            .select("SystemAlertId").distinct())


def _waiting_expectation():
    import great_expectations as gx

    from jobs.gate import WARNING

    return gx.expectations.ExpectTableRowCountToEqual(value=0, severity=WARNING)
