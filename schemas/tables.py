"""Definitions of the lake's tables: columns (with comments), partitioning, generated columns, properties,
constraints. jobs/io.py creates them explicitly from these; nothing is created implicitly by a write."""
from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql.types import (ArrayType, BooleanType, DateType, IntegerType, LongType, MapType, StringType,
                               StructField, StructType, TimestampType)

from schemas.sentinel import SOURCES

# Properties of every table: readable by other engines (no deletion vectors, no column mapping),
# files sized by optimized writes, statistics on the first columns.
BASE_PROPERTIES = {
    "delta.enableDeletionVectors": "false",
    "delta.autoOptimize.optimizeWrite": "true",
}


@dataclass(frozen=True)
class TableDef:
    name: str                      # lake-relative name: "<layer>/<table>"
    schema: StructType             # written columns (comments in field metadata)
    comment: str
    partitioned_by: tuple = ()
    generated: tuple = ()          # ((column, type, SQL expression, comment), ...)
    properties: dict = field(default_factory=dict)
    constraints: dict = field(default_factory=dict)   # name -> SQL boolean expression

    @property
    def all_properties(self) -> dict:
        return {**BASE_PROPERTIES, **self.properties}


def _f(name, dtype, comment, nullable=True):
    return StructField(name, dtype, nullable, {"comment": comment})


INGEST_COLUMNS = [
    _f("_extra", MapType(StringType(), StringType()),
       "Columns the schema lacks, and raw values that did not fit their column's type (never dropped)"),
    _f("_source_file", StringType(), "File the row was read from"),
    _f("_line", LongType(), "1-based line number in the file (text formats; null for CSV)"),
    _f("_ingested_at", TimestampType(), "When the row was landed (UTC)"),
    _f("_run_id", StringType(), "Id of the landing run"),
]
EVENT_DATE = (("_event_date", DateType(), "CAST(TimeGenerated AS DATE)", "Event date (UTC) of TimeGenerated"),)


def bronze(source: str) -> TableDef:
    schema = StructType(list(SOURCES[source].fields) + INGEST_COLUMNS)
    return TableDef(
        name=f"bronze/{source}",
        schema=schema,
        comment=f"Landed {source} export rows, typed; partitioned by event date",
        partitioned_by=("_event_date",),
        generated=EVENT_DATE,
        # statistics only where bronze is filtered (event time, run, file): cheaper writes than stats on every column
        # land sizes bronze files itself (coalesce by input size): an optimized write's shuffle of every landed row
        # cost a fifth of landing time
        properties={"shelltrace.layer": "bronze",
                    "delta.dataSkippingStatsColumns": "TimeGenerated,_run_id,_source_file,_line",
                    "delta.autoOptimize.optimizeWrite": "false"},
        constraints={"time_generated_present": "TimeGenerated IS NOT NULL"},
    )


QUARANTINE_SCHEMA = StructType([
    _f("source", StringType(), "security_alert or w3c_iis_log"),
    _f("_source_file", StringType(), "File the record was read from"),
    _f("_line", LongType(), "1-based line number (text formats)"),
    _f("raw", StringType(), "The record as read"),
    _f("reason", StringType(), "Why it was not landed"),
    _f("_run_id", StringType(), "Id of the landing run"),
    _f("_ingested_at", TimestampType(), "When it was quarantined (UTC)"),
])


def quarantine(source: str) -> TableDef:
    return TableDef(name=f"quarantine/{source}", schema=QUARANTINE_SCHEMA,
                    comment=f"{source} records that could not be landed, with the reason",
                    properties={"shelltrace.layer": "quarantine"})


