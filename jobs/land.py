"""`shelltrace land`: Sentinel exports -> bronze Delta tables, exactly once per file, bad records to quarantine.

Formats: Log Analytics data export (JSON lines), portal CSV, and native IIS W3C extended logs (`u_ex*.log`, for
w3c_iis_log; recognised by their `#Software:`/`#Fields:` directives, host and site from the path or --host/--site).

Exactly once: a ledger (`<lake>/_state/landed_files`) records each file's landing in two steps, `started` before the
bronze/quarantine appends and `committed` after them. A run that dies in between leaves `started` entries; the next
run deletes that run's rows (by `_run_id`) and lands the files again, so every row lands once.
"""
from __future__ import annotations

import argparse
import csv
import io as _stdio
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, Observation, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from jobs.common import UserError, add_common_arguments, module_main, new_run_id
from jobs.io import Lake, absolute, list_files, listing, session_settings
from pipelines import land as P
from pipelines import w3c as W
from schemas import tables as T
from schemas.sentinel import SOURCES

log = logging.getLogger("shelltrace")

FORMATS = ("auto", "jsonl", "csv", "w3c")
_EXTENSIONS = {
    "jsonl": (".json", ".jsonl", ".json.gz", ".jsonl.gz"),
    "csv": (".csv", ".csv.gz"),
    "w3c": (".log", ".log.gz"),     # with --format auto, only files whose content starts with W3C directives
}
_HEAD_BYTES = 4096
_CSV_CORRUPT, _CSV_EMPTY = "_corrupt_record", "\u0000<empty>\u0000"


@dataclass
class LandResult:
    source: str
    run_id: str
    files_found: int = 0
    files_landed: int = 0
    files_skipped: int = 0
    files_ignored: list = field(default_factory=list)
    files_changed: list = field(default_factory=list)
    rows_read: int = 0
    rows_landed: int = 0
    rows_quarantined: int = 0
    recovered_runs: list = field(default_factory=list)

    def summary(self) -> str:
        return (f"land {self.source}: files {self.files_landed} landed, {self.files_skipped} already landed, "
                f"{len(self.files_ignored)} ignored; rows read {self.rows_read} = landed {self.rows_landed} + "
                f"quarantined {self.rows_quarantined} (run {self.run_id})")


def file_format(path: str, wanted: str) -> str | None:
    lower = path.lower()
    for fmt, exts in _EXTENSIONS.items():
        if (wanted in ("auto", fmt)) and lower.endswith(exts):
            return fmt
    return None


def looks_like_w3c(head: str) -> bool:
    """Whether a file's first characters are a W3C extended log: its first non-blank line is a directive."""
    for line in head.lstrip("\ufeff").splitlines():
        if line.strip():
            return line.startswith(W.W3C_DIRECTIVES)
    return False


_LOCAL_PREFIX = r"^file:/+"


def _canonical(path: str) -> str:
    """One spelling per local file: the listing and the reader may spell it differently (file:/x vs file:///x)."""
    return re.sub(_LOCAL_PREFIX, "file:///", path)


def _canonical_col(c: Column) -> Column:
    """`_canonical` as a Spark expression."""
    return F.regexp_replace(c, _LOCAL_PREFIX, "file:///")


def file_heads(spark: SparkSession, paths: list[str], nbytes: int = _HEAD_BYTES, use_jvm: bool = True) -> dict:
    """The first `nbytes` bytes (decompressed for .gz) of each file as text, without reading the rest: through
    Hadoop's FileSystem (any storage Spark reads). Without a JVM gateway (Spark Connect) the files are read whole
    by Spark and cut, which costs a full read of each new candidate file."""
    if not paths:
        return {}
    jvm, conf = _jvm_fs(spark) if use_jvm else (None, None)
    heads = {}
    if jvm is not None:
        codecs = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf)
        for path in paths:
            hpath = jvm.org.apache.hadoop.fs.Path(path)
            stream = hpath.getFileSystem(conf).open(hpath)
            try:
                codec = codecs.getCodec(hpath)
                data = (codec.createInputStream(stream) if codec is not None else stream).readNBytes(nbytes)
            except Exception as exc:  # noqa: BLE001 - a corrupt .gz is not a W3C log; say why
                log.warning("could not read the start of %s: %s", path, str(exc).splitlines()[0][:200])
                data = b""
            finally:
                stream.close()
            heads[path] = bytes(data).decode("utf-8", errors="replace")
        return heads
    rows = (spark.read.format("text").option("wholetext", "true").load(paths)
            .select(F.col("_metadata.file_path").alias("p"), F.substring("value", 1, nbytes).alias("head")).collect())
    by_key = {_canonical(r.p): r.head for r in rows}
    return {p: by_key.get(_canonical(p), "") for p in paths}


