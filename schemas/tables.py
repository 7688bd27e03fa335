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
        properties={"shelltrace.layer": "bronze"},
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
