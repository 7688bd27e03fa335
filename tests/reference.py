"""A second, independent implementation of ../shared/CONTRACT.md in plain Python (standard library only).

It exists to check the Spark pipeline: both must give the same rows for the same input. It is written for clarity,
not speed: every rule of the contract is one small function here, named after the contract's term.

Public API:

- `load_export_rows(path)`: every JSON-lines row of a Log Analytics data-export tree (`.json`, `.json.gz`).
- `load_w3c_rows(path)`: native IIS W3C logs (`<host>/<W3SVCn>/u_ex*.log`) as W3CIISLog-like rows.
- `candidates(alert_rows, ...)`: the web-shell candidates (FileName, HostName, Directory, SystemAlertId,
  TimeGenerated); `candidates_with_findings(...)` also returns the data-quality findings.
- `attacker_summary(alert_rows, iis_rows, ...)`: the attacker summary rows (all contract columns but the run ones).
"""
from __future__ import annotations

import gzip
import json
import os
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote

DEFAULT_PROVIDERS = ("MDATP",)
DEFAULT_EXTENSIONS = (".asp", ".aspx", ".asmx", ".asax", ".php", ".jsp", ".js", ".cfm", ".shtml")
DEFAULT_MAX_SET_SIZE = 100

# "trim": the characters Python's str.strip() removes for ASCII text (no Unicode spaces).
TRIM = " \t\n\r\f\v"

# Data-quality reasons (candidates_with_findings)
REASON_NOT_JSON = "Entities is not JSON"
REASON_NOT_ARRAY = "Entities is not a JSON array"
REASON_UNRESOLVED_REF = "unresolvable $ref"

SUMMARY_COLUMNS = (
    "AttackerIP", "HostName", "SiteName", "ShellLocation", "FileName", "RequestCount", "StartTime", "EndTime",
    "RequestUserAgents", "RequestMethods", "RequestStatusCodes", "RequestCookies", "RequestReferers",
    "RequestQueryStrings", "RawUriStems", "AlertIds", "FirstAlertTime", "PathMatched", "timestamp",
    "IPCustomEntity", "HostCustomEntity",
)

IIS_STRING_COLUMNS = (
    "TenantId", "Computer", "sSiteName", "sComputerName", "sIP", "csMethod", "csUriStem", "csUriQuery",
    "csUserName", "cIP", "csVersion", "csUserAgent", "csCookie", "csReferer", "csHost", "scStatus", "scSubStatus",
    "scWin32Status", "SourceSystem", "Type",
)


# --------------------------------------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------------------------------------

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?\s*(Z|z|[+-]\d{2}:?\d{2})?$")


def parse_time(value) -> datetime | None:
    """TimeGenerated -> timezone-aware UTC datetime truncated to microseconds, or None.

    Accepts ISO-8601 with any number of fraction digits (Log Analytics writes 7: they are truncated, not rounded),
    `T` or a space between date and time, `Z`, an offset, or no zone (naive means UTC); and datetime objects."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if not isinstance(value, str):
        return None
    m = _ISO.match(value.strip(TRIM))
    if not m:
        return None
    y, mo, d, h, mi, s, frac, zone = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    try:
        dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro, tzinfo=timezone.utc)
    except ValueError:
        return None
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        dt = dt - sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return dt


def in_window(t: datetime | None, start: datetime, end: datetime) -> bool:
    """Half-open [start, end)."""
    return t is not None and start <= t < end


# --------------------------------------------------------------------------------------------------------------------
# Normal forms (CONTRACT.md "Normal forms")
# --------------------------------------------------------------------------------------------------------------------

def empty(value):
    """Empty value: null, empty or '-' after trimming becomes None. Other values are returned unchanged."""
    if value is None:
        return None
    if not isinstance(value, str):
        return value
    t = value.strip(TRIM)
    return None if t in ("", "-") else value


def norm_host(h) -> str | None:
    """Trim, lowercase, cut at the first '.'; empty becomes None."""
    if not isinstance(h, str):
        return None
    s = h.strip(TRIM).lower().split(".", 1)[0]
    return s or None


def norm_path(s: str) -> str:
    """Percent-decode once (UTF-8, invalid bytes replaced; '+' stays '+'), then '\\' becomes '/'."""
    return unquote(s, encoding="utf-8", errors="replace").replace("\\", "/")


_SLASHES = re.compile(r"/{2,}")


def norm_uri(s: str) -> str:
    """norm_path, runs of '/' collapsed to one, trimmed, lowercased, with a leading '/'."""
    p = _SLASHES.sub("/", norm_path(s)).strip(TRIM).lower()
    return p if p.startswith("/") else "/" + p


def norm_file(s: str) -> str:
    """The last '/'-segment of norm_uri(s)."""
    return norm_uri(s).rsplit("/", 1)[-1]


def is_script(name, extensions=DEFAULT_EXTENSIONS) -> bool:
    if not isinstance(name, str):
        return False
    f = norm_file(name)
    return any(f.endswith(e.lower()) for e in extensions)


def shell_dir(shell_location: str) -> str:
    """Directory part of a ShellLocation: all before its last '/' ('' at the site root)."""
    return shell_location.rsplit("/", 1)[0] if "/" in shell_location else ""


def norm_directory(directory) -> str | None:
    """An alert's Directory for PathMatched: '\\' as '/', lowercased, trailing '/' removed."""
    if not isinstance(directory, str):
        return None
    return directory.replace("\\", "/").lower().rstrip("/")