def _jvm_fs(spark: SparkSession):
    """(jvm, hadoop configuration) of a classic session; (None, None) on Spark Connect."""
    try:
        return spark.sparkContext._jvm, spark.sparkContext._jsc.hadoopConfiguration()
    except Exception:  # noqa: BLE001 - Spark Connect has no sparkContext
        return None, None


def open_tails(spark: SparkSession, paths: list[str]) -> set[str]:
    """The plain (not .gz) files whose last byte is not a line end: IIS is writing their last line. Read through
    Hadoop's FileSystem, one byte per file; without a JVM gateway (Spark Connect) no file is taken as open."""
    jvm, conf = _jvm_fs(spark)
    if jvm is None:
        return set()
    out = set()
    for path in paths:
        if path.lower().endswith(".gz"):
            continue
        hpath = jvm.org.apache.hadoop.fs.Path(path)
        fs = hpath.getFileSystem(conf)
        size = fs.getFileStatus(hpath).getLen()
        if size == 0:
            continue
        stream = fs.open(hpath)
        try:
            stream.seek(size - 1)
            if stream.read() != 0x0A:
                out.add(path)
        finally:
            stream.close()
    return out


def _ledger(lake: Lake) -> None:
    lake.ensure(T.LANDED_FILES)


def recover_crashed_runs(lake: Lake, source: str) -> list[str]:
    """Roll back runs that recorded `started` but never `committed`: delete their bronze and quarantine rows."""
    # one aggregation over the ledger: a run that only ever recorded `started`
    crashed = [r.run_id for r in lake.read(T.LANDED_FILES.name).where(F.col("source") == source)
               .groupBy("run_id").agg(F.bool_and(F.col("status") == "started").alias("unfinished"))
               .where("unfinished").select("run_id").collect()]
    for run_id in crashed:
        for name in (f"bronze/{source}", f"quarantine/{source}"):
            if lake.exists(name):
                lake.delta(name).delete(F.col("_run_id") == F.lit(run_id))
        rows = (lake.read(T.LANDED_FILES.name)
                .where((F.col("run_id") == run_id) & (F.col("status") == "started"))
                .withColumn("status", F.lit("rolled_back")).withColumn("recorded_at", F.current_timestamp()))
        lake.append(rows, T.LANDED_FILES.name)
        log.warning("land %s: rolled back the unfinished run %s (its files land again now)", source, run_id)
    return crashed


def plan_files(spark: SparkSession, lake: Lake, source: str, input_path: str, wanted: str):
    """Which files to land, and from which line: (to_land rows, ignored paths, changed paths, files found)."""
    try:
        listing = list_files(spark, input_path).collect()
    except Exception as exc:  # noqa: BLE001 - PATH_NOT_FOUND and friends become one clear line
        if "PATH_NOT_FOUND" in str(exc) or "does not exist" in str(exc):
            raise UserError(f"input path does not exist: {input_path}") from None
        raise
    known, ignored = [], []
    for row in listing:
        fmt = file_format(row.path, wanted)
        if fmt == "w3c" and source != "w3c_iis_log":    # native IIS logs hold W3CIISLog rows only
            fmt = None
        if fmt:
            known.append((row.path, row.size, row.modification_time, fmt))
        else:
            ignored.append(row.path)
    if not known:
        return [], ignored, [], 0
    files = spark.createDataFrame(known, "path string, size long, modification_time timestamp, format string")
    done = (lake.read(T.LANDED_FILES.name)
            .where((F.col("source") == source) & (F.col("status") == "committed"))
            .groupBy("path").agg(F.max("lines").alias("done_lines"), F.max("size").alias("done_size")))
    joined = files.join(done, "path", "left").collect()
    # --format auto: a .log file is a native IIS log only when its content says so (read its start once, while it
    # is not in the ledger; a file landed before keeps its format)
    sniff = [r.path for r in joined if wanted == "auto" and r.format == "w3c" and r.done_size is None]
    if sniff:
        heads = file_heads(spark, sniff)
        not_w3c = {p for p in sniff if not looks_like_w3c(heads.get(p, ""))}
        if not_w3c:
            ignored += sorted(not_w3c)
            joined = [r for r in joined if r.path not in not_w3c]
            if not joined:
                return [], ignored, [], 0
    to_land, changed = [], []
    for r in joined:
        if r.done_size is None:
            to_land.append((r.path, r.size, r.modification_time, r.format, 0))
        elif r.size == r.done_size:
            continue
        elif r.format != "csv" and r.size > r.done_size:
            to_land.append((r.path, r.size, r.modification_time, r.format, int(r.done_lines or 0)))
        else:
            changed.append(r.path)
    return sorted(to_land), ignored, changed, len(joined)


