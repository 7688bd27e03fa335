"""Native IIS W3C extended logs (`u_ex*.log`): numbered lines -> the landing record shape of `pipelines.land`.

Input: one row per non-blank line (`_source_file`, `_line`, `_text`, `_file_lines`), as `pipelines.land.explode_lines`
makes them. Output, one row per DATA line (directives, `#...`, are never rows): `_source_file`, `_line`,
`_file_lines`, `_pre_reason` (why the line cannot land, else null), `_raw` (the line) and its values, either
- `w3c_fields`: `_fields`, a map<string,string> keyed by W3CIISLog column names (custom fields by their W3C name), or
- `w3c_record(schema)`: `_rec` (a struct of the schema's columns as raw text) and `_extra_in` (custom fields), the
  shape `pipelines.land.json_record` makes; what the land job uses (no map per line, about twice as fast).

Rules (W3C extended log format as IIS writes it):
- each `#Fields:` directive sets the layout of the data lines after it in the same file, until the next one (the
  layout may change inside a file: IIS writes a new header block after a restart or a logging change);
- values are separated by single spaces; `-` is an empty value (null); `+` (a space in the user agent) is kept;
- `date` + `time` are UTC and become `TimeGenerated` ("date time" text, parsed by `typed_record`);
- known W3C fields become their W3CIISLog columns; other (custom) fields keep their W3C name and so land in `_extra`;
- host and site, which IIS does not log by default, come from the file's path (a regex with named groups `host` and
  `site`) or else from given values: the host fills `Computer` (as the Log Analytics agent does), the site fills
  `sSiteName` when the line has no (or an empty) `s-sitename`.

Spark built-ins only. The layout is carried forward with a window over each file ordered by line number.
"""
from __future__ import annotations

import re

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

# W3C field name -> W3CIISLog column
W3C_COLUMNS = {
    "s-sitename": "sSiteName", "s-computername": "sComputerName", "s-ip": "sIP", "cs-method": "csMethod",
    "cs-uri-stem": "csUriStem", "cs-uri-query": "csUriQuery", "s-port": "sPort", "cs-username": "csUserName",
    "c-ip": "cIP", "cs-version": "csVersion", "cs(User-Agent)": "csUserAgent", "cs(Cookie)": "csCookie",
    "cs(Referer)": "csReferer", "cs-host": "csHost", "sc-status": "scStatus", "sc-substatus": "scSubStatus",
    "sc-win32-status": "scWin32Status", "sc-bytes": "scBytes", "cs-bytes": "csBytes", "time-taken": "TimeTaken",
}
# Keys this module sets itself; a #Fields list that names one of them (or repeats a name) cannot be mapped safely.
_SET_HERE = ("TimeGenerated", "Type", "Computer")

# Directives that start a W3C extended log (IIS writes #Software first; other writers start with #Version).
W3C_DIRECTIVES = ("#Software:", "#Version:", "#Date:", "#Fields:", "#Remark:", "#Start-Date:", "#End-Date:")

DEFAULT_PATH_PATTERN = r"(?:^|/)(?P<host>[^/]+)/(?P<site>W3SVC\d+)/u_ex[^/]*\.log(?:\.gz)?$"

REASON_W3C_NO_FIELDS = "W3C data line before any #Fields directive"
REASON_W3C_COUNT_PREFIX = "W3C line has"          # "W3C line has 15 values, #Fields has 22"
REASON_W3C_BAD_FIELDS = "W3C #Fields repeats a field name or names a column set by the loader"

_BOM = "\ufeff"


def count_reason(values: int, fields: int) -> str:
    """The quarantine reason of a data line whose value count differs from its block's #Fields count."""
    return f"{REASON_W3C_COUNT_PREFIX} {values} values, #Fields has {fields}"


def java_regex(pattern: str) -> str:
    """A Python-style regex -> the same regex for Java (Spark): `(?P<name>` -> `(?<name>`, `(?P=name)` ->
    `\\k<name>`. Group numbers are the same in both."""
    out = re.sub(r"\(\?P<([A-Za-z][A-Za-z0-9]*)>", r"(?<\1>", pattern)
    return re.sub(r"\(\?P=([A-Za-z][A-Za-z0-9]*)\)", r"\\k<\1>", out)


