"""`shelltrace transform`: bronze -> silver, incrementally and idempotently.

Only landing runs that silver does not hold yet are processed (ledger `_state/landed_files` minus
`_state/transformed_runs`). Requests are written with `replaceWhere _run_id IN (...)` (one atomic commit that also
replaces anything a crashed earlier attempt wrote for those runs); alert tables are MERGEd on natural keys. Running it
twice changes nothing.

Tables: silver/iis_request, silver/iis_request_stats, silver/alert_entity, silver/webshell_candidate, silver/alert_finding.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.common import add_common_arguments, module_main, new_run_id
from jobs.io import Lake
from pipelines import quality as Q
from pipelines.entities import alert_entities, candidate_rows, entity_findings
from pipelines.requests import normalize_requests
from schemas import tables as T
from schemas.sentinel import W3C_IIS_LOG

log = logging.getLogger("shelltrace")


@dataclass
class TransformResult:
    run_id: str
    iis_runs: int = 0
    alert_runs: int = 0
    requests: int = 0
    entities: int = 0
    candidates: int = 0
    findings: int = 0

    def summary(self) -> str:
        return (f"transform: {self.iis_runs} IIS and {self.alert_runs} alert landing run(s) processed; "
                f"requests {self.requests}, entities {self.entities}, candidates {self.candidates}, "
                f"findings {self.findings} (run {self.run_id})")


def pending_runs(lake: Lake, source: str) -> list[tuple[str, int]]:
    """Committed landing runs of `source` that silver does not hold yet, with their landed row counts."""
    if not lake.exists(T.LANDED_FILES.name):
        return []
    committed = (lake.read(T.LANDED_FILES.name)
                 .where((F.col("source") == source) & (F.col("status") == "committed"))
                 .groupBy(F.col("run_id").alias("land_run_id")).agg(F.sum("rows_landed").alias("rows")))
    done = lake.read(T.TRANSFORMED_RUNS.name).where(F.col("source") == source).select("land_run_id")
    return [(r.land_run_id, int(r.rows or 0)) for r in committed.join(done, "land_run_id", "left_anti").collect()]


def _run_filter(runs: list[str]):
    return F.col("_run_id").isin(runs)


def _in_list(runs: list[str]) -> str:
    return ", ".join("'" + r.replace("'", "''") + "'" for r in runs)


def transform_requests(spark: SparkSession, lake: Lake, runs: list[tuple[str, int]], cfg: dict) -> int:
    ids = [r for r, _ in runs]
    rows = sum(n for _, n in runs)
    per_file = int(cfg.get("transform", {}).get("rows_per_file", 250_000))
    n_files = max(1, math.ceil(rows / per_file))
    bronze = lake.read("bronze/w3c_iis_log").where(_run_filter(ids))
    silver = (bronze.transform(normalize_requests(W3C_IIS_LOG))
              .select(*[f.name for f in T.IIS_REQUEST.schema.fields], "_event_date")
              # files hold disjoint (date, FileName, HostName) ranges, sorted inside: min/max stats skip files
              .repartitionByRange(n_files, "_event_date", "FileName", "HostName")
              .sortWithinPartitions("_event_date", "FileName", "HostName")
              .drop("_event_date"))
    target = lake.path(T.IIS_REQUEST.name) if lake.by_path else None
    writer = (silver.write.format("delta").mode("overwrite")
              .option("replaceWhere", f"_run_id IN ({_in_list(ids)})"))
    # optimized writes would re-bin the range partitions; the layout here is deliberate
    with lake.optimized_writes(False):
        writer.save(target) if target else writer.saveAsTable(lake.ident(T.IIS_REQUEST.name).replace("`", ""))
    metrics = lake.last_operation_metrics(T.IIS_REQUEST.name)
    write_request_stats(lake, ids)
    return int(metrics.get("numOutputRows", 0))


def write_request_stats(lake: Lake, runs: list[str] | None) -> None:
    """silver/iis_request_stats for these landing runs (all runs when None), from the rows silver now holds: a
    columnar read of five columns of the runs' own files. replaceWhere on `_run_id`, like the requests."""
    requests = lake.read(T.IIS_REQUEST.name)
    if runs is not None:
        requests = requests.where(_run_filter(runs))
    stats = Q.request_stats(requests).coalesce(1)
    writer = stats.write.format("delta").mode("overwrite")
    if runs is not None:
        writer = writer.option("replaceWhere", f"_run_id IN ({_in_list(runs)})")
    writer.save(lake.path(T.IIS_REQUEST_STATS.name)) if lake.by_path else writer.saveAsTable(
        lake.ident(T.IIS_REQUEST_STATS.name).replace("`", ""))


def _merge(lake: Lake, name: str, source: DataFrame, condition: str, update: dict | None) -> dict:
    builder = lake.delta(name).alias("t").merge(source.alias("s"), condition)
    if update:
        builder = builder.whenMatchedUpdate(set=update)
    builder.whenNotMatchedInsertAll().execute()
    return lake.last_operation_metrics(name)