def _whole_text(spark: SparkSession, plan: list) -> DataFrame:
    """Whole files as text (one row each, gzip by extension): `value`, `_source_file` (as listed), `_skip`."""
    paths = [p[0] for p in plan]
    skips = spark.createDataFrame([(p[0], p[4], _canonical(p[0])) for p in plan],
                                  "path string, _skip long, _key string")
    with listing(spark, paths):
        raw = spark.read.format("text").option("wholetext", "true").load(paths)
    raw = raw.select(F.col("value"), F.col("_metadata.file_path").alias("_read_path"))
    raw = (raw.join(F.broadcast(skips), _canonical_col(F.col("_read_path")) == F.col("_key"))
           .select("value", F.col("path").alias("_source_file"), "_skip"))
    return raw


def _w3c_lines(spark: SparkSession, plan: list) -> DataFrame:
    """Native logs read line by line, never a whole file at once (a busy server's u_ex file is gigabytes; whole-file
    text is one value per file and runs out of memory long before that), numbered per file: the text source keeps a
    split's lines in order, so (split start, position in the read) orders a file's lines. Gives `_source_file` (as
    listed), `_line`, `_text` (without CR), `_file_lines` (= `_line`: the lines consumed up to this one) and `_skip`.

    IIS appends whole lines: the last line of a file that does not end with a line end is still being written. It
    is not read now, so the next run reads it whole."""
    paths = [p[0] for p in plan]
    tails = open_tails(spark, paths)
    info = spark.createDataFrame([(p[0], p[4], p[0] in tails, _canonical(p[0])) for p in plan],
                                 "path string, _skip long, _open_tail boolean, _key string")
    with listing(spark, paths):
        raw = spark.read.format("text").option("lineSep", "\n").load(paths)
    raw = raw.select(F.col("value").alias("_text"), F.col("_metadata.file_path").alias("_read_path"),
                     F.col("_metadata.file_block_start").alias("_block"), F.monotonically_increasing_id().alias("_id"))
    raw = raw.join(F.broadcast(info), _canonical_col(F.col("_read_path")) == F.col("_key"))
    in_file = Window.partitionBy("_source_file").orderBy("_block", "_id")
    return (raw.select(F.col("path").alias("_source_file"), "_text", "_skip", "_open_tail", "_block", "_id")
            .withColumn("_line", F.row_number().over(in_file).cast("long"))
            .withColumn("_last", F.lead("_id").over(in_file).isNull())
            .where(~(F.col("_open_tail") & F.col("_last")))
            .withColumn("_text", F.when(F.col("_text").endswith("\r"), F.expr("substring(_text, 1, length(_text) - 1)"))
                        .otherwise(F.col("_text")))
            .where(F.trim(F.col("_text")) != "")
            .select("_source_file", "_line", "_text", F.col("_line").alias("_file_lines"), "_skip"))


_RECORD = ("_source_file", "_line", "_file_lines", "_fast", "_rec", "_extra_in", "_pre_reason", "_raw")