def path_groups(pattern: str | None) -> tuple[str | None, int | None, int | None]:
    """(Java regex, group number of `host`, group number of `site`) of a Python-style path pattern; the numbers are
    None for a group the pattern lacks. Raises ValueError for a pattern that does not compile or has neither group."""
    if not pattern:
        return None, None, None
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regex: {pattern!r}: {exc}") from None
    host, site = compiled.groupindex.get("host"), compiled.groupindex.get("site")
    if host is None and site is None:
        raise ValueError(f"the path pattern {pattern!r} has no named group 'host' or 'site'")
    return java_regex(pattern), host, site


def _from_path(java: str | None, group: int | None, given: str | None) -> Column:
    given_col = F.lit(given).cast("string")
    if java is None or group is None:
        return given_col
    return F.coalesce(F.nullif(F.regexp_extract(F.col("_source_file"), java, group), F.lit("")), given_col)


def _names(text: Column) -> tuple[Column, Column, Column]:
    """A `#Fields:` line -> (its W3C field names, the same mapped to W3CIISLog columns, their count)."""
    names = F.filter(F.split(F.trim(F.substring(text, len("#Fields:") + 1, 1 << 30)), r"\s+"), lambda x: x != "")
    mapping = F.create_map(*[F.lit(x) for kv in W3C_COLUMNS.items() for x in kv])
    return names, F.transform(names, lambda x: F.coalesce(F.element_at(mapping, x), x)), F.size(names)


def _common_layout(names: Column, cols: Column, n: Column, path: tuple) -> list[Column]:
    java, host_group, site_group, host, site = path
    bad = (F.size(F.array_distinct(cols)) != n) | F.arrays_overlap(cols, F.array(*[F.lit(k) for k in _SET_HERE]))
    return [n.alias("n"),
            F.array_position(names, "date").cast("int").alias("date"),
            F.array_position(names, "time").cast("int").alias("time"),
            F.array_position(cols, "sSiteName").cast("int").alias("site_at"),
            bad.alias("bad"),
            _from_path(java, host_group, host).alias("host"),
            _from_path(java, site_group, site).alias("site")]


def _positions(n: Column) -> Column:
    return F.when(n > 0, F.sequence(F.lit(1), n)).otherwise(F.array().cast("array<int>"))


def _map_layout(text: Column, path: tuple) -> Column:
    """The layout a `#Fields:` line sets, for `_fields` maps: positions and keys of the values to keep."""
    names, cols, n = _names(text)
    keep = F.filter(_positions(n), lambda i: ~F.element_at(cols, i).isin("date", "time", "sSiteName"))
    return F.struct(*_common_layout(names, cols, n, path), keep.alias("keep"),
                    F.transform(keep, lambda i: F.element_at(cols, i)).alias("keys"))


def _index_layout(all_columns: list[str], plain_columns: list[str]):
    """The layout a `#Fields:` line sets, for `_rec` structs: the position of each plain schema column (0: not
    logged) and the positions and names of custom fields (neither a schema column nor date/time)."""
    def layout(text: Column, path: tuple) -> Column:
        names, cols, n = _names(text)
        known = F.array(*[F.lit(c) for c in all_columns + ["date", "time"]])
        custom = F.filter(_positions(n), lambda i: ~F.array_contains(known, F.element_at(cols, i)))
        return F.struct(*_common_layout(names, cols, n, path),
                        *[F.array_position(cols, c).cast("int").alias(f"at_{c}") for c in plain_columns],
                        custom.alias("custom"),
                        F.transform(custom, lambda i: F.element_at(cols, i)).alias("custom_keys"))
    return layout


def _data_lines(df: DataFrame, layout, path_pattern, host, site, skip_col) -> DataFrame:
    """Data lines with their block's layout (`_b`, null before any #Fields) and their values (`_v`)."""
    java, host_group, site_group = path_groups(path_pattern)
    path = (java, host_group, site_group, host, site)
    text = F.when(F.col("_line") == 1, F.regexp_replace("_text", f"^{_BOM}", "")).otherwise(F.col("_text"))
    lines = df.withColumn("_text", text)
    is_directive = F.col("_text").startswith("#")
    if skip_col:
        # lines up to the skip point were landed before; the directives among them still set the layout
        lines = lines.where(is_directive | (F.col("_line") > F.coalesce(F.col(skip_col), F.lit(0))))
    per_file = Window.partitionBy("_source_file").orderBy("_line").rowsBetween(Window.unboundedPreceding,
                                                                               Window.currentRow)
    carried = F.last(F.when(F.col("_text").startswith("#Fields:"), layout(F.col("_text"), path)),
                     ignorenulls=True).over(per_file)
    return (lines.withColumn("_b", carried)
            .where(~is_directive)
            .withColumn("_v", F.split(F.col("_text"), " ")))