LANDED_FILES = TableDef(
    name="_state/landed_files",
    schema=StructType([
        _f("source", StringType(), "security_alert or w3c_iis_log"),
        _f("path", StringType(), "File path as listed"),
        _f("size", LongType(), "File size in bytes when landed"),
        _f("modification_time", TimestampType(), "File modification time when landed"),
        _f("format", StringType(), "jsonl, csv or w3c"),
        _f("lines", LongType(), "Lines consumed from the file (text formats): a grown file lands from here"),
        _f("status", StringType(), "started, committed or rolled_back"),
        _f("rows_read", LongType(), "Records read in this run"),
        _f("rows_landed", LongType(), "Records landed in this run"),
        _f("rows_quarantined", LongType(), "Records quarantined in this run"),
        _f("run_id", StringType(), "Landing run"),
        _f("recorded_at", TimestampType(), "When this entry was written"),
    ]),
    comment="Exactly-once ledger of landed files: a file (or the part of it) is landed once, even after a crash",
    properties={"shelltrace.layer": "state"},
)


HUNT_WATERMARK = TableDef(
    name="_state/hunt_watermark",
    schema=StructType([
        _f("from_ingested", TimestampType(), "Alerts ingested after this time are the run's (its key: one run per "
           "start; 1970-01-01 for the first run)", nullable=False),
        _f("to_ingested", TimestampType(), "... up to this time (the newest transformed alert row at the start)"),
        _f("run_id", StringType(), "The hunt run holding (claimed) or having published this window"),
        _f("status", StringType(), "claimed, published or failed"),
        _f("claimed_at", TimestampType(), "When the run claimed the window"),
        _f("finished_at", TimestampType(), "When it published or failed"),
        _f("alerts", LongType(), "Alerts hunted (new and retried)"),
    ]),
    comment="Incremental hunts: each run claims the window of alert ingestion after the last published one, and "
            "records it as published only after gold was published. A failed run leaves the watermark where it was",
    properties={"shelltrace.layer": "state"},
)

HUNT_WAITING = TableDef(
    name="_state/hunt_waiting",
    schema=StructType([
        _f("run_id", StringType(), "The incremental hunt run that found the alert's host without IIS logs"),
        _f("SystemAlertId", StringType(), "Alert id"),
        _f("HostName", StringType(), "Candidate host without IIS requests in the log window"),
        _f("FileName", StringType(), "Candidate file"),
        _f("waiting_since", TimestampType(), "When the alert was first found waiting"),
        _f("retry_until", TimestampType(), "Retried by incremental hunts until then"),
    ]),
    comment="Alerts whose host had no IIS logs yet (export lag) when hunted incrementally; the next runs hunt them "
            "again until their logs arrive or retry_until passes. The rows of the last published run are current",
    properties={"shelltrace.layer": "state"},
)


# ---------------------------------------------------------------------------------------------------------- silver

def _iis_request_schema() -> StructType:
    from schemas.sentinel import W3C_IIS_LOG

    return StructType(list(W3C_IIS_LOG.fields) + [
        _f("HostName", StringType(), "norm_host(sComputerName), else norm_host(Computer)"),
        _f("ShellLocation", StringType(), "norm_uri(csUriStem)"),
        _f("FileName", StringType(), "norm_file(csUriStem): the last segment of ShellLocation"),
        _f("_source_file", StringType(), "File the bronze row was landed from"),
        _f("_line", LongType(), "Line in that file"),
        _f("_run_id", StringType(), "Landing run of the bronze row"),
    ])


IIS_REQUEST = TableDef(
    name="silver/iis_request",
    schema=_iis_request_schema(),
    comment="Every IIS request in the contract's normal forms, empty values as null. Partitioned by event date; "
            "within a date, files are range-partitioned and sorted by (FileName, HostName) so a hunt for a few "
            "files and hosts skips most files by their min/max statistics",
    partitioned_by=("_event_date",),
    generated=EVENT_DATE,
    properties={"shelltrace.layer": "silver", "delta.dataSkippingStatsColumns":
                "TimeGenerated,FileName,HostName,ShellLocation,cIP,_run_id"},
)