def read_text_records(spark: SparkSession, plan: list, schema, host: str | None = None, site: str | None = None,
                      w3c_path_pattern: str | None = W.DEFAULT_PATH_PATTERN) -> DataFrame:
    """Text files as numbered lines parsed to records (`_RECORD`): JSON lines (whole files, exploded), and native W3C
    logs (read line by line; their line skip is applied after each block's #Fields layout is known, so a grown file's
    new lines keep their layout)."""
    parts = []
    jsonl = [p for p in plan if p[3] == "jsonl"]
    w3c = [p for p in plan if p[3] == "w3c"]
    if jsonl:
        parts.append(_whole_text(spark, jsonl).transform(lambda d: P.explode_lines(d, "value", "_skip"))
                     .transform(P.json_record(schema)).select(*_RECORD))
    if w3c:
        parts.append(_w3c_lines(spark, w3c)
                     .transform(W.w3c_record(schema, path_pattern=w3c_path_pattern, host=host, site=site,
                                             skip_col="_skip"))
                     .transform(P.without_fast(schema)).select(*_RECORD))
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def _csv_header(spark: SparkSession, path: str) -> tuple[list[str], str]:
    """The header's field names and the file's line separator (pandas on Windows writes CRLF, also inside quoted
    values: reading such a file with `\n` would leave `\r` in every multi-line value and in the last column)."""
    first = spark.read.format("text").option("lineSep", "\n").load(path).limit(1).collect()
    if not first:
        return [], "\n"
    line = first[0].value
    sep = "\r\n" if line.endswith("\r") else "\n"
    return next(csv.reader(_stdio.StringIO(line.rstrip("\r")))), sep


def read_csv_records(spark: SparkSession, plan: list) -> DataFrame | None:
    frames = []
    for path, *_ in plan:
        header, line_sep = _csv_header(spark, path)
        if not header:
            continue
        cols = [f"_c{i}" for i in range(len(header))]
        schema = StructType([StructField(c, StringType()) for c in cols + [_CSV_CORRUPT]])
        df = (spark.read.format("csv").schema(schema)
              .options(header="true", multiLine="true", escape='"', quote='"', mode="PERMISSIVE", lineSep=line_sep,
                       columnNameOfCorruptRecord=_CSV_CORRUPT, nullValue=_CSV_EMPTY, emptyValue="",
                       ignoreLeadingWhiteSpace="false", ignoreTrailingWhiteSpace="false",
                       enforceSchema="true")
              .load(path)
              .withColumn("_source_file", F.lit(path)))
        # the pandas index column has an empty header; keep it under its position so nothing is lost
        named = [(name if name else f"_c{i}", col) for i, (name, col) in enumerate(zip(header, cols))]
        frames.append(P.csv_fields(df, named, _CSV_CORRUPT, _CSV_EMPTY)
                      .withColumn("_file_lines", F.lit(None).cast("long")))
    if not frames:
        return None
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out


def _records(spark: SparkSession, plan: list, schema, host, site, w3c_path_pattern) -> DataFrame | None:
    """The planned files as `_RECORD` rows, whatever their format (None when no file has a record, e.g. only
    header-less CSV files)."""
    parts = []
    text_plan = [p for p in plan if p[3] != "csv"]
    csv_plan = [p for p in plan if p[3] == "csv"]
    if text_plan:
        parts.append(read_text_records(spark, text_plan, schema, host, site, w3c_path_pattern))
    if csv_plan:
        frame = read_csv_records(spark, csv_plan)
        if frame is not None:
            parts.append(frame.transform(P.map_record(schema)).transform(P.without_fast(schema)).select(*_RECORD))
    if not parts:
        return None
    records = parts[0]
    for p in parts[1:]:
        records = records.unionByName(p)
    return records


