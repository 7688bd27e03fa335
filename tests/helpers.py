"""Building blocks for hunt tests: in-memory alerts and requests through the real pipelines (no Delta)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from pipelines.entities import alert_entities, candidate_rows
from pipelines.hunt import summarize
from pipelines.requests import normalize_requests
from schemas.sentinel import SECURITY_ALERT, W3C_IIS_LOG

EXT = [".asp", ".aspx", ".asmx", ".asax", ".php", ".jsp", ".js", ".cfm", ".shtml"]
UTC = timezone.utc


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


def alert(alert_id: str, time: str, entities, provider: str = "MDATP", **extra) -> dict:
    return {"SystemAlertId": alert_id, "TimeGenerated": ts(time), "ProviderName": provider,
            "AlertName": "Web shell", "Entities": entities if isinstance(entities, str) else json.dumps(entities),
            **extra}


def shell_entities(name: str = "shell.aspx", host: str | None = "web01", directory: str = "C:\\inetpub\\wwwroot",
                   netbios: str | None = None) -> list:
    h = {"$id": "2", "Type": "host"}
    if host is not None:
        h["HostName"] = host
    if netbios is not None:
        h["NetBiosName"] = netbios
    return [h, {"$id": "3", "Type": "file", "Name": name, "Directory": directory}]


def request(time: str, stem: str = "/shell.aspx", ip: str = "203.0.113.5", host: str | None = "web01",
            computer: str | None = None, **extra) -> dict:
    row = {"TimeGenerated": ts(time), "sComputerName": host, "Computer": computer or host, "cIP": ip,
           "csUriStem": stem, "csMethod": "POST", "scStatus": "200", "sSiteName": "W3SVC1"}
    row.update(extra)
    return row


def frame(spark, rows: list[dict], schema):
    names = [f.name for f in schema.fields]
    return spark.createDataFrame([tuple(r.get(n) for n in names) for r in rows], schema)


def candidates(spark, alerts: list[dict], providers=("MDATP",), extensions=EXT):
    return (frame(spark, alerts, SECURITY_ALERT).transform(alert_entities())
            .transform(candidate_rows(list(providers), extensions)))


def summary(spark, alerts: list[dict], requests: list[dict], alerts_from="2026-11-02T00:00:00Z",
            alerts_to="2026-11-03T00:00:00Z", logs_from="2026-11-01T00:00:00Z", logs_to="2026-11-03T00:00:00Z",
            max_set_size: int = 100, providers=("MDATP",)):
    c = candidates(spark, alerts, providers)
    w = [datetime.fromisoformat(x.replace("Z", "+00:00")) for x in (alerts_from, alerts_to, logs_from, logs_to)]
    return (frame(spark, requests, W3C_IIS_LOG).transform(normalize_requests(W3C_IIS_LOG))
            .transform(summarize(c, *w, max_set_size=max_set_size)))


def keys(df):
    return sorted((r.AttackerIP, r.HostName, r.SiteName, r.ShellLocation) for r in
                  df.select("AttackerIP", "HostName", "SiteName", "ShellLocation").collect())