def path_matched(shell_location: str, directories) -> bool:
    """True when the directory part of ShellLocation is a suffix of some (normalised) Directory; None never matches."""
    part = shell_dir(shell_location)
    for d in directories:
        nd = norm_directory(d)
        if nd is not None and nd.endswith(part):
            return True
    return False


def status_code(value) -> int | None:
    """scStatus as an integer; values that are not integers give None (and are dropped from the set)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip(TRIM)):
        return int(value.strip(TRIM))
    return None


# --------------------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------------------

def _open_text(path: str):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return open(path, "r", encoding="utf-8", errors="replace", newline="")


def _walk(path: str, suffixes: tuple[str, ...]):
    if os.path.isfile(path):
        yield path
        return
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(suffixes):
                yield os.path.join(root, name)


def load_export_rows(path: str, *, with_source: bool = False) -> list[dict]:
    """Every JSON-lines row under `path` (recursive; `.json` and `.json.gz`). Lines that are not JSON objects, and
    rows whose TimeGenerated is missing or unparseable, are skipped. Rows are returned as parsed (TimeGenerated stays
    a string); with `with_source`, `_source_file` and `_line` are added."""
    rows = []
    for file in _walk(path, (".json", ".json.gz")):
        with _open_text(file) as fh:
            for n, line in enumerate(fh.read().split("\n"), start=1):
                line = line.rstrip("\r")
                if not line.strip(TRIM):
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(obj, dict) or parse_time(obj.get("TimeGenerated")) is None:
                    continue
                if with_source:
                    obj["_source_file"], obj["_line"] = file, n
                rows.append(obj)
    return rows


# W3C field -> W3CIISLog column
W3C_FIELDS = {
    "s-sitename": "sSiteName", "s-computername": "sComputerName", "s-ip": "sIP", "cs-method": "csMethod",
    "cs-uri-stem": "csUriStem", "cs-uri-query": "csUriQuery", "s-port": "sPort", "cs-username": "csUserName",
    "c-ip": "cIP", "cs-version": "csVersion", "cs(User-Agent)": "csUserAgent", "cs(Cookie)": "csCookie",
    "cs(Referer)": "csReferer", "cs-host": "csHost", "sc-status": "scStatus", "sc-substatus": "scSubStatus",
    "sc-win32-status": "scWin32Status", "sc-bytes": "scBytes", "cs-bytes": "csBytes", "time-taken": "TimeTaken",
}
_W3C_PATH = re.compile(r"(?:^|/)(?P<host>[^/]+)/(?P<site>W3SVC\d+)/u_ex[^/]*\.log(?:\.gz)?$")


def load_w3c_rows(path: str) -> list[dict]:
    """Native IIS W3C extended logs under `path` as W3CIISLog-like rows.

    The file path gives `Computer` (the folder above `W3SVC<n>`) and `sSiteName` (unless the log has s-sitename).
    `#Fields:` may change inside a file; a data line whose field count differs from the current `#Fields:` or whose
    date/time does not parse is skipped. `date time` (UTC) becomes TimeGenerated."""
    rows = []
    for file in _walk(path, (".log", ".log.gz")):
        m = _W3C_PATH.search(file.replace(os.sep, "/"))
        if not m:
            continue
        fields: list[str] | None = None
        with _open_text(file) as fh:
            for line in fh.read().split("\n"):
                line = line.rstrip("\r")
                if not line.strip(TRIM):
                    continue
                if line.startswith("#"):
                    if line.startswith("#Fields:"):
                        fields = line[len("#Fields:"):].split()
                    continue
                values = line.split(" ")
                if fields is None or len(values) != len(fields):
                    continue
                rec = dict(zip(fields, values))
                t = parse_time(f"{rec.get('date', '')}T{rec.get('time', '')}Z")
                if t is None:
                    continue
                row = {"TimeGenerated": t, "Computer": m.group("host"), "sSiteName": m.group("site")}
                for f, v in rec.items():
                    col = W3C_FIELDS.get(f)
                    if col:
                        row[col] = v
                rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------------------------------
# Web-shell candidates (CONTRACT.md "Web-shell candidates")
# --------------------------------------------------------------------------------------------------------------------

def _index_ids(node, index: dict) -> None:
    """Index every object with `$id` anywhere in the tree (objects inside arrays too). First occurrence wins."""
    if isinstance(node, dict):
        if "$id" in node:
            index.setdefault(str(node["$id"]), node)
        for v in node.values():
            _index_ids(v, index)
    elif isinstance(node, list):
        for v in node:
            _index_ids(v, index)


def parse_entities(entities):
    """Entities -> (resolved top-level entity list, unresolved-ref count, reason). `reason` is None when the value is a
    JSON array (string or already parsed), else REASON_NOT_JSON / REASON_NOT_ARRAY and the list is empty."""
    value = entities
    if isinstance(entities, str):
        try:
            value = json.loads(entities)
        except ValueError:
            return [], 0, REASON_NOT_JSON
    elif not isinstance(entities, (list, dict)):
        return [], 0, REASON_NOT_JSON
    if not isinstance(value, list):
        return [], 0, REASON_NOT_ARRAY
    index: dict = {}
    _index_ids(value, index)
    resolved, unresolved = [], 0
    for element in value:
        if isinstance(element, dict) and "$ref" in element and "Type" not in element:
            target = index.get(str(element["$ref"]))
            if target is None:
                unresolved += 1
                continue
            element = target
        resolved.append(element)
    return resolved, unresolved, None


def _type_is(entity, name: str) -> bool:
    return isinstance(entity, dict) and isinstance(entity.get("Type"), str) and entity["Type"].lower() == name


def entity_host_name(entity: dict) -> str | None:
    return norm_host(entity.get("HostName")) or norm_host(entity.get("NetBiosName"))


def candidates_with_findings(alert_rows, *, alerts_from, alerts_to, providers=DEFAULT_PROVIDERS,
                             extensions=DEFAULT_EXTENSIONS):
    """(candidates, findings). findings: one dict per alert (SystemAlertId) with a problem: `reason` and, for
    unresolvable references, `count`."""
    providers = set(providers)
    alerts: dict = {}          # SystemAlertId -> {"time": min TimeGenerated, "rows": [row, ...]}
    for row in alert_rows:
        if row.get("ProviderName") not in providers:
            continue
        t = parse_time(row.get("TimeGenerated"))
        if not in_window(t, alerts_from, alerts_to):
            continue
        a = alerts.setdefault(row.get("SystemAlertId"), {"time": t, "rows": []})
        a["time"] = min(a["time"], t)
        a["rows"].append(row)

    out, findings = [], []
    for alert_id, a in alerts.items():
        keys = set()
        reasons: dict = {}
        for row in a["rows"]:
            entities, unresolved, reason = parse_entities(row.get("Entities"))
            if reason:
                reasons[reason] = reasons.get(reason, 0) + 1
                continue
            if unresolved:
                reasons[REASON_UNRESOLVED_REF] = max(reasons.get(REASON_UNRESOLVED_REF, 0), unresolved)
            files = [(norm_file(e["Name"]), e.get("Directory") if isinstance(e.get("Directory"), str) else None)
                     for e in entities if _type_is(e, "file") and is_script(e.get("Name"), extensions)]
            hosts = [h for h in (entity_host_name(e) for e in entities if _type_is(e, "host")) if h]
            for f, d in files:
                for h in hosts:
                    keys.add((f, h, d))
        for reason, count in sorted(reasons.items()):
            findings.append({"SystemAlertId": alert_id, "reason": reason, "count": count})
        for f, h, d in sorted(keys, key=lambda k: (k[0], k[1], k[2] or "")):
            out.append({"FileName": f, "HostName": h, "Directory": d, "SystemAlertId": alert_id,
                        "TimeGenerated": a["time"]})
    out.sort(key=lambda c: (c["FileName"], c["HostName"], c["SystemAlertId"] or "", c["Directory"] or ""))
    return out, findings


def candidates(alert_rows, *, alerts_from, alerts_to, providers=DEFAULT_PROVIDERS,
               extensions=DEFAULT_EXTENSIONS) -> list[dict]:
    """Web-shell candidates: FileName, HostName, Directory, SystemAlertId, TimeGenerated (the alert's first landing
    in the window). An alert landed several times counts once; its candidates are the distinct
    (FileName, HostName, Directory) over its rows."""
    return candidates_with_findings(alert_rows, alerts_from=alerts_from, alerts_to=alerts_to, providers=providers,
                                    extensions=extensions)[0]


# --------------------------------------------------------------------------------------------------------------------
# Requests and the attacker summary
# --------------------------------------------------------------------------------------------------------------------

def request(row: dict) -> dict | None:
    """A W3CIISLog row -> the request's derived values, or None when it has no cIP or no csUriStem. The time window
    is checked by the caller."""
    v = {c: empty(row.get(c)) for c in IIS_STRING_COLUMNS}
    if v["cIP"] is None or v["csUriStem"] is None:
        return None
    stem = v["csUriStem"]
    host = norm_host(v["sComputerName"]) or norm_host(v["Computer"])
    return {
        "AttackerIP": v["cIP"].strip(TRIM), "HostName": host, "SiteName": v["sSiteName"],
        "ShellLocation": norm_uri(stem), "FileName": norm_file(stem), "csUriStem": stem,
        "csUserAgent": v["csUserAgent"], "csMethod": v["csMethod"], "scStatus": status_code(v["scStatus"]),
        "csCookie": v["csCookie"], "csReferer": v["csReferer"], "csUriQuery": v["csUriQuery"],
    }


def _capped(values, limit: int) -> list:
    return sorted({x for x in values if x is not None})[:limit]


def _key(value):
    return (value is None, value if value is not None else "")


def attacker_summary(alert_rows, iis_rows, *, alerts_from, alerts_to, logs_from, logs_to,
                     providers=DEFAULT_PROVIDERS, extensions=DEFAULT_EXTENSIONS,
                     max_set_size=DEFAULT_MAX_SET_SIZE) -> list[dict]:
    """The attacker summary: one row per (AttackerIP, HostName, SiteName, ShellLocation), sorted by that key."""
    by_key: dict = {}
    for c in candidates(alert_rows, alerts_from=alerts_from, alerts_to=alerts_to, providers=providers,
                        extensions=extensions):
        k = by_key.setdefault((c["FileName"], c["HostName"]), {"ids": set(), "first": None, "dirs": []})
        k["ids"].add(c["SystemAlertId"])
        k["first"] = c["TimeGenerated"] if k["first"] is None else min(k["first"], c["TimeGenerated"])
        k["dirs"].append(c["Directory"])

    groups: dict = {}
    for row in iis_rows:
        t = parse_time(row.get("TimeGenerated"))
        if not in_window(t, logs_from, logs_to):
            continue
        r = request(row)
        if r is None or r["HostName"] is None or (r["FileName"], r["HostName"]) not in by_key:
            continue
        g = groups.setdefault((r["AttackerIP"], r["HostName"], r["SiteName"], r["ShellLocation"]),
                              {"file": r["FileName"], "times": [], "reqs": []})
        g["times"].append(t)
        g["reqs"].append(r)

    out = []
    for (ip, host, site, loc), g in groups.items():
        cand = by_key[(g["file"], host)]
        reqs = g["reqs"]
        start, end = min(g["times"]), max(g["times"])
        out.append({
            "AttackerIP": ip, "HostName": host, "SiteName": site, "ShellLocation": loc, "FileName": g["file"],
            "RequestCount": len(reqs), "StartTime": start, "EndTime": end,
            "RequestUserAgents": _capped((r["csUserAgent"] for r in reqs), max_set_size),
            "RequestMethods": _capped((r["csMethod"] for r in reqs), max_set_size),
            "RequestStatusCodes": _capped((r["scStatus"] for r in reqs), max_set_size),
            "RequestCookies": _capped((r["csCookie"] for r in reqs), max_set_size),
            "RequestReferers": _capped((r["csReferer"] for r in reqs), max_set_size),
            "RequestQueryStrings": _capped((r["csUriQuery"] for r in reqs), max_set_size),
            "RawUriStems": sorted({r["csUriStem"] for r in reqs}),
            "AlertIds": sorted(x for x in cand["ids"] if x is not None),
            "FirstAlertTime": cand["first"],
            "PathMatched": path_matched(loc, cand["dirs"]),
            "timestamp": start, "IPCustomEntity": ip, "HostCustomEntity": host,
        })
    out.sort(key=lambda r: (r["AttackerIP"], r["HostName"], _key(r["SiteName"]), r["ShellLocation"]))
    return out