def _files_with_bad_rows(spark: SparkSession, lake: Lake, source: str, run_id: str, plan: list) -> list:
    """The planned files that may hold rows bronze did not take. A JSON-lines file read from its start is clean when
    its non-blank lines (counted by Spark's plain line reader: no parsing) equal its rows in bronze; every other
    file (CSV, native W3C, a grown file landed from a line on) is taken as a suspect and parsed again."""
    counted = [p for p in plan if p[3] == "jsonl" and not p[4]]
    suspects = [p for p in plan if not (p[3] == "jsonl" and not p[4])]
    if not counted:
        return suspects
    with listing(spark, [p[0] for p in counted]):
        lines = spark.read.format("text").option("lineSep", "\n").load([p[0] for p in counted])
    lines = (lines.where(F.trim(F.regexp_replace("value", "\r$", "")) != "")
             .groupBy(_canonical_col(F.col("_metadata.file_path")).alias("key")).agg(F.count(F.lit(1)).alias("lines")))
    landed = (lake.read(f"bronze/{source}").where(F.col("_run_id") == run_id)
              .groupBy(_canonical_col(F.col("_source_file")).alias("key")).agg(F.count(F.lit(1)).alias("landed")))
    unequal = {r.key for r in lines.join(landed, "key", "left")
               .where(F.coalesce(F.col("landed"), F.lit(0)) != F.col("lines")).select("key").collect()}
    return suspects + [p for p in counted if _canonical(p[0]) in unequal]