def _pre_reason() -> Column:
    b, nv = F.col("_b"), F.size(F.col("_v"))
    return (F.when(b.isNull(), F.lit(REASON_W3C_NO_FIELDS))
            .when(b["bad"], F.lit(REASON_W3C_BAD_FIELDS))
            .when(nv != b["n"], F.concat(F.lit(f"{REASON_W3C_COUNT_PREFIX} "), nv.cast("string"),
                                         F.lit(" values, #Fields has "), b["n"].cast("string"))))


def _value_at(i: Column) -> Column:
    return F.nullif(F.try_element_at(F.col("_v"), i), F.lit("-"))


def _at(pos: Column) -> Column:
    return F.when(pos > 0, _value_at(pos))


def _time_generated() -> Column:
    b = F.col("_b")
    return F.concat(_at(b["date"]), F.lit(" "), _at(b["time"]))


def _site() -> Column:
    b = F.col("_b")
    return F.coalesce(_at(b["site_at"]), b["site"])


def w3c_fields(df: DataFrame, *, path_pattern: str | None = DEFAULT_PATH_PATTERN, host: str | None = None,
               site: str | None = None, skip_col: str | None = None) -> DataFrame:
    """Numbered lines of native IIS logs -> landing records with a `_fields` map (see the module docstring).

    `skip_col`: data lines numbered up to this value were landed before (a file that grew) and are not rows again;
    the directives before that point are still read, so the new lines get their block's layout."""
    data = _data_lines(df, _map_layout, path_pattern, host, site, skip_col)
    b, pre = F.col("_b"), _pre_reason()
    keys = F.concat(b["keys"], F.array(*[F.lit(k) for k in ("TimeGenerated", "Type", "Computer", "sSiteName")]))
    values = F.concat(F.transform(b["keep"], _value_at),
                      F.array(_time_generated(), F.lit("W3CIISLog"), b["host"], _site()))
    return data.select(
        "_source_file", "_line", "_file_lines",
        F.when(pre.isNull(), F.map_from_arrays(keys, values)).alias("_fields"),
        pre.alias("_pre_reason"),
        F.col("_text").alias("_raw"),
    )


def w3c_record(schema: StructType, *, path_pattern: str | None = DEFAULT_PATH_PATTERN, host: str | None = None,
               site: str | None = None, skip_col: str | None = None):
    """The same as `w3c_fields`, but to the record shape `pipelines.land.json_record` makes: `_rec` (the schema's
    columns as raw text) and `_extra_in` (custom fields, null when the block has none), built straight from each
    block's column positions (no map per line, no map lookups per column)."""
    columns = [f.name for f in schema.fields]
    plain = [c for c in columns if c not in ("TimeGenerated", "Type", "Computer", "sSiteName")]

    def apply(df: DataFrame) -> DataFrame:
        data = _data_lines(df, _index_layout(columns, plain), path_pattern, host, site, skip_col)
        b, pre = F.col("_b"), _pre_reason()
        special = {"TimeGenerated": _time_generated(), "Type": F.lit("W3CIISLog"), "Computer": b["host"],
                   "sSiteName": _site()}
        rec = F.struct(*[(special[c] if c in special else _at(b[f"at_{c}"])).cast("string").alias(c)
                         for c in columns])
        extra = F.when(F.size(b["custom"]) > 0,
                       F.map_from_arrays(b["custom_keys"], F.transform(b["custom"], _value_at)))
        return data.select(
            "_source_file", "_line", "_file_lines",
            F.when(pre.isNull(), rec).alias("_rec"),
            F.when(pre.isNull(), extra).alias("_extra_in"),
            pre.alias("_pre_reason"),
            F.col("_text").alias("_raw"),
        )
    return apply