def transform_alerts(spark: SparkSession, lake: Lake, runs: list[tuple[str, int]], cfg: dict) -> tuple[int, int, int]:
    hunt = cfg.get("hunt", {})
    depth = int(cfg.get("transform", {}).get("entity_max_depth", 8))
    ids = [r for r, _ in runs]
    alerts = lake.read("bronze/security_alert").where(_run_filter(ids)).select(
        "SystemAlertId", "TimeGenerated", "ProviderName", "AlertName", "Entities").where(
        F.col("SystemAlertId").isNotNull())
    entities = alerts.transform(alert_entities(depth)).persist()
    try:
        per_entity = (entities.groupBy("SystemAlertId", "EntityIndex", "Entity").agg(
            F.array_sort(F.collect_set("TimeGenerated")).alias("AlertTimes"),
            F.min("TimeGenerated").alias("FirstAlertTime"),
            *[F.any_value(c).alias(c) for c in ("ProviderName", "AlertName", "EntityType", "FileNameRaw", "FileName",
                                                "Directory", "Sha1", "Sha256", "Md5", "HostNameRaw", "NetBiosName",
                                                "FQDN", "HostName")])
            .withColumn("EntityKey", F.xxhash64("SystemAlertId", "EntityIndex", "Entity"))
            .select(*[f.name for f in T.ALERT_ENTITY.schema.fields]))
        union_times = {"AlertTimes": "array_sort(array_distinct(concat(t.AlertTimes, s.AlertTimes)))",
                       "FirstAlertTime": "least(t.FirstAlertTime, s.FirstAlertTime)"}
        m1 = _merge(lake, T.ALERT_ENTITY.name, per_entity,
                    "t.EntityKey = s.EntityKey AND t.SystemAlertId = s.SystemAlertId",
                    {"AlertTimes": union_times["AlertTimes"], "FirstAlertTime": union_times["FirstAlertTime"]})
        cands = entities.transform(candidate_rows(hunt.get("providers", ["MDATP"]), hunt.get("script_extensions", [])))
        m2 = _merge(lake, T.WEBSHELL_CANDIDATE.name, cands,
                    "t.FileName = s.FileName AND t.HostName = s.HostName AND t.Directory <=> s.Directory "
                    "AND t.SystemAlertId = s.SystemAlertId",
                    {"AlertTimes": union_times["AlertTimes"]})
    finally:
        entities.unpersist()
    findings = alerts.transform(entity_findings(depth)).distinct()
    m3 = _merge(lake, T.ALERT_FINDING.name, findings,
                "t.SystemAlertId = s.SystemAlertId AND t.TimeGenerated <=> s.TimeGenerated AND t.Reason = s.Reason "
                "AND t.Detail <=> s.Detail", None)
    return (int(m1.get("numTargetRowsInserted", 0)), int(m2.get("numTargetRowsInserted", 0)),
            int(m3.get("numTargetRowsInserted", 0)))


def _record(spark: SparkSession, lake: Lake, source: str, runs, run_id: str) -> None:
    rows = spark.createDataFrame([(source, r, run_id) for r, _ in runs],
                                 "source string, land_run_id string, transform_run_id string")
    lake.append(rows.withColumn("recorded_at", F.current_timestamp()), T.TRANSFORMED_RUNS.name)


SILVER = (T.TRANSFORMED_RUNS, T.IIS_REQUEST, T.IIS_REQUEST_STATS, T.ALERT_ENTITY, T.WEBSHELL_CANDIDATE,
          T.ALERT_FINDING)


def ensure_silver(lake: Lake) -> None:
    """Create missing silver tables. A lake from before silver/iis_request_stats existed gets it computed from all
    of silver/iis_request once."""
    backfill = lake.exists(T.IIS_REQUEST.name) and not lake.exists(T.IIS_REQUEST_STATS.name)
    for tdef in SILVER:
        lake.ensure(tdef)
    if backfill:
        log.info("transform: computing silver/iis_request_stats from all of silver/iis_request (once)")
        write_request_stats(lake, None)


def full_refresh(lake: Lake) -> None:
    """Empty silver and its state, so the next transform rebuilds it from all of bronze (after a change of
    providers or script extensions)."""
    for tdef in SILVER:
        lake.delta(tdef.name).delete()


def transform(spark: SparkSession, lake: Lake, cfg: dict, refresh: bool = False) -> TransformResult:
    result = TransformResult(new_run_id("transform"))
    ensure_silver(lake)
    if refresh:
        full_refresh(lake)
        log.info("transform: full refresh, silver emptied")
    iis = pending_runs(lake, "w3c_iis_log") if lake.exists("bronze/w3c_iis_log") else []
    alerts = pending_runs(lake, "security_alert") if lake.exists("bronze/security_alert") else []
    if iis:
        log.info("transform: %d IIS landing run(s), %d bronze rows -> silver/iis_request", len(iis),
                 sum(n for _, n in iis))
        result.requests = transform_requests(spark, lake, iis, cfg)
        _record(spark, lake, "w3c_iis_log", iis, result.run_id)
        log.info("transform: silver/iis_request +%d rows", result.requests)
    if alerts:
        log.info("transform: %d alert landing run(s) -> silver alert tables", len(alerts))
        result.entities, result.candidates, result.findings = transform_alerts(spark, lake, alerts, cfg)
        _record(spark, lake, "security_alert", alerts, result.run_id)
        log.info("transform: alert_entity +%d, webshell_candidate +%d, alert_finding +%d", result.entities,
                 result.candidates, result.findings)
    if not iis and not alerts:
        log.info("transform: nothing new in bronze")
    result.iis_runs, result.alert_runs = len(iis), len(alerts)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--full-refresh", action="store_true",
                        help="rebuild silver from all of bronze (after changing hunt.providers or "
                             "hunt.script_extensions)")
    add_common_arguments(parser)


def body(args, cfg, spark) -> int:
    result = transform(spark, Lake.from_config(spark, cfg), cfg, refresh=args.full_refresh)
    print(result.summary())
    return 0


def main(argv=None) -> int:
    return module_main("transform", add_arguments, body, argv)


if __name__ == "__main__":
    sys.exit(main())