def write_tasks(spark: SparkSession, plan: list, cfg_mb: float = 1024) -> int:
    """How many tasks write bronze: one per `cfg_mb` MB of input (gzip counted as 8x its size), and never fewer than
    two per core (one per core leaves a core idle while the larger half finishes: 31 s against 27 s for the bronze
    write of 1M rows on 2 cores), so a run writes a few large files without losing parallelism."""
    weighted = sum(p[1] * (8 if p[0].lower().endswith(".gz") else 1) for p in plan)
    try:
        cores = spark.sparkContext.defaultParallelism
    except Exception:  # noqa: BLE001 - Spark Connect has no sparkContext
        cores = int(spark.conf.get("spark.sql.shuffle.partitions", "8"))
    return max(2 * int(cores), -(-int(weighted) // int(cfg_mb * 1024 * 1024)), 1)


def observed(obs: Observation, wait_s: float = 30.0) -> dict | None:
    """An observation's metrics once its action has run, or None when they do not arrive within `wait_s` (they come
    through the listener bus, a moment after the action returns)."""
    jo = getattr(obs, "_jo", None)
    if jo is None:                      # Spark Connect: the metrics come back with the command's result
        try:
            return obs.get
        except Exception:  # noqa: BLE001 - no metrics: the caller falls back to counting
            return None
    deadline = time.monotonic() + wait_s
    while not jo.future().isCompleted():
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)
    return obs.get


def bronze_plan(spark: SparkSession, plan: list, source: str, run_id: str, host=None, site=None,
                w3c_path_pattern: str | None = W.DEFAULT_PATH_PATTERN) -> tuple[DataFrame, Observation] | None:
    """The planned files' bronze rows, and the observation naming the files with rows that did not land (its
    metrics arrive once the rows are written). None when no file has a record.

    Plan it as `land` does (constraint inference off). The observation sits between the typed rows and the bronze
    filter, and it is also what keeps that filter above the parse: with no node between them, the filter's condition
    is rewritten through the parse's alias and each JSON line is parsed once per field it names (1M rows: ~100 s
    instead of ~14 s)."""
    schema = SOURCES[source]
    records = _records(spark, plan, schema, host, site, w3c_path_pattern)
    if records is None:
        return None
    seen = Observation(f"land-{run_id}")
    typed = records.transform(P.typed_record(schema)).observe(
        seen, F.collect_set(F.when(F.col("reason").isNotNull(), F.col("_source_file"))).alias("bad_files"))
    return typed.transform(P.bronze_rows(schema, run_id)), seen


def _write_rows(spark: SparkSession, lake: Lake, source: str, run_id: str, plan: list, host, site,
                w3c_path_pattern, input_mb_per_task: float) -> bool:
    """Append the planned files' rows: those that land to bronze, the others to quarantine. Whether any row went to
    quarantine.

    One pass over the files for bronze. An observation on that same pass counts the rows that did not land and
    names their files; only those files are read again, for the quarantine (nothing cached, no second parse of
    clean files). Files are sized here (coalesce, no shuffle) rather than by Delta's optimized write.
    """
    schema = SOURCES[source]
    planned = bronze_plan(spark, plan, source, run_id, host, site, w3c_path_pattern)
    if planned is None:
        return False
    rows, seen = planned
    tasks = write_tasks(spark, plan, cfg_mb=input_mb_per_task)
    lake.append(rows.coalesce(tasks), f"bronze/{source}", optimize_write=False)
    log.info("land %s: bronze append committed (%d write task(s) at most)", source, tasks)
    if os.environ.get("SHELLTRACE_CRASH_AFTER") == "bronze":  # used by the killed-run test: a real hard exit
        os._exit(137)
    metrics = observed(seen)
    if metrics is not None:
        bad = set(metrics["bad_files"] or [])
        suspects = [p for p in plan if p[0] in bad]
    else:
        log.info("land %s: the write's observation did not arrive; counting lines to find files with bad rows",
                 source)
        suspects = _files_with_bad_rows(spark, lake, source, run_id, plan)
    if suspects:
        log.info("land %s: %d file(s) hold rows that did not land: reading them again for the quarantine",
                 source, len(suspects))
        again = _records(spark, suspects, schema, host, site, w3c_path_pattern)
        lake.append(again.transform(P.typed_record(schema)).transform(P.quarantine_rows(source, run_id)),
                    f"quarantine/{source}")
    return bool(suspects)


def land(spark: SparkSession, lake: Lake, source: str, input_path: str, fmt: str = "auto", *,
         host: str | None = None, site: str | None = None,
         w3c_path_pattern: str | None = W.DEFAULT_PATH_PATTERN, input_mb_per_task: float = 1024,
         concurrent_writers: int = 64) -> LandResult:
    """Land the export files under `input_path`. Native IIS logs (w3c): `w3c_path_pattern` (a Python-style regex with
    named groups host and site, matched on the file path) gives `Computer` and the default `sSiteName`; `host` and
    `site` are used when the path does not match.

    `concurrent_writers`: event dates (bronze partitions) a write task keeps a file open for at once. Without them
    Spark sorts every task's rows by date before writing, which spills to disk once a run holds a few days: 5M rows
    (10 days) landed at 38,156 rows/s with 2.1 GB spilled, and at 45,218 rows/s with 64 writers and no spill. A task
    that meets more dates than this sorts the rest. 0 turns them off (Spark's default)."""
    if source not in SOURCES:
        raise UserError(f"unknown source {source!r}: use one of {', '.join(SOURCES)}")
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "w3c" and source != "w3c_iis_log":
        raise UserError("--format w3c (native IIS logs) is for --source w3c_iis_log")
    try:
        W.path_groups(w3c_path_pattern)
    except ValueError as exc:
        raise UserError(f"land.w3c_path_pattern: {exc}") from None
    schema = SOURCES[source]
    run_id = new_run_id("land")
    result = LandResult(source, run_id)
    _ledger(lake)
    lake.ensure(T.bronze(source))
    lake.ensure(T.quarantine(source))
    result.recovered_runs = recover_crashed_runs(lake, source)

    plan, ignored, changed, found = plan_files(spark, lake, source, input_path, fmt)
    result.files_found, result.files_ignored, result.files_changed = found, ignored, changed
    result.files_skipped = found - len(plan) - len(changed)
    if ignored:
        log.warning("land %s: ignored %d file(s) that are not %s exports, e.g. %s", source, len(ignored),
                    fmt if fmt != "auto" else "JSON-lines, CSV or W3C log", ignored[0])
    if changed:
        log.warning("land %s: %d file(s) changed since they were landed and are not landed again, e.g. %s",
                    source, len(changed), changed[0])
    if found == 0:
        log.info("land %s: no export files under %s (looked for %s)", source, input_path,
                 ", ".join(sorted({e for f, exts in _EXTENSIONS.items() if fmt in ("auto", f) for e in exts})))
        return result
    if not plan:
        log.info("land %s: nothing new under %s (%d file(s) already landed)", source, input_path, found)
        return result

    log.info("land %s: landing %d file(s) (%.1f MB) as run %s", source, len(plan),
             sum(p[1] for p in plan) / 1e6, run_id)
    ledger_rows = spark.createDataFrame(
        [(source, p[0], p[1], p[2], p[3], p[4], "started", None, None, None, run_id) for p in plan],
        "source string, path string, size long, modification_time timestamp, format string, lines long, "
        "status string, rows_read long, rows_landed long, rows_quarantined long, run_id string",
    ).withColumn("recorded_at", F.current_timestamp())
    lake.append(ledger_rows, T.LANDED_FILES.name)

    # planned without constraint inference: on a record's ~40 aliased fields it costs minutes and gigabytes of
    # driver memory, and nothing here gains from the filters it would infer
    with session_settings(spark, {"spark.sql.constraintPropagation.enabled": "false",
                                  "spark.sql.maxConcurrentOutputFileWriters": int(concurrent_writers)}):
        quarantined = _write_rows(spark, lake, source, run_id, plan, host, site, w3c_path_pattern,
                                  input_mb_per_task)

    # per-file counts for the ledger, read back from what was committed (the run's own files: `_run_id` statistics;
    # quarantine only when this run wrote to it)
    per_file = {}
    for i, name in enumerate((f"bronze/{source}", f"quarantine/{source}")):
        if i == 1 and not quarantined:
            continue
        for r in (lake.read(name).where(F.col("_run_id") == run_id).groupBy("_source_file")
                  .agg(F.count(F.lit(1)).alias("n"), F.max("_line").alias("lines")).collect()):
            st = per_file.setdefault(r["_source_file"], [0, 0, None])
            st[i] += r["n"]
            st[2] = max(st[2] or 0, r["lines"] or 0) if r["lines"] is not None else st[2]
    commit = []
    for path, size, mtime, fmt_, skip in plan:
        landed, quarantined, lines = per_file.get(path, (0, 0, None))
        lines = max(int(lines), skip) if lines is not None else skip
        commit.append((source, path, size, mtime, fmt_, lines, "committed", landed + quarantined, landed,
                       quarantined, run_id))
    lake.append(spark.createDataFrame(commit, ledger_rows.drop("recorded_at").schema)
                .withColumn("recorded_at", F.current_timestamp()), T.LANDED_FILES.name)

    result.files_landed = len(plan)
    result.rows_read = sum(c[7] for c in commit)
    result.rows_landed = sum(c[8] for c in commit)
    result.rows_quarantined = sum(c[9] for c in commit)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, choices=sorted(SOURCES),
                        help="which Sentinel table the files are an export of")
    parser.add_argument("--input", required=True, metavar="PATH",
                        help="a file or a folder, read recursively (data-export trees with WorkspaceResourceId=, "
                             "y=/m=/d=/h=/m= folders, PT1H.json and PT05M.json blobs, .json.gz; portal CSV; native IIS "
                             "logs <host>/W3SVC<n>/u_ex*.log[.gz])")
    parser.add_argument("--format", default="auto", choices=FORMATS,
                        help="auto (by extension: .json/.jsonl[.gz] -> jsonl, .csv -> csv; .log[.gz] -> w3c when "
                             "the file starts with W3C directives such as #Software:/#Fields:), jsonl, csv or w3c "
                             "(native IIS logs, u_ex*.log)")
    parser.add_argument("--host", metavar="NAME",
                        help="native IIS logs: the server's name (Computer) when the file path does not give it "
                             "(config land.w3c_path_pattern, default .../<host>/W3SVC<n>/u_ex*.log)")
    parser.add_argument("--site", metavar="NAME",
                        help="native IIS logs: the site (sSiteName) of lines that do not log s-sitename, when the "
                             "file path does not give it")
    add_common_arguments(parser)


def land_options(cfg: dict) -> dict:
    """The `land:` keys of the configuration as keyword arguments of `land`."""
    land_cfg = cfg.get("land") or {}
    writers = int(land_cfg.get("concurrent_writers", 64) or 0)
    if writers < 0:
        raise UserError(f"land.concurrent_writers must be 0 (Spark sorts) or more, not {writers}")
    return {"w3c_path_pattern": land_cfg.get("w3c_path_pattern") or None,
            "input_mb_per_task": float(land_cfg.get("input_mb_per_task") or 1024),
            "concurrent_writers": writers}


def body(args, cfg, spark) -> int:
    lake = Lake.from_config(spark, cfg)
    result = land(spark, lake, args.source, absolute(args.input), args.format, host=args.host, site=args.site,
                  **land_options(cfg))
    print(result.summary())
    return 0


def main(argv=None) -> int:
    return module_main("land", add_arguments, body, argv)


if __name__ == "__main__":
    sys.exit(main())
