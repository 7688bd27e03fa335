"""Landing: raw export records -> typed bronze rows, or quarantine rows with a reason.

Every record is parsed once into a `map<string,string>` of its fields (`_fields`); typed columns, the `_extra` map
and the reason all come from that map, so JSON lines and CSV share one code path. All Spark built-ins.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (BooleanType, DoubleType, IntegerType, LongType, StringType, StructType,
                               TimestampType)

REASON_NOT_OBJECT = "not a JSON object"
REASON_TIME_MISSING = "TimeGenerated missing"
REASON_TIME_UNPARSEABLE = "TimeGenerated unparseable"
REASON_CSV_MALFORMED = "CSV record does not parse (unbalanced quotes or a field count other than the header's)"

# Timestamp layouts seen in exports: ISO-8601 (data export, pandas, API) and the portal's CSV layout.
_TS_FORMATS = ("M/d/yyyy, h:mm:ss.SSS a", "M/d/yyyy, h:mm:ss a", "M/d/yyyy h:mm:ss a", "M/d/yyyy H:mm")


def parse_timestamp(col: Column) -> Column:
    """Raw text -> UTC timestamp, or null. ISO-8601 with or without zone (no zone means UTC), 7-digit fractions
    as Log Analytics writes them, and the portal's `12/4/2026, 3:49:31.123 PM` layout."""
    text = F.trim(col)
    # Log Analytics writes 100 ns precision; Spark keeps microseconds: drop the 7th+ fraction digits.
    iso = F.regexp_replace(text, r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}\.\d{6})\d+", "$1")
    candidates = [F.try_to_timestamp(iso)] + [F.try_to_timestamp(text, F.lit(fmt)) for fmt in _TS_FORMATS]
    return F.coalesce(*candidates)


def _typed(raw: Column, dtype) -> Column:
    if isinstance(dtype, StringType):
        return raw
    if isinstance(dtype, TimestampType):
        return parse_timestamp(raw)
    if isinstance(dtype, BooleanType):
        return F.lower(F.trim(raw)).try_cast("boolean")
    if isinstance(dtype, (IntegerType, LongType, DoubleType)):
        return F.trim(raw).try_cast(dtype)
    return raw.try_cast(dtype)


def explode_lines(df: DataFrame, text_col: str = "value", skip_col: str | None = None) -> DataFrame:
    """Whole-file text rows (`_source_file`, text) -> one row per non-blank line with its 1-based `_line`.

    Adds `_file_lines` (lines in the file). With `skip_col`, the first N lines of each file are skipped (a file that
    grew since it was last landed lands from where it stopped)."""
    lines = F.split(F.col(text_col), "\n")
    n_lines = F.size(lines) - F.when(F.col(text_col).endswith("\n") | (F.col(text_col) == ""), 1).otherwise(0)
    out = (df.withColumn("_file_lines", n_lines.cast("long"))
           .select("*", F.posexplode(lines).alias("_pos", "_text"))
           .withColumn("_line", (F.col("_pos") + 1).cast("long"))
           .withColumn("_text", F.regexp_replace("_text", "\r$", ""))
           .where(F.trim(F.col("_text")) != ""))
    if skip_col:
        out = out.where(F.col("_line") > F.coalesce(F.col(skip_col), F.lit(0)))
    return out.drop("_pos", text_col)


def json_fields(df: DataFrame, text_col: str = "_text") -> DataFrame:
    """Parse each JSON line once into `_fields: map<string,string>` (nested values kept as JSON text).
    A line that is not a JSON object gets a null map and the reason."""
    fields = F.from_json(F.col(text_col), "map<string,string>")
    return (df.withColumn("_fields", fields)
              .withColumn("_pre_reason", F.when(F.col("_fields").isNull(), F.lit(REASON_NOT_OBJECT)))
              .withColumnRenamed(text_col, "_raw"))


def csv_fields(df: DataFrame, header: list[tuple[str, str]], corrupt_col: str, empty_token: str) -> DataFrame:
    """CSV rows read with an all-string schema (one column per header field, then Spark's corrupt-record column;
    `empty_token` as the null marker so empty fields stay empty strings) -> `_fields`. Spark flags a record whose
    number of fields differs from the header, or that does not parse, in the corrupt-record column."""
    pairs = []
    for name, col in header:
        pairs += [F.lit(name), F.when(F.col(col) == empty_token, F.lit("")).otherwise(F.col(col))]
    pre = F.when(F.col(corrupt_col).isNotNull(), F.lit(REASON_CSV_MALFORMED))
    return df.select(F.col("_source_file"), F.lit(None).cast("long").alias("_line"),
                     F.create_map(*pairs).alias("_fields"), pre.alias("_pre_reason"), F.col(corrupt_col).alias("_raw"))


def typed_record(schema: StructType):
    """`_fields` map -> the schema's typed columns, `_extra` (unknown columns and values that did not fit their
    type), `reason` (null when the row lands) and `raw` (kept only for quarantined rows)."""
    known = [f.name for f in schema.fields]

    def apply(df: DataFrame) -> DataFrame:
        m = F.col("_fields")
        typed = [_typed(m[f.name], f.dataType).alias(f.name) for f in schema.fields]
        out = df.select("*", *typed)
        # a raw value that is present but did not convert to its column type is kept in _extra under its name
        checked = [f.name for f in schema.fields if not isinstance(f.dataType, StringType)]
        bad = F.filter(
            F.array(*[F.struct(F.lit(n).alias("k"), m[n].alias("v"), F.col(n).isNull().alias("lost"))
                      for n in checked]),
            lambda e: e["lost"] & e["v"].isNotNull() & (F.trim(e["v"]) != ""))
        bad_map = F.map_from_arrays(F.transform(bad, lambda e: e["k"]), F.transform(bad, lambda e: e["v"]))
        unknown = F.map_filter(m, lambda k, v: ~F.array_contains(F.array(*[F.lit(n) for n in known]), k))
        extra = F.map_concat(unknown, bad_map)
        tg_raw = m["TimeGenerated"]
        reason = (F.when(F.col("_pre_reason").isNotNull(), F.col("_pre_reason"))
                  .when(tg_raw.isNull() | (F.trim(tg_raw) == ""), F.lit(REASON_TIME_MISSING))
                  .when(F.col("TimeGenerated").isNull(), F.lit(REASON_TIME_UNPARSEABLE)))
        return (out.withColumn("_extra", F.when(F.size(extra) > 0, extra))
                   .withColumn("reason", reason)
                   .withColumn("raw", F.when(F.col("reason").isNotNull(), F.col("_raw")))
                   .drop("_fields", "_pre_reason", "_raw"))

    return apply


def bronze_rows(schema: StructType, run_id: str):
    """Rows that land: the schema's columns plus lineage (`_extra`, `_source_file`, `_line`, `_ingested_at`,
    `_run_id`)."""
    def apply(df: DataFrame) -> DataFrame:
        return df.where(F.col("reason").isNull()).select(
            *[F.col(f.name) for f in schema.fields], "_extra", "_source_file", "_line",
            F.current_timestamp().alias("_ingested_at"), F.lit(run_id).alias("_run_id"))
    return apply


def quarantine_rows(source: str, run_id: str):
    def apply(df: DataFrame) -> DataFrame:
        return df.where(F.col("reason").isNotNull()).select(
            F.lit(source).alias("source"), "_source_file", "_line", "raw", "reason",
            F.lit(run_id).alias("_run_id"), F.current_timestamp().alias("_ingested_at"))
    return apply
