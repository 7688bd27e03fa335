"""Landing: raw export records -> typed bronze rows, or quarantine rows with a reason.

A JSON line is parsed once into `_fast` (numbers typed, the rest as raw text); a line that is not clean (an
unknown, repeated or null key, a value that does not fit, not a JSON object) is parsed again into `_rec`, a struct
of the schema's columns as raw text, and its unknown keys into `_extra_in`. CSV records and native W3C lines arrive
as a `_fields` map and are brought to the `_rec` shape. Typed columns, `_extra` and the quarantine reason all come
from `_fast` or `_rec` in one place (`typed_record`), so every format shares one code path. All Spark built-ins.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (BooleanType, DoubleType, IntegerType, LongType, StringType,
                               StructField, StructType, TimestampType)

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
    # ISO first (Spark truncates Log Analytics' 100 ns fractions to microseconds); the portal layouts only when the
    # ISO parse failed (coalesce stops at the first non-null)
    candidates = [F.try_to_timestamp(text)] + [F.try_to_timestamp(text, F.lit(fmt)) for fmt in _TS_FORMATS]
    return F.coalesce(*candidates)


def _q(name: str) -> str:
    """A column or field name quoted for SQL text."""
    return "`" + name.replace("`", "``") + "`"


def _lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _typed_sql(raw: str, dtype) -> str | None:
    """SQL text converting the raw text `raw` (SQL) to `dtype`, or null; None for timestamps (parse_timestamp)."""
    if isinstance(dtype, StringType):
        return raw
    if isinstance(dtype, TimestampType):
        return None
    if isinstance(dtype, BooleanType):
        return f"try_cast(lower(trim({raw})) AS BOOLEAN)"
    if isinstance(dtype, (IntegerType, LongType, DoubleType)):
        return f"try_cast(trim({raw}) AS {dtype.simpleString().upper()})"
    return f"try_cast({raw} AS {dtype.simpleString()})"


def _typed(raw: str, dtype) -> Column:
    sql = _typed_sql(raw, dtype)
    return parse_timestamp(F.expr(raw)) if sql is None else F.expr(sql)


def explode_lines(df: DataFrame, text_col: str = "value", skip_col: str | None = None) -> DataFrame:
    """Whole-file text rows (`_source_file`, text) -> one row per non-blank line with its 1-based `_line`.

    Adds `_file_lines` (lines in the file). With `skip_col`, the first N lines of each file are skipped (a file that
    grew since it was last landed lands from where it stopped)."""
    lines = F.split(F.col(text_col), "\n")
    n_lines = F.size(lines) - F.when(F.col(text_col).endswith("\n") | (F.col(text_col) == ""), 1).otherwise(0)
    out = (df.withColumn("_file_lines", n_lines.cast("long"))
           .select("*", F.posexplode(lines).alias("_pos", "_text"))
           .withColumn("_line", (F.col("_pos") + 1).cast("long"))
           .withColumn("_text", F.when(F.col("_text").endswith("\r"), F.expr("substring(_text, 1, length(_text) - 1)"))
                       .otherwise(F.col("_text")))
           .where(F.trim(F.col("_text")) != ""))
    if skip_col:
        out = out.where(F.col("_line") > F.coalesce(F.col(skip_col), F.lit(0)))
    return out.drop("_pos", text_col)


def _record_struct(schema: StructType) -> StructType:
    return StructType([StructField(f.name, StringType()) for f in schema.fields])


def _map_without(m: str, names: list[str]) -> Column:
    """The map `m` (SQL text) without the keys `names` (repeated keys: the last value), built only from functions
    Spark compiles to code: a higher-order function such as map_filter takes the whole plan node, and so every row,
    out of whole-stage code generation. The known keys are first set to null (map_concat, last value wins), then
    their (key, null) entries removed. Written as SQL text: one call to the JVM instead of hundreds (with the other
    per-column expressions of this module, ~0.5 s less driver time a land)."""
    lits = [_lit(n) for n in names]
    nulls = "map(" + ", ".join(f"{lit}, CAST(NULL AS STRING)" for lit in lits) + ")"
    entries = "array(" + ", ".join(f"named_struct('key', {lit}, 'value', CAST(NULL AS STRING))" for lit in lits) + ")"
    return F.expr(f"map_from_entries(array_except(map_entries(map_concat({m}, {nulls})), {entries}))")


def _balanced_sum(terms: list[str]) -> str:
    """The sum of `terms` (SQL text) as a balanced tree of additions rather than a chain as deep as the list (each
    level of a deep chain becomes a method call in the generated code)."""
    while len(terms) > 1:
        terms = [f"({terms[i]} + {terms[i + 1]})" if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0] if terms else "0"


# Column types the first parse of a JSON line converts itself: JSON numbers straight to int/long/double (Jackson reads
# them as numbers, instead of copying each through a generator as text to be cast afterwards). A value of one of
# these types converts exactly as the raw text's `try_cast` would; timestamps and booleans, which Jackson accepts in
# forms the text path does not (epoch numbers, for one), stay text.
_FAST_TYPES = (IntegerType, LongType, DoubleType)


def _fast_struct(schema: StructType) -> StructType:
    return StructType([StructField(f.name, f.dataType if isinstance(f.dataType, _FAST_TYPES) else StringType())
                       for f in schema.fields])


def without_fast(schema: StructType):
    """Records built from text fields (CSV, native W3C) have no `_fast` parse: a null one, for unions with JSON."""
    def apply(df: DataFrame) -> DataFrame:
        return df.withColumn("_fast", F.lit(None).cast(_fast_struct(schema)))
    return apply


def json_record(schema: StructType, text_col: str = "_text"):
    """Parse each JSON line into `_fast` (the schema's columns, numbers typed, the rest as raw text) and keep it when
    the line is clean: every key is one of the schema's, once, with a non-null value that fits its type. Every
    other line (an unknown, repeated or null key, a value that does not fit, not a JSON object) gets `_rec`
    instead (all columns as raw text; nested values kept as JSON text) and its keys the schema lacks in `_extra_in`
    (parsed to a map only for such lines). A line that is not a JSON object gets the reason.

    A line is clean when it has as many keys as `_fast` has non-null columns (each such column is one of its keys);
    only the other lines pay for the second parse. No higher-order function anywhere: see `_map_without`.

    Plan the result with `spark.sql.constraintPropagation.enabled=false` (`jobs.land` does): the many aliases of
    the records' fields send the optimizer's constraint inference into a blow-up when a filter sits above them. A
    filter on the typed rows is pushed below the parse (each line parsed twice) unless a node stops it: `jobs.land`
    observes the typed rows before it splits them into bronze and quarantine, and the observation does."""
    names = [f.name for f in schema.fields]

    def apply(df: DataFrame) -> DataFrame:
        text = F.col(text_col)
        # the number of keys, not the keys: an array of ~30 names per row would be written out between plan nodes
        # (from_json runs outside whole-stage code generation, so its node's output rows are materialised)
        out = df.select("*", F.from_json(text, _fast_struct(schema)).alias("_mix"),
                        F.size(F.json_object_keys(text)).alias("_nkeys"))
        mix, n_keys = F.col("_mix"), F.col("_nkeys")
        non_null = F.expr(_balanced_sum([f"CASE WHEN _mix.{_q(n)} IS NOT NULL THEN 1 ELSE 0 END" for n in names]))
        # size() of a null array (a line that is not a JSON object) is null under ANSI, -1 under legacy rules
        clean = F.coalesce(n_keys == non_null, F.lit(False))
        unknown = _map_without(f"from_json({_q(text_col)}, 'map<string,string>')", names)
        # one select per step: each DataFrame call analyses the whole plan again, and these expressions are large
        kept = [F.col(c) for c in df.columns if c != text_col]
        out = out.select(*kept, text, mix, n_keys, clean.alias("_clean"))
        is_clean = F.col("_clean")
        return out.select(
            *kept,
            F.when(is_clean, mix).alias("_fast"),
            F.when(~is_clean, F.from_json(text, _record_struct(schema))).alias("_rec"),
            F.when(~is_clean & (F.size(unknown) > 0), unknown).alias("_extra_in"),
            F.when(F.coalesce(n_keys, F.lit(-1)) < 0, F.lit(REASON_NOT_OBJECT)).alias("_pre_reason"),
            text.alias("_raw"))
    return apply


def map_record(schema: StructType):
    """Records parsed to a `_fields` map (CSV, native W3C logs) -> `_rec` and `_extra_in` as json_record makes."""
    known = [f.name for f in schema.fields]

    def apply(df: DataFrame) -> DataFrame:
        m = F.col("_fields")
        extra = _map_without("_fields", known)
        # in a generator: the expressions after it refer to `_rec` instead of repeating the map lookups (and
        # analysis does not have to inline them into every reference)
        rec = F.struct(F.struct(*[m[n].alias(n) for n in known]).alias("_rec"),
                       F.when(F.size(extra) > 0, extra).alias("_extra_in"))
        return df.select("*", F.inline(F.array(rec))).drop("_fields")
    return apply


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
    """`_rec` (raw text per column) or `_fast` (json_record's first parse, for clean lines) and `_extra_in` -> the
    schema's typed columns, `_extra` (columns the schema lacks, and raw values that did not fit their column's type),
    `reason` (null when the row lands) and `raw` (kept only for quarantined rows)."""
    def apply(df: DataFrame) -> DataFrame:
        has_fast = "_fast" in df.columns

        # SQL text per column (one JVM call per expression, not one per node: see _map_without)
        def raw(f) -> str:
            """The column's raw text (null for a number a clean line gave as such: nothing to keep)."""
            if not has_fast or isinstance(f.dataType, _FAST_TYPES):
                return f"_rec.{_q(f.name)}"
            return f"CASE WHEN _fast IS NOT NULL THEN _fast.{_q(f.name)} ELSE _rec.{_q(f.name)} END"

        def value(f) -> Column:
            if has_fast and isinstance(f.dataType, _FAST_TYPES):
                return F.expr(f"CASE WHEN _fast IS NOT NULL THEN _fast.{_q(f.name)} "
                              f"ELSE {_typed_sql(raw(f), f.dataType)} END")
            return _typed(raw(f), f.dataType)

        out = df.select("*", *[value(f).alias(f.name) for f in schema.fields])
        checked = [f for f in schema.fields if not isinstance(f.dataType, StringType)]

        def lost(f) -> str:
            return f"({_q(f.name)} IS NULL AND {raw(f)} IS NOT NULL AND trim({raw(f)}) != '')"

        any_lost = F.expr(" OR ".join([lost(f) for f in checked]) or "false")
        # built only for the rare rows where a value did not convert: present, non-blank raw text, null typed value
        # (no higher-order function: see _map_without)
        empty = "CAST(map() AS MAP<STRING, STRING>)"
        bad = [f"CASE WHEN {lost(f)} THEN map({_lit(f.name)}, {raw(f)}) ELSE {empty} END" for f in checked]
        extra = (F.when(any_lost, F.expr(f"map_concat(coalesce(_extra_in, {empty}), {', '.join(bad)})"))
                 .otherwise(F.col("_extra_in")))
        tg_raw = F.expr(raw(schema["TimeGenerated"]))
        reason = (F.when(F.col("_pre_reason").isNotNull(), F.col("_pre_reason"))
                  .when(tg_raw.isNull() | (F.trim(tg_raw) == ""), F.lit(REASON_TIME_MISSING))
                  .when(F.col("TimeGenerated").isNull(), F.lit(REASON_TIME_UNPARSEABLE)))
        kept = [F.col(c) for c in out.columns if c not in ("_rec", "_fast", "_extra_in", "_pre_reason", "_raw")]
        return (out.select(*kept, "_raw", extra.alias("_extra"), reason.alias("reason"))
                .select(*kept, "_extra", "reason", F.when(F.col("reason").isNotNull(), F.col("_raw")).alias("raw")))

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