IIS_REQUEST_STATS = TableDef(
    name="silver/iis_request_stats",
    schema=StructType([
        _f("_run_id", StringType(), "Landing run of the requests counted"),
        _f("Minute", TimestampType(), "TimeGenerated truncated to the minute (UTC)"),
        _f("HostName", StringType(), "HostName of silver/iis_request (null: the row names no server)"),
        _f("rows", LongType(), "Requests"),
        _f("no_cip", LongType(), "Requests without a client IP (cIP)"),
        _f("no_host", LongType(), "Requests with neither sComputerName nor Computer"),
    ]),
    comment="Per landing run, minute and host: how many IIS requests silver holds, and how many lack a client IP or "
            "a server name. Written with silver/iis_request; the quality gate reads it instead of every request",
    properties={"shelltrace.layer": "silver", "delta.dataSkippingStatsColumns": "Minute,HostName,_run_id"},
)

ALERT_ENTITY = TableDef(
    name="silver/alert_entity",
    schema=StructType([
        _f("SystemAlertId", StringType(), "Alert id"),
        _f("AlertTimes", ArrayType(TimestampType()), "TimeGenerated of every landed row of the alert (sorted)"),
        _f("FirstAlertTime", TimestampType(), "Earliest TimeGenerated of the alert"),
        _f("ProviderName", StringType(), "Provider of the alert"),
        _f("AlertName", StringType(), "Name of the alert"),
        _f("EntityIndex", IntegerType(), "Position in the Entities array"),
        _f("EntityType", StringType(), "Type of the entity as written"),
        _f("Entity", StringType(), "The entity as JSON, after $ref resolution"),
        _f("FileNameRaw", StringType(), "File entity: Name"),
        _f("FileName", StringType(), "File entity: norm_file(Name)"),
        _f("Directory", StringType(), "File entity: Directory"),
        _f("Sha1", StringType(), "File entity: SHA1 from FileHashes"),
        _f("Sha256", StringType(), "File entity: SHA256 from FileHashes"),
        _f("Md5", StringType(), "File entity: MD5 from FileHashes"),
        _f("HostNameRaw", StringType(), "Host entity: HostName"),
        _f("NetBiosName", StringType(), "Host entity: NetBiosName"),
        _f("FQDN", StringType(), "Host entity: FQDN"),
        _f("HostName", StringType(), "Host entity: norm_host(HostName), else norm_host(NetBiosName)"),
        _f("EntityKey", LongType(), "Hash of (SystemAlertId, EntityIndex, Entity): one row per alert entity"),
    ]),
    comment="One row per top-level alert entity after $ref resolution; an alert landed several times counts once",
    properties={"shelltrace.layer": "silver"},
)

WEBSHELL_CANDIDATE = TableDef(
    name="silver/webshell_candidate",
    schema=StructType([
        _f("FileName", StringType(), "norm_file of the file entity's Name (a script)"),
        _f("HostName", StringType(), "norm_host of the host entity"),
        _f("Directory", StringType(), "Directory of the file entity"),
        _f("SystemAlertId", StringType(), "Alert id"),
        _f("AlertTimes", ArrayType(TimestampType()), "TimeGenerated of every landed row of the alert naming the pair"),
    ]),
    comment="The contract's web-shell candidates: (script file entity, host entity) pairs of one alert from the "
            "configured providers. The hunt picks those with an alert row in its window",
    properties={"shelltrace.layer": "silver"},
)

ALERT_FINDING = TableDef(
    name="silver/alert_finding",
    schema=StructType([
        _f("SystemAlertId", StringType(), "Alert id"),
        _f("TimeGenerated", TimestampType(), "TimeGenerated of the alert row"),
        _f("ProviderName", StringType(), "Provider of the alert"),
        _f("Reason", StringType(), "Why (part of) the alert's Entities could not be used"),
        _f("Detail", StringType(), "The unresolvable reference, or the start of the unusable value"),
    ]),
    comment="Data-quality findings: alerts whose Entities could not be used, and unresolvable $ref entities",
    properties={"shelltrace.layer": "silver"},
)

TRANSFORMED_RUNS = TableDef(
    name="_state/transformed_runs",
    schema=StructType([
        _f("source", StringType(), "security_alert or w3c_iis_log"),
        _f("land_run_id", StringType(), "A committed landing run whose bronze rows are in silver"),
        _f("transform_run_id", StringType(), "The transform run that processed it"),
        _f("recorded_at", TimestampType(), "When"),
    ]),
    comment="Which landing runs silver already holds: transform processes only the others",
    properties={"shelltrace.layer": "state"},
)

