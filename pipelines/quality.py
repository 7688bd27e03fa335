"""Frames the quality gate validates: the staged hunt result with helper columns, and per-run input metrics.
Pure: DataFrames in, DataFrames out."""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

SET_COLUMNS = ["RequestUserAgents", "RequestMethods", "RequestStatusCodes", "RequestCookies", "RequestReferers",
               "RequestQueryStrings"]


def gold_check_frame(df: DataFrame) -> DataFrame:
    """The staged result plus the derived values row-level checks compare (last segment, array sizes)."""
    return df.select("*", F.substring_index("ShellLocation", "/", -1).alias("_last_segment"),
                     F.size("AlertIds").alias("_n_AlertIds"),
                     *[F.size(c).alias(f"_n_{c}") for c in SET_COLUMNS])


def quarantine_share(ledger: DataFrame) -> DataFrame:
    """Per source, over everything landed: rows read, quarantined, and their share."""
    committed = ledger.where(F.col("status") == "committed")
    return (committed.groupBy("source").agg(F.sum("rows_read").alias("rows_read"),
                                           F.sum("rows_quarantined").alias("rows_quarantined"))
            .withColumn("share", F.when(F.col("rows_read") > 0, F.col("rows_quarantined") / F.col("rows_read"))
                        .otherwise(F.lit(0.0))))


def files_without_host(entities: DataFrame, alerts_from: datetime, alerts_to: datetime, extensions_regex: str):
    """Web-shell file entities (script names) of alerts in the window whose alert has no usable host entity."""
    in_win = entities.where(F.exists("AlertTimes", lambda t: (t >= F.lit(alerts_from)) & (t < F.lit(alerts_to))))
    hosts = in_win.where((F.lower("EntityType") == "host") & F.col("HostName").isNotNull()).select("SystemAlertId")
    return (in_win.where((F.lower("EntityType") == "file") & F.col("FileName").rlike(extensions_regex))
            .join(hosts, "SystemAlertId", "left_anti")
            .select("SystemAlertId", "FileName", "Directory").distinct())


def host_request_stats(requests: DataFrame) -> DataFrame:
    """One pass over the log window's requests: per HostName, rows, rows without a client IP, rows without any
    server name (sComputerName nor Computer). Small: one row per host."""
    return requests.groupBy("HostName").agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_if(F.col("cIP").isNull()).alias("no_cip"),
        F.count_if(F.col("sComputerName").isNull() & F.col("Computer").isNull()).alias("no_host"))


def request_stats(requests: DataFrame) -> DataFrame:
    """silver/iis_request rows -> per (landing run, minute, host): rows, rows without cIP, rows without any server
    name. Sums of these give host_request_stats over any minute-aligned window."""
    return requests.groupBy("_run_id", F.date_trunc("minute", "TimeGenerated").alias("Minute"), "HostName").agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_if(F.col("cIP").isNull()).alias("no_cip"),
        F.count_if(F.col("sComputerName").isNull() & F.col("Computer").isNull()).alias("no_host"))


def host_stats_from_minutes(stats: DataFrame, first_minute: datetime, end_minute: datetime,
                            edges: DataFrame | None = None) -> DataFrame:
    """host_request_stats of the whole minutes [first_minute, end_minute) from request_stats rows, plus `edges`
    (host_request_stats of the window's partial minutes, computed from the requests themselves) when the window
    does not start or end on a minute."""
    whole = (stats.where((F.col("Minute") >= F.lit(first_minute)) & (F.col("Minute") < F.lit(end_minute)))
             .groupBy("HostName").agg(*[F.sum(c).alias(c) for c in ("rows", "no_cip", "no_host")]))
    if edges is None:
        return whole
    return (whole.unionByName(edges).groupBy("HostName")
            .agg(*[F.sum(c).cast("long").alias(c) for c in ("rows", "no_cip", "no_host")]))


def candidate_host_logs(cands: DataFrame, host_stats: DataFrame) -> DataFrame:
    """For each candidate host: its alerts, and how many IIS requests the log window holds for it at all (0 means an
    empty result is explained by missing logs, not by the absence of an attacker)."""
    return (cands.groupBy("HostName").agg(F.array_sort(F.collect_set("SystemAlertId")).alias("AlertIds"))
            .join(host_stats.select("HostName", F.col("rows").alias("requests_in_window")), "HostName", "left")
            .withColumn("requests_in_window", F.coalesce("requests_in_window", F.lit(0)))
            .withColumn("has_logs", F.col("requests_in_window") > 0))


def iis_gaps(host_stats: DataFrame) -> DataFrame:
    """IIS rows in the log window without a client IP, or without any server name (one row)."""
    return host_stats.agg(F.coalesce(F.sum("rows"), F.lit(0)).alias("rows"),
                          F.coalesce(F.sum("no_cip"), F.lit(0)).alias("no_cip"),
                          F.coalesce(F.sum("no_host"), F.lit(0)).alias("no_host"))
