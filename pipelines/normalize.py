"""The contract's normal forms as Column functions (Spark built-ins only)."""
from __future__ import annotations

import re
from typing import Iterable

from pyspark.sql import Column
from pyspark.sql import functions as F

# "trimmed": leading and trailing whitespace (space, tab, newline, carriage return, form feed, vertical tab)
_WS = r"[ \t\n\r\f\x0B]"


def trim_ws(c: Column) -> Column:
    return F.regexp_replace(c, rf"^{_WS}+|{_WS}+$", "")


def empty_to_null(c: Column) -> Column:
    """A string that is null, empty or '-' after trimming is null; any other value is kept as logged."""
    t = trim_ws(c)
    return F.when(t.isNull() | (t == "") | (t == "-"), F.lit(None).cast("string")).otherwise(c)


def norm_host(c: Column) -> Column:
    """trim, lowercase, cut at the first '.', empty becomes null."""
    short = F.substring_index(F.lower(trim_ws(c)), ".", 1)
    return F.when(short != "", short)


def norm_path(c: Column) -> Column:
    """Percent-decode once (UTF-8; '+' stays '+'; a '%' not followed by two hex digits stays as it is),
    then '\\' becomes '/'."""
    escaped = F.regexp_replace(F.regexp_replace(c, r"%(?![0-9A-Fa-f]{2})", "%25"), r"\+", "%2B")
    return F.regexp_replace(F.coalesce(F.try_url_decode(escaped), c), r"\\", "/")


def norm_uri(c: Column) -> Column:
    """norm_path, runs of '/' collapsed, trimmed, lowercased, with a leading '/'."""
    p = F.lower(trim_ws(F.regexp_replace(norm_path(c), "/+", "/")))
    return F.when(p.isNull(), p).when(p.startswith("/"), p).otherwise(F.concat(F.lit("/"), p))


def norm_file(c: Column) -> Column:
    """The last '/'-segment of norm_uri."""
    return last_segment(norm_uri(c))


def last_segment(uri: Column) -> Column:
    return F.substring_index(uri, "/", -1)


def dir_part(uri: Column) -> Column:
    """All before the last '/' of a normalised URI ('' at the site root)."""
    return F.regexp_extract(uri, r"^(.*)/[^/]*$", 1)


def norm_directory(c: Column) -> Column:
    """An entity's Directory as PathMatched compares it: '\\' as '/', lowercased, trailing '/' removed."""
    return F.regexp_replace(F.lower(F.regexp_replace(c, r"\\", "/")), "/+$", "")


def script_regex(extensions: Iterable[str]) -> str:
    exts = sorted({e.lower() if e.startswith(".") else "." + e.lower() for e in extensions if e}, key=len,
                  reverse=True)
    if not exts:
        raise ValueError("no script extensions configured (hunt.script_extensions)")
    return "(" + "|".join(re.escape(e).replace("\\.", "[.]") for e in exts) + ")$"


def is_script(file_name: Column, extensions: Iterable[str]) -> Column:
    """norm_file(name) ends with one of the script extensions (so notes.aspx.txt is not one)."""
    return F.coalesce(file_name.rlike(script_regex(extensions)), F.lit(False))
