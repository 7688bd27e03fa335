"""The hunt: candidates x requests -> one attacker-summary row per (AttackerIP, HostName, SiteName, ShellLocation)."""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.normalize import dir_part, norm_directory, trim_ws

KEY = ["AttackerIP", "HostName", "SiteName", "ShellLocation"]
SET_COLUMNS = [("RequestUserAgents", "csUserAgent"), ("RequestMethods", "csMethod"),
               ("RequestCookies", "csCookie"), ("RequestReferers", "csReferer"), ("RequestQueryStrings", "csUriQuery")]


def in_window(col, start: datetime, end: datetime):
    """Half-open [start, end)."""
    return (col >= F.lit(start)) & (col < F.lit(end))


def candidates_in_window(alerts_from: datetime, alerts_to: datetime):
    """Silver candidates (with each alert's landed row times in `AlertTimes`) -> candidates whose alert has a row in
    the window, the alert time being the earliest such row: FileName, HostName, Directory, SystemAlertId, AlertTime."""
    def apply(df: DataFrame) -> DataFrame:
        times = F.filter("AlertTimes", lambda t: (t >= F.lit(alerts_from)) & (t < F.lit(alerts_to)))
        return (df.withColumn("AlertTime", F.array_min(times))
                .where(F.col("AlertTime").isNotNull())
                .select("FileName", "HostName", "Directory", "SystemAlertId", "AlertTime"))
    return apply


def candidate_keys(cands: DataFrame) -> DataFrame:
    """Per (FileName, HostName): AlertIds, FirstAlertTime, and the normalised Directories for PathMatched."""
    return cands.groupBy("FileName", "HostName").agg(
        F.array_sort(F.collect_set("SystemAlertId")).alias("AlertIds"),
        F.min("AlertTime").alias("FirstAlertTime"),
        F.collect_set(norm_directory(F.col("Directory"))).alias("_dirs"))


def matching_requests(keys: DataFrame, logs_from: datetime, logs_to: datetime):
    """Requests in the log window with a cIP and a csUriStem whose (FileName, HostName) is a candidate's."""
    def apply(requests: DataFrame) -> DataFrame:
        r = requests.where(in_window(F.col("TimeGenerated"), logs_from, logs_to)
                           & F.col("cIP").isNotNull() & F.col("csUriStem").isNotNull())
        return r.join(F.broadcast(keys), ["FileName", "HostName"], "inner")
    return apply


def attacker_summary(max_set_size: int = 100):
    """Matched requests (with candidate keys joined) -> the contract's summary columns, run columns excluded."""
    def capped(c):
        return F.slice(F.array_sort(F.collect_set(c)), 1, max_set_size)

    def apply(matched: DataFrame) -> DataFrame:
        m = (matched.withColumn("AttackerIP", trim_ws(F.col("cIP")))
             .withColumn("SiteName", F.col("sSiteName"))
             .withColumn("_status", trim_ws(F.col("scStatus")).try_cast("int")))
        g = m.groupBy(*KEY).agg(
            F.any_value("FileName").alias("FileName"),
            F.count(F.lit(1)).alias("RequestCount"),
            F.min("TimeGenerated").alias("StartTime"),
            F.max("TimeGenerated").alias("EndTime"),
            *[capped(F.col(src)).alias(name) for name, src in SET_COLUMNS[:2]],
            capped(F.col("_status")).alias("RequestStatusCodes"),
            *[capped(F.col(src)).alias(name) for name, src in SET_COLUMNS[2:]],
            F.array_sort(F.collect_set("csUriStem")).alias("RawUriStems"),
            F.any_value("AlertIds").alias("AlertIds"),
            F.any_value("FirstAlertTime").alias("FirstAlertTime"),
            F.any_value("_dirs").alias("_dirs"),
        )
        loc_dir = dir_part(F.col("ShellLocation"))
        return (g.withColumn("PathMatched", F.exists("_dirs", lambda d: d.endswith(loc_dir)))
                .withColumn("timestamp", F.col("StartTime"))
                .withColumn("IPCustomEntity", F.col("AttackerIP"))
                .withColumn("HostCustomEntity", F.col("HostName"))
                .drop("_dirs"))
    return apply


def with_run_columns(alerts_from, alerts_to, logs_from, logs_to, run_id: str):
    def apply(df: DataFrame) -> DataFrame:
        return df.select("*", F.lit(alerts_from).alias("AlertWindowStart"), F.lit(alerts_to).alias("AlertWindowEnd"),
                         F.lit(logs_from).alias("LogWindowStart"), F.lit(logs_to).alias("LogWindowEnd"),
                         F.lit(run_id).alias("HuntRunId"), F.current_timestamp().alias("PublishedAt"))
    return apply


def summarize(candidates: DataFrame, alerts_from: datetime, alerts_to: datetime, logs_from: datetime,
              logs_to: datetime, max_set_size: int = 100):
    """Silver requests -> the attacker summary (run columns excluded), given silver candidates and the windows."""
    def apply(requests: DataFrame) -> DataFrame:
        keys = candidate_keys(candidates.transform(candidates_in_window(alerts_from, alerts_to)))
        return (requests.transform(matching_requests(keys, logs_from, logs_to))
                .transform(attacker_summary(max_set_size)))
    return apply