# ------------------------------------------------------------------------------------------------------------ gold

_STR_ARR = ArrayType(StringType(), containsNull=False)
GOLD_COLUMNS = [
    ("AttackerIP", StringType(), "cIP of the requests, trimmed", False),
    ("HostName", StringType(), "Normalised host name (short, lowercase)", False),
    ("SiteName", StringType(), "sSiteName as logged (null when the server does not log it)", True),
    ("ShellLocation", StringType(), "Normalised requested path (norm_uri of csUriStem)", False),
    ("FileName", StringType(), "Last segment of ShellLocation", False),
    ("RequestCount", LongType(), "Number of matching requests", False),
    ("StartTime", TimestampType(), "First request (UTC)", False),
    ("EndTime", TimestampType(), "Last request (UTC)", False),
    ("RequestUserAgents", _STR_ARR, "Sorted distinct user agents (at most max_set_size)", False),
    ("RequestMethods", _STR_ARR, "Sorted distinct HTTP methods (at most max_set_size)", False),
    ("RequestStatusCodes", ArrayType(IntegerType(), containsNull=False), "Sorted distinct status codes", False),
    ("RequestCookies", _STR_ARR, "Sorted distinct cookies (at most max_set_size)", False),
    ("RequestReferers", _STR_ARR, "Sorted distinct referers (at most max_set_size)", False),
    ("RequestQueryStrings", _STR_ARR, "Sorted distinct query strings (at most max_set_size)", False),
    ("RawUriStems", _STR_ARR, "Sorted distinct csUriStem as logged", False),
    ("AlertIds", _STR_ARR, "Sorted distinct SystemAlertId of the alerts naming this file on this host", False),
    ("FirstAlertTime", TimestampType(), "Earliest alert time of those alerts (UTC)", False),
    ("PathMatched", BooleanType(), "The request's directory is a suffix of an alert's file Directory", False),
    ("timestamp", TimestampType(), "StartTime (Sentinel entity mapping)", False),
    ("IPCustomEntity", StringType(), "AttackerIP (Sentinel entity mapping)", False),
    ("HostCustomEntity", StringType(), "HostName (Sentinel entity mapping)", False),
    ("AlertWindowStart", TimestampType(), "Alert window of the run that computed the row, start (inclusive)", False),
    ("AlertWindowEnd", TimestampType(), "Alert window end (exclusive)", False),
    ("LogWindowStart", TimestampType(), "Log window start (inclusive)", False),
    ("LogWindowEnd", TimestampType(), "Log window end (exclusive); a row is only replaced by a run whose "
                                      "LogWindowEnd is not older", False),
    ("HuntRunId", StringType(), "Run that published the row", False),
    ("PublishedAt", TimestampType(), "When it was published (UTC)", False),
]
GOLD_SCHEMA = StructType([StructField(n, t, nullable, {"comment": c}) for n, t, c, nullable in GOLD_COLUMNS])
GOLD_KEY = ("AttackerIP", "HostName", "SiteName", "ShellLocation")

ATTACKER_SUMMARY = TableDef(
    name="gold/attacker_summary",
    schema=GOLD_SCHEMA,
    comment="Attackers of web shells named by Defender for Endpoint alerts: one row per (AttackerIP, HostName, "
            "SiteName, ShellLocation). Published by shelltrace hunt after its quality checks",
    properties={
        "shelltrace.layer": "gold",
        # readable by delta-rs and other engines: no deletion vectors, no column mapping, classic checkpoints
        "delta.enableDeletionVectors": "false",
        "delta.checkpointPolicy": "classic",
        "delta.minReaderVersion": "1",
        "delta.minWriterVersion": "4",
    },
    constraints={
        "request_count_positive": "RequestCount >= 1",
        "start_not_after_end": "StartTime <= EndTime",
        "alert_ids_not_empty": "size(AlertIds) >= 1",
        "file_name_is_last_segment": "FileName = substring_index(ShellLocation, '/', -1)",
    },
)
