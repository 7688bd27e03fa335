"""Realistic Microsoft Sentinel exports with planted web shells, for the demo, the tests and the benchmarks.

Writes two trees under OUT_DIR, laid out exactly like Log Analytics data export to storage:

    OUT_DIR/SecurityAlert/WorkspaceResourceId=/subscriptions/<guid>/resourcegroups/<rg>/providers/
        microsoft.operationalinsights/workspaces/<ws>/y=2026/m=11/d=01/h=05/m=35/PT05M.json   (or h=05/m=00/PT1H.json)
    OUT_DIR/W3CIISLog/... (same layout), or with --iis-format w3c native IIS logs:
    OUT_DIR/W3CIISLog/<host>/W3SVC<n>/u_exYYMMDD.log

plus OUT_DIR/manifest.json: the hunt windows, the planted web shells and traps with what a correct hunt must (not)
find, and row counts. Everything is deterministic for a seed; the IIS requests do not depend on the layout, gzip
share or IIS format, so the same seed gives the same requests in every layout.

Realism on purpose (see ../shared/NOTES.md): blob folders follow the ingestion time, which is TimeGenerated plus a
small random lag, so rows near a boundary land in the next blob (even the next day's folder); ids in Entities are
scoped to one alert; `sComputerName` is missing, empty or '-' on one host; native logs change `#Fields:` mid-file on
one host and repeat their header after a restart on another, with CRLF line ends.

    python -m jobs.generate OUT_DIR --days 3 --requests-per-day 2000 --layout mixed --gzip-share 0.2
"""
from __future__ import annotations

import argparse
import bisect
import gzip
import io
import json
import math
import os
import random
import shutil
import sys
import time
import uuid
from collections import defaultdict
from datetime import datetime, timezone

TICKS = 10_000_000            # Log Analytics time resolution: 100 ns ticks per second
DAY = 86_400
HOUR = 3_600
LAYOUTS = ("PT05M", "PT1H", "mixed")
# Rows land in the blob of their ingestion time: TimeGenerated plus up to this many seconds.
IIS_MAX_LAG = 90
ALERT_MAX_LAG = 300
IIS_FORMATS = ("jsonl", "w3c")

_HMS = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
_DATES: dict[int, str] = {}


def _date(epoch_day: int) -> str:
    d = _DATES.get(epoch_day)
    if d is None:
        d = _DATES[epoch_day] = datetime.fromtimestamp(epoch_day * DAY, timezone.utc).strftime("%Y-%m-%d")
    return d


def ts7(ticks: int) -> str:
    """Ticks since the epoch -> Log Analytics' ISO-8601 with 7 fraction digits, e.g. 2026-11-01T05:35:12.1234567Z."""
    sec = ticks // TICKS
    return f"{_date(sec // DAY)}T{_HMS[sec % DAY]}.{ticks % TICKS:07d}Z"


def iso(sec: int) -> str:
    return datetime.fromtimestamp(sec, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_start(start: str) -> int:
    dt = datetime.fromisoformat(start.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    sec = int(dt.timestamp())
    if sec % HOUR:
        raise ValueError(f"start must be on a whole hour (UTC): {start}")
    return sec


class _Json(dict):
    """json.dumps with a cache: the values of benign rows come from small pools."""

    def __missing__(self, key):
        value = self[key] = json.dumps(key)
        return value


# ---------------------------------------------------------------------------------------------------------------------
# The estate: hosts, sites, clients, pages
# ---------------------------------------------------------------------------------------------------------------------

DOMAIN = "contoso.local"
# name, Computer (what the agent reports), sComputerName (None: varies, see web04), server IP, sites, logs cookie,
# traffic weight. The W3C folder of a host is its Computer value.
HOSTS = [
    ("web01", "web01.contoso.local", "WEB01", "10.0.1.11",
     [("W3SVC1", 443, "www.contoso.com"), ("W3SVC2", 8080, "intranet.contoso.com")], True, 30),
    ("web02", "web02.contoso.local", "web02.contoso.local", "10.0.1.12",
     [("W3SVC1", 443, "shop.contoso.com")], True, 20),
    ("web03", "web03", "web03", "10.0.1.13",
     [("W3SVC1", 443, "portal.contoso.com"), ("W3SVC2", 80, "legacy.contoso.com")], True, 25),
    ("web04", "WEB04.CONTOSO.LOCAL", None, "10.0.1.14",
     [("W3SVC1", 443, "api.contoso.com")], False, 15),
    ("web05", "web05.contoso.local", "web05", "10.0.1.15",
     [("W3SVC1", 443, "partners.contoso.com")], True, 10),
]
# web04 does not log s-computername: the key is missing, empty or '-' (the agent's Computer must be used)
WEB04_SCN_VARIANTS = ("<missing>", "", "-")

USER_AGENTS = [s.replace(" ", "+") for s in (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 "
    "Safari/537.36 Edg/130.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile "
    "Safari/537.36",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)",
    "okhttp/4.12.0",
)]
BOT_AGENTS = [s.replace(" ", "+") for s in (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
)]
PUBLIC_FIRST_OCTETS = (20, 23, 31, 37, 40, 45, 51, 52, 62, 66, 77, 78, 80, 81, 82, 84, 86, 88, 89, 90, 91, 92, 93,
                       94, 95, 104, 109, 146, 176, 178, 185, 188, 194, 212, 213, 217)

# Every file name the scenario plants; benign traffic never uses them (help.aspx only on hosts other than web02).
RESERVED_NAMES = {"up.aspx", "help.aspx", "wso.aspx", "shell.aspx", "cmd.aspx", "ws.asmx", "aspxspy.aspx",
                  "tunnel.aspx", "edit.aspx", "notes.aspx.txt", "backdoor.aspx", "old.aspx", "late.aspx",
                  "broken.aspx", "obj.aspx"}


def _pages(rng: random.Random, host: str, vhost: str):
    """Concrete request variants of one site: (method, stem, query, status, substatus, win32, bytes, weight)."""
    out = []

    def add(method, stem, weight, query="-", status="200", size=4000, sub="0", win32="0"):
        out.append((method, stem, query, status, sub, win32, size, weight))

    def static(stem, weight, size):
        add("GET", stem, weight * 0.7, size=size)
        add("GET", stem, weight * 0.3, status="304", size=180)

    add("GET", "/", 40, size=18000)
    add("HEAD", "/", 1, size=250)
    add("GET", "/default.aspx", 12, size=18000)
    add("GET", "/Default.aspx", 3, size=18000)
    add("GET", "/login.aspx", 6, size=7000)
    add("POST", "/login.aspx", 2.5, status="302", size=600)
    add("POST", "/login.aspx", 0.5, size=7200)
    add("GET", "/Account/Login.aspx", 3, query="ReturnUrl=%2fdefault.aspx", size=7100)
    for q in ("q=invoice", "q=order+status", "q=red+shoes", "q=%E2%82%AC+price", "q=contact", "q=delivery+time"):
        add("GET", "/search.aspx", 1, query=q, size=12000)
    for p in range(1, 6):
        add("GET", "/products/list.aspx", 1.2, query=f"page={p}&sort=price", size=22000)
    for i in range(40):
        add("GET", "/products/detail.aspx", 0.2, query=f"id={1000 + i * 7}", size=15000)
    add("GET", "/products/detail.aspx", 0.05, query="id=abc", status="500", size=3400)
    add("GET", "/api/v1/orders", 5, size=2400)
    add("POST", "/api/v1/orders", 2, status="201", size=300)
    for i in range(30):
        add("GET", f"/api/v1/orders/{5000 + i * 13}", 0.12, size=900)
    add("OPTIONS", "/api/v1/orders", 0.5, size=200)
    static("/css/site.css", 18, 9000)
    static("/css/bootstrap.min.css", 10, 160000)
    static("/js/app.js", 18, 30000)
    static("/js/jquery-3.7.1.min.js", 12, 87000)
    static("/images/logo.png", 16, 12000)
    static("/images/banner.jpg", 7, 240000)
    static("/favicon.ico", 9, 5400)
    add("GET", "/robots.txt", 2, size=120)
    add("GET", "/health", 5, size=60)
    add("GET", "/WebResource.axd", 5, query="d=pynGkmcFUV13He1Qd6_TZA2&t=638563024620000000", size=23000)
    add("GET", "/ScriptResource.axd", 4, query="d=NJmAwtEo3Ipnlaxl6CMhvkD&t=2a9d95e3", size=44000)
    add("GET", "/contact.php", 1.5, size=8000)
    add("GET", "/docs/guide.aspx", 1.5, size=30000)
    if host != "web02":   # same name as web02's planted shell: must not match on other hosts
        add("GET", "/help.aspx", 3, size=16000)
    # internet background noise
    add("GET", "/wp-login.php", 0.8, status="404", size=1200, win32="2")
    add("POST", "/xmlrpc.php", 0.3, status="404", size=1200, win32="2")
    add("GET", "/.env", 0.5, status="404", size=1200, win32="2")
    add("GET", "/phpmyadmin/index.php", 0.3, status="404", size=1200, win32="3")
    add("GET", "/owa/auth/logon.aspx", 0.3, status="404", size=1200, win32="3")
    add("GET", "/cgi-bin/luci/;stok=/locale", 0.2, status="404", size=1200, win32="3")
    add("GET", "/index.php", 0.4, query="s=/Index/\\think\\app/invokefunction", status="404", size=1200, win32="2")
    # per-site taste: reweight
    return [(m, s, q, st, sub, w32, size, w * rng.uniform(0.3, 1.7)) for m, s, q, st, sub, w32, size, w in out
            if s.rsplit("/", 1)[-1].lower() not in RESERVED_NAMES or (s == "/help.aspx" and host != "web02")]


def _clients(rng: random.Random, n: int = 4000):
    """(ip, user agent, cookie) of benign clients, with Zipf-like cumulative weights."""
    clients, seen = [], set()
    while len(clients) < n:
        r = rng.random()
        if r < 0.12:
            ip = f"10.{rng.randint(1, 9)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            if ip.startswith("10.0.1."):
                continue
        elif r < 0.17:
            ip = f"2a02:{rng.randint(0x100, 0xfff):x}:{rng.randint(0x1000, 0xffff):x}::{rng.randint(1, 0xffff):x}"
        else:
            ip = (f"{rng.choice(PUBLIC_FIRST_OCTETS)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}."
                  f"{rng.randint(1, 254)}")
        if ip in seen:
            continue
        seen.add(ip)
        bot = rng.random() < 0.04
        ua = rng.choice(BOT_AGENTS) if bot else rng.choice(USER_AGENTS)
        if bot or rng.random() < 0.55:
            cookie = "-"
        else:
            sid = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz012345") for _ in range(24))
            cookie = f"ASP.NET_SessionId={sid}" + (f";+_ga=GA1.2.{rng.randint(10**8, 10**9)}.1730"
                                                    if rng.random() < 0.5 else "")
        clients.append((ip, ua, cookie))
    cum, total = [], 0.0
    for i in range(n):
        total += 1.0 / (i + 8) ** 0.9
        cum.append(total)
    return clients, cum


class _Site:
    """One (host, site, sComputerName variant): everything constant in its rows."""

    def __init__(self, index, host, computer, scn, sip, site, port, vhost, cookie, weight):
        self.index, self.host, self.computer, self.scn, self.sip = index, host, computer, scn, sip
        self.site, self.port, self.vhost, self.logs_cookie, self.weight = site, port, vhost, cookie, weight
        self.folder = computer
        scn_part = "" if scn == "<missing>" else f'"sComputerName":{json.dumps(scn)},'
        self.pre = (f'"Computer":{json.dumps(computer)},"sSiteName":{json.dumps(site)},{scn_part}'
                    f'"sIP":{json.dumps(sip)},')
        self.port_part = f'"sPort":{port},'
        self.host_part = f'"csHost":{json.dumps(vhost)},'
        self.referers = ["-"] * 6 + [f"https://{vhost}/", f"https://{vhost}/default.aspx",
                                     f"https://{vhost}/products/list.aspx?page=1&sort=price",
                                     "https://www.google.com/", "https://www.bing.com/search?q=contoso"]


# ---------------------------------------------------------------------------------------------------------------------
# Alerts and their Entities
# ---------------------------------------------------------------------------------------------------------------------

class _Entities:
    """Builds an MDATP Entities array: objects carry "$id" ("2", "3", ... as Defender writes them; "1" is the alert
    itself), later occurrences are {"$ref": id}."""

    def __init__(self, rng: random.Random):
        self.rng, self.n, self.items = rng, 1, []

    def _id(self) -> str:
        self.n += 1
        return str(self.n)

    def hashes(self):
        r = self.rng
        return [{"$id": self._id(), "Algorithm": "SHA1", "Value": f"{r.getrandbits(160):040x}", "Type": "filehash"},
                {"$id": self._id(), "Algorithm": "SHA256", "Value": f"{r.getrandbits(256):064x}",
                 "Type": "filehash"}]

    def host(self, name=None, *, fqdn=True, netbios=None, top=True):
        e = {"$id": self._id()}
        if name:
            e["DnsDomain"] = DOMAIN
            e["HostName"] = name
        if netbios:
            e["NetBiosName"] = netbios
        e.update({"OSFamily": "Windows", "OSVersion": "10.0.20348", "Type": "host",
                  "MdatpDeviceId": f"{self.rng.getrandbits(160):040x}"})
        if name and fqdn:
            e["FQDN"] = f"{name}.{DOMAIN}"
        e.update({"AadDeviceId": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), "RiskScore": "High",
                  "HealthStatus": "Active", "AvStatus": "Updated", "OnboardingStatus": "Onboarded",
                  "LoggedOnUsers": [{"AccountName": "svc-web", "DomainName": "CONTOSO"}]})
        if top:
            self.items.append(e)
        return e

    def file(self, name, directory, *, top=True):
        e = {"$id": self._id(), "Directory": directory, "Name": name, "FileHashes": self.hashes(),
             "SizeInBytes": self.rng.randint(800, 90000), "Type": "file"}
        if top:
            self.items.append(e)
        return e

    def account(self, name="DefaultAppPool", domain="IIS APPPOOL", *, top=True):
        e = {"$id": self._id(), "Name": name, "NTDomain": domain,
             "Sid": f"S-1-5-82-{self.rng.getrandbits(32)}-{self.rng.getrandbits(32)}", "IsDomainJoined": False,
             "Type": "account"}
        if top:
            self.items.append(e)
        return e

    def process(self, image_name, image_dir, command_line, *, host=None, account=None, parent=None, image=None,
                top=True):
        image = image or self.file(image_name, image_dir, top=False)
        e = {"$id": self._id(), "ProcessId": str(self.rng.randint(1000, 20000)), "CommandLine": command_line,
             "ElevationToken": "Default", "CreationTimeUtc": "2026-11-01T00:00:00Z", "ImageFile": image}
        if account is not None:
            e["Account"] = self.ref(account)
        if parent is not None:
            e["ParentProcess"] = self.ref(parent)
        if host is not None:
            e["Host"] = self.ref(host)
        e["Type"] = "process"
        if top:
            self.items.append(e)
        return e

    def ip(self, address):
        e = {"$id": self._id(), "Address": address, "Type": "ip"}
        self.items.append(e)
        return e

    @staticmethod
    def ref(entity) -> dict:
        return {"$ref": entity["$id"] if isinstance(entity, dict) else str(entity)}

    def top_ref(self, entity):
        self.items.append(self.ref(entity))

    def final(self) -> list:
        """The items with ids renumbered in serialization order (as Newtonsoft's reference handling writes them):
        every "$id" comes before its "$ref"s. A $ref to an id that is not in this alert is kept as is."""
        mapping: dict = {}

        def number(node):
            if isinstance(node, dict):
                if "$id" in node:
                    mapping[node["$id"]] = str(len(mapping) + 2)
                for v in node.values():
                    number(v)
            elif isinstance(node, list):
                for v in node:
                    number(v)

        def copy(node):
            if isinstance(node, dict):
                return {k: mapping[v] if k == "$id" else mapping.get(v, v) if k == "$ref" else copy(v)
                        for k, v in node.items()}
            if isinstance(node, list):
                return [copy(v) for v in node]
            return node

        number(self.items)
        return copy(self.items)

    def json(self) -> str:
        return json.dumps(self.final(), separators=(",", ":"))


def _w3wp(ents: _Entities, host_entity, site_pool="DefaultAppPool"):
    acc = ents.account(site_pool)
    w3wp = ents.process("w3wp.exe", "c:\\windows\\system32\\inetsrv",
                        f'c:\\windows\\system32\\inetsrv\\w3wp.exe -ap "{site_pool}" -v "v4.0" -l "webengine4.dll"',
                        host=host_entity, account=acc)
    ents.top_ref(w3wp["ImageFile"])     # the image file appears at the top level only as a reference
    return acc, w3wp


WEBSHELL_ALERTS = [
    ("Possible web shell installation", "High", "Persistence", "T1505.003"),
    ("An active 'Chopper' web shell was detected", "High", "Persistence", "T1505.003"),
    ("Suspicious web script activity", "Medium", "Execution", "T1059"),
    ("Suspicious file dropped by web server process", "Medium", "Persistence", "T1505.003"),
]
NOISE_ALERTS = [
    ("Suspicious PowerShell command line", "Medium", "Execution", "powershell.exe",
     "c:\\windows\\system32\\windowspowershell\\v1.0", "payload.ps1"),
    ("Suspicious process injection observed", "High", "DefenseEvasion", "rundll32.exe", "c:\\windows\\system32",
     "helper.dll"),
    ("Mimikatz credential theft tool", "High", "CredentialAccess", "cmd.exe", "c:\\windows\\system32",
     "mimikatz.exe"),
    ("Suspicious scheduled task", "Low", "Persistence", "schtasks.exe", "c:\\windows\\system32", "update.exe"),
    ("Ransomware behavior detected in the file system", "High", "Impact", "explorer.exe", "c:\\windows",
     "invoice.zip"),
]


class _Alerts:
    def __init__(self, rng: random.Random, tenant: str):
        self.rng, self.tenant, self.rows = rng, tenant, []

    def guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def add(self, t_ticks, *, name, severity, tactics, technique, compromised, entities, provider="MDATP",
            status="New", alert_id=None, lag=None):
        """One SecurityAlert row. `entities` is a list (dumped compactly) or a string (written as is)."""
        r = self.rng
        alert_id = alert_id or self.guid()
        vendor_id = f"da{r.randint(10**17, 10**18 - 1)}_{r.randint(-2**31, 2**31 - 1)}"
        ent = entities if isinstance(entities, str) else json.dumps(entities, separators=(",", ":"))
        if provider == "MDATP":
            product, vendor, alert_type = "Microsoft Defender Advanced Threat Protection", "Microsoft", \
                "WindowsDefenderAtp"
            ext = {"MicrosoftDefenderForEndpointLink": f"https://security.microsoft.com/alerts/{vendor_id}",
                   "Category": tactics, "DetectionSource": "EDR", "ThreatFamilyName": "", "IncidentId": "4711"}
        else:
            product, vendor, alert_type = "Azure Security Center", "Microsoft", "SIMULATED_WebShell"
            ext = {"resourceType": "Virtual Machine", "Compromised Host": compromised, "Detection": "Heuristic"}
        row = {
            "TenantId": self.tenant, "TimeGenerated": ts7(t_ticks), "DisplayName": name, "AlertName": name,
            "AlertSeverity": severity,
            "Description": f"{name} on {compromised}. Review the entities and the device timeline.",
            "ProviderName": provider, "VendorName": vendor, "VendorOriginalId": vendor_id, "SystemAlertId": alert_id,
            "ResourceId": "", "AlertType": alert_type, "ConfidenceLevel": "Unknown",
            "StartTime": ts7(t_ticks - 11 * 60 * TICKS), "EndTime": ts7(t_ticks - 2 * 60 * TICKS),
            "ProcessingEndTime": ts7(t_ticks + 40 * TICKS),
            "ExtendedProperties": json.dumps(ext, separators=(",", ":")), "Entities": ent,
            "SourceSystem": "Detection", "ProductName": product, "ProductComponentName": "", "Status": status,
            "CompromisedEntity": compromised, "Tactics": tactics, "Techniques": f'["{technique}"]',
            "Type": "SecurityAlert",
        }
        lag = r.randint(20, ALERT_MAX_LAG) if lag is None else lag
        self.rows.append((t_ticks, lag, row))
        return alert_id


# ---------------------------------------------------------------------------------------------------------------------
# The scenario: planted web shells and traps
# ---------------------------------------------------------------------------------------------------------------------

ATTACK_UAS = ["python-requests/2.31.0", "curl/8.4.0",
              "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64;+rv:109.0)+Gecko/20100101+Firefox/115.0", None]
ATTACK_QUERIES = ["-", "cmd=whoami", "cmd=net+user", "cmd=ipconfig+%2Fall", "c=dir+C%3A%5Cinetpub", "-",
                  "z0=QGluaV9zZXQoImRpc3BsYXlfZXJyb3JzIiwiMCIp", "cmd=powershell+-enc+SQBFAFgA"]


class _Plan:
    """Planted alerts, planted IIS requests and the manifest entries that say what a hunt must find."""

    def __init__(self, rng, sites, alerts: _Alerts, start, end, alert_from, alert_to):
        self.rng, self.sites, self.alerts = rng, sites, alerts
        self.start, self.end, self.alert_from, self.alert_to = start, end, alert_from, alert_to
        self.requests = []        # request tuples (see _Generator), with the entry index appended
        self.entries = []
        self._site_ix = {}
        for s in sites:
            self._site_ix.setdefault((s.host, s.site), []).append(s.index)
        self._rot = defaultdict(int)

    # times --------------------------------------------------------------------------------------------------------
    def in_logs(self) -> int:
        """A random tick inside the log window, away from its edges."""
        span = self.end - self.start
        return int((self.start + span * self.rng.uniform(0.01, 0.99)) * TICKS) + self.rng.randrange(TICKS)

    def in_alerts(self) -> int:
        span = self.alert_to - self.alert_from
        return int((self.alert_from + span * self.rng.uniform(0.05, 0.9)) * TICKS) + self.rng.randrange(TICKS)

    # requests -----------------------------------------------------------------------------------------------------
    def site(self, host, site):
        ix = self._site_ix[(host, site)]
        k = self._rot[(host, site)]
        self._rot[(host, site)] += 1
        return ix[k % len(ix)]

    def hit(self, entry, t, host, site, cip, stem, *, method="GET", query="-", status="200", ua="-", cookie="-",
            referer="-", win32="0", lag=None):
        r = self.rng
        self.requests.append((t, self.site(host, site), cip, ua, cookie, "-", method, stem, query, status, "0",
                              win32, referer, r.randint(200, 9000), r.randint(200, 4000), r.randint(15, 900),
                              r.randint(0, IIS_MAX_LAG) if lag is None else lag, entry))

    def attack(self, entry, host, site, ip, stems, n, *, times=None, lags=None, post_share=0.5):
        r = self.rng
        ua = r.choice(ATTACK_UAS)
        cookie = r.choice(["-", "ASPSESSIONIDQAQBRCST=KJHGFDSAQWERTYUIOPLKJH"])
        for i in range(n):
            t = times[i] if times else self.in_logs()
            post = r.random() < post_share
            self.hit(entry, t, host, site, ip, stems[i % len(stems)], method="POST" if post else "GET",
                     query="-" if post else r.choice(ATTACK_QUERIES),
                     status=r.choice(["200", "200", "200", "500"]), ua=ua if i % 5 else r.choice(ATTACK_UAS),
                     cookie=cookie, referer=r.choice(["-", "-", f"https://{host}.{DOMAIN}/"]),
                     lag=lags[i] if lags else None)

    def entry(self, trap, expect, host, site, location, ips, *, path_matched=None, alert_ids=(), description=""):
        self.entries.append({"trap": trap, "expect": expect, "host": host, "site": site,
                             "shell_location": location, "file_name": location.rsplit("/", 1)[-1],
                             "attacker_ips": list(ips), "path_matched": path_matched,
                             "alert_ids": sorted(alert_ids), "description": description})
        return len(self.entries) - 1

    # alerts -------------------------------------------------------------------------------------------------------
    def webshell_alert(self, t, host, file_name, directory, *, ents=None, provider="MDATP", alert_id=None,
                       status="New", lag=None):
        r = self.rng
        if ents is None:
            ents = _Entities(r)
            h = ents.host(host)
            _, w3wp = _w3wp(ents, h)
            ents.file(file_name, directory)
            cmd = ents.process("cmd.exe", "c:\\windows\\system32", 'cmd.exe /c "whoami /all"', host=h, parent=w3wp)
            ents.top_ref(cmd["ImageFile"])
            ents.ip(f"10.0.1.{10 + int(host[-1])}")
        name, sev, tactics, tech = r.choice(WEBSHELL_ALERTS)
        return self.alerts.add(t, name=name, severity=sev, tactics=tactics, technique=tech, compromised=host,
                               entities=ents.json() if isinstance(ents, _Entities) else ents, provider=provider,
                               alert_id=alert_id, status=status, lag=lag)

    def build(self):
        r, A = self.rng, self.in_alerts
        D = "C:\\inetpub\\wwwroot"

        # 1 host case: IIS logs WEB01, the alert says web01. Two alerts name the same file (AlertIds has both).
        # Trap 13 refers to the $id of up.aspx in the first one.
        e = self.entry("host_case", "match", "web01", "W3SVC1", "/uploads/up.aspx",
                       ["203.0.113.10", "2001:db8:5::beef"], path_matched=True,
                       description="sComputerName WEB01 vs alert HostName web01; IPv6 attacker; two alerts")
        a1 = self.webshell_alert(A(), "web01", "up.aspx", D + "\\uploads")
        a2 = self.webshell_alert(A(), "web01", "up.aspx", D + "\\uploads")
        self.entries[e]["alert_ids"] = sorted([a1, a2])
        self.attack(e, "web01", "W3SVC1", "203.0.113.10", ["/uploads/up.aspx"], 7)
        self.attack(e, "web01", "W3SVC1", "2001:db8:5::beef", ["/uploads/up.aspx"], 3)

        # 2 FQDN in IIS: sComputerName web02.contoso.local vs HostName web02
        e = self.entry("fqdn_in_iis", "match", "web02", "W3SVC1", "/aspnet_client/system_web/help.aspx",
                       ["198.51.100.23"], path_matched=True,
                       description="IIS logs the FQDN web02.contoso.local; the alert the short name")
        a_help = self.webshell_alert(A(), "web02", "help.aspx", D + "\\aspnet_client\\system_web")
        self.entries[e]["alert_ids"] = [a_help]
        self.attack(e, "web02", "W3SVC1", "198.51.100.23", ["/aspnet_client/system_web/help.aspx"], 5)

        # 3 same file name, same host, other directory: matches (FileName, HostName), PathMatched false
        e = self.entry("same_name_other_dir", "match", "web02", "W3SVC1", "/docs/help.aspx",
                       ["10.20.30.41", "10.20.30.42"], path_matched=False, alert_ids=[a_help],
                       description="benign /Docs/Help.aspx on the shell's host: a match by the contract, "
                                   "PathMatched false")
        for ip in ("10.20.30.41", "10.20.30.42"):
            for _ in range(3):
                self.hit(e, self.in_logs(), "web02", "W3SVC1", ip, "/Docs/Help.aspx", ua=USER_AGENTS[0],
                         referer="https://shop.contoso.com/")

        # 4 same file name on other hosts: no alert there, nothing
        for host, site, ip in (("web01", "W3SVC1", "10.20.30.43"), ("web03", "W3SVC1", "10.20.30.44")):
            e = self.entry("same_name_other_host", "none", host, site, "/help.aspx", [ip],
                           description="benign /help.aspx on a host without an alert for help.aspx")
            for _ in range(3):
                self.hit(e, self.in_logs(), host, site, ip, "/help.aspx", ua=USER_AGENTS[2])

        # 5 the file entity exists only nested (a process's ImageFile); the top level has a bare $ref
        e = self.entry("ref_only_file", "match", "web03", "W3SVC2", "/images/wso.aspx", ["192.0.2.77"],
                       path_matched=True, description="file only reachable through a top-level $ref to a "
                                                      "process's nested ImageFile")
        ents = _Entities(r)
        h = ents.host("web03")
        _, w3wp = _w3wp(ents, h)
        wso = ents.file("wso.aspx", "C:\\inetpub\\legacy\\images", top=False)
        proc = ents.process("wso.aspx", "", "csc.exe /noconfig /fullpaths @wso.cmdline", host=h, parent=w3wp,
                            image=wso)
        ents.top_ref(wso)
        ents.ip("10.0.1.13")
        assert proc["ImageFile"] is wso
        a = self.webshell_alert(A(), "web03", None, None, ents=ents)
        self.entries[e]["alert_ids"] = [a]
        self.attack(e, "web03", "W3SVC2", "192.0.2.77", ["/images/wso.aspx"], 6)

        # 6 Shell.ASPX in the alert, /uploads/shell.aspx requested
        e = self.entry("file_name_case", "match", "web03", "W3SVC1", "/uploads/shell.aspx", ["203.0.113.45"],
                       path_matched=True, description="alert names Shell.ASPX")
        a_shell = self.webshell_alert(A(), "web03", "Shell.ASPX", D + "\\uploads")
        self.entries[e]["alert_ids"] = [a_shell]
        self.attack(e, "web03", "W3SVC1", "203.0.113.45", ["/uploads/shell.aspx"], 5)

        # 7 percent-encoded request stem
        e = self.entry("percent_encoded", "match", "web03", "W3SVC1", "/uploads/shell.aspx", ["203.0.113.46"],
                       path_matched=True, alert_ids=[a_shell], description="request for /uploads/sh%65ll.aspx")
        self.attack(e, "web03", "W3SVC1", "203.0.113.46", ["/uploads/sh%65ll.aspx", "/uploads/Sh%65ll.aspx"], 4)

        # 8 backslash and double slash
        e = self.entry("backslash_double_slash", "match", "web04", "W3SVC1", "/uploads/cmd.aspx",
                       ["198.51.100.99"], path_matched=True,
                       description="requests for /uploads\\cmd.aspx and //uploads//cmd.aspx")
        a = self.webshell_alert(A(), "web04", "cmd.aspx", D + "\\uploads")
        self.entries[e]["alert_ids"] = [a]
        self.attack(e, "web04", "W3SVC1", "198.51.100.99", ["/uploads\\cmd.aspx", "//uploads//cmd.aspx"], 6)

        # 9 sComputerName missing/empty/'-': the agent's Computer (FQDN, upper case) names the host
        e = self.entry("computer_fallback", "match", "web04", "W3SVC1", "/content/ws.asmx", ["198.51.100.77"],
                       path_matched=True, description="sComputerName missing, '' or '-'; Computer "
                                                      "WEB04.CONTOSO.LOCAL")
        a = self.webshell_alert(A(), "web04", "ws.asmx", D + "\\content\\")
        self.entries[e]["alert_ids"] = [a]
        self.attack(e, "web04", "W3SVC1", "198.51.100.77", ["/content/ws.asmx"], 6)

        # 10 host entity without HostName, with NetBiosName; shell at the site root (PathMatched true at root)
        e = self.entry("netbios_only", "match", "web05", "W3SVC1", "/aspxspy.aspx", ["192.0.2.150"],
                       path_matched=True, description="host entity has NetBiosName WEB05 only; shell at the root")
        ents = _Entities(r)
        h = ents.host(None, netbios="WEB05")
        _w3wp(ents, h)
        ents.file("aspxspy.aspx", D)
        a = self.webshell_alert(A(), "web05", None, None, ents=ents)
        self.entries[e]["alert_ids"] = [a]
        self.attack(e, "web05", "W3SVC1", "192.0.2.150", ["/aspxspy.aspx", "/AspxSpy.aspx"], 5)

        # 11 one alert landed twice (status update: same SystemAlertId, later TimeGenerated, other Status)
        e = self.entry("duplicate_landing", "match", "web01", "W3SVC2", "/uploads/tmp/tunnel.aspx",
                       ["203.0.113.200"], path_matched=True,
                       description="the alert's row lands twice (New, then InProgress 47 minutes later)")
        t = A()
        ents = _Entities(r)
        h = ents.host("web01")
        _w3wp(ents, h, "IntranetPool")
        ents.file("tunnel.aspx", "C:\\inetpub\\intranet\\uploads\\tmp")
        ent_json = ents.json()
        a = self.webshell_alert(t, "web01", None, None, ents=ent_json)
        self.webshell_alert(t + 47 * 60 * TICKS, "web01", None, None, ents=ent_json, alert_id=a, status="InProgress")
        self.entries[e]["alert_ids"] = [a]
        self.attack(e, "web01", "W3SVC2", "203.0.113.200", ["/uploads/tmp/tunnel.aspx"], 8, post_share=0.9)

        # 12 file inside an array of a nested object (a malware entity's Files), plus an unresolvable $ref
        e = self.entry("ref_into_array_unresolvable_ref", "match", "web04", "W3SVC1", "/uploads/img/edit.aspx",
                       ["198.51.100.120"], path_matched=True,
                       description="file reachable only via $ref into malware.Files[]; another $ref resolves to "
                                   "nothing (dropped, the alert still counts)")
        ents = _Entities(r)
        h = ents.host("web04", fqdn=False)
        _w3wp(ents, h)
        edit = ents.file("edit.aspx", D + "\\uploads\\img", top=False)
        ents.items.append({"$id": ents._id(), "Name": "Backdoor:ASP/WebShell.A", "Category": "Backdoor",
                           "Files": [edit], "Type": "malware"})
        ents.top_ref(edit)
        ents.items.append({"$ref": "42"})     # no object of this alert has $id 42
        a = self.webshell_alert(A(), "web04", None, None, ents=ents)
        self.entries[e]["alert_ids"] = [a]
        self.attack(e, "web04", "W3SVC1", "198.51.100.120", ["/uploads/img/edit.aspx"], 4)

        # ----- must yield nothing -----
        # 13 ids are scoped to one alert: this alert's top-level {"$ref": <id of up.aspx in alert 1>} resolves to
        # nothing here; a global $id index would pair up.aspx with web05.
        up_id = next(x["$id"] for x in json.loads(self._alert_row(a1)["Entities"])
                     if x.get("Name") == "up.aspx")
        e = self.entry("ref_scope_per_alert", "none", "web05", "W3SVC1", "/uploads/up.aspx", ["198.51.100.195"],
                       description=f"alert on web05 with an unresolvable top-level $ref {up_id} (an id of "
                                   "another alert)")
        ents = _Entities(r)
        ents.host("web05")
        ents.account("svc-web", "CONTOSO")
        ents.items.append({"$ref": up_id})
        final = ents.final()
        assert all(x.get("$id") != up_id for x in final)
        self.webshell_alert(A(), "web05", None, None, ents=json.dumps(final, separators=(",", ":")))
        self.attack(e, "web05", "W3SVC1", "198.51.100.195", ["/uploads/up.aspx"], 3)

        # 14 notes.aspx.txt is not a script (has_any would say it is)
        e = self.entry("not_a_script", "none", "web03", "W3SVC1", "/uploads/notes.aspx.txt", ["198.51.100.150"],
                       description="MDATP alert names notes.aspx.txt")
        self.webshell_alert(A(), "web03", "notes.aspx.txt", D + "\\uploads")
        self.attack(e, "web03", "W3SVC1", "198.51.100.150", ["/uploads/notes.aspx.txt"], 4)

        # 15 another provider
        e = self.entry("other_provider", "none", "web01", "W3SVC1", "/uploads/backdoor.aspx", ["198.51.100.160"],
                       description="ProviderName 'Detection' (Defender for Cloud), not MDATP")
        self.webshell_alert(A(), "web01", "backdoor.aspx", D + "\\uploads", provider="Detection")
        self.attack(e, "web01", "W3SVC1", "198.51.100.160", ["/uploads/backdoor.aspx"], 4)

        # 16 alerts outside the alert window (1 s before it; exactly at its end: half-open)
        e = self.entry("alert_before_window", "none", "web02", "W3SVC1", "/uploads/old.aspx", ["198.51.100.170"],
                       description="alert 1 s before the alert window (lands in the window's first folder)")
        self.webshell_alert((self.alert_from - 1) * TICKS, "web02", "old.aspx", D + "\\uploads", lag=30)
        self.attack(e, "web02", "W3SVC1", "198.51.100.170", ["/uploads/old.aspx"], 4)
        e = self.entry("alert_at_window_end", "none", "web02", "W3SVC1", "/uploads/late.aspx", ["198.51.100.171"],
                       description="alert exactly at the alert window's end (half-open)")
        self.webshell_alert(self.alert_to * TICKS, "web02", "late.aspx", D + "\\uploads")
        self.attack(e, "web02", "W3SVC1", "198.51.100.171", ["/uploads/late.aspx"], 4)

        # 17 requests for a real shell, outside the log window (before it; exactly at its end; after it)
        e = self.entry("requests_outside_log_window", "none", "web03", "W3SVC1", "/uploads/shell.aspx",
                       ["198.51.100.180"], description="requests 60 s before the log window (landing 75 s later, "
                                                       "in the window's first folder), exactly at its end and 5 min "
                                                       "after")
        self.attack(e, "web03", "W3SVC1", "198.51.100.180", ["/uploads/shell.aspx"], 3,
                    times=[(self.start - 60) * TICKS + 1234567, self.end * TICKS, (self.end + 300) * TICKS + 42],
                    lags=[75, 0, 0])

        # 18 empty client IP
        e = self.entry("empty_cip", "none", "web03", "W3SVC1", "/uploads/shell.aspx", ["-", "", " - ", None],
                       description="cIP '-', '', ' - ' or missing")
        for ip in ("-", "", " - ", None, "-"):
            self.hit(e, self.in_logs(), "web03", "W3SVC1", ip, "/uploads/shell.aspx", method="POST")

        # 19 Entities not JSON / a JSON object (not an array)
        e = self.entry("entities_not_json", "none", "web03", "W3SVC1", "/uploads/broken.aspx", ["198.51.100.190"],
                       description="Entities is truncated JSON")
        ents = _Entities(r)
        ents.host("web03")
        ents.file("broken.aspx", D + "\\uploads")
        text = ents.json()
        self.webshell_alert(A(), "web03", None, None, ents=text[: text.index('"Name":"broken.aspx"') + 30])
        self.attack(e, "web03", "W3SVC1", "198.51.100.190", ["/uploads/broken.aspx"], 3)
        e = self.entry("entities_object", "none", "web04", "W3SVC1", "/uploads/obj.aspx", ["198.51.100.191"],
                       description='Entities is a JSON object {"entities": [host, file]}, not an array')
        ents = _Entities(r)
        ents.host("web04")
        ents.file("obj.aspx", D + "\\uploads")
        self.webshell_alert(A(), "web04", None, None,
                            ents=json.dumps({"entities": ents.final()}, separators=(",", ":")))
        self.attack(e, "web04", "W3SVC1", "198.51.100.191", ["/uploads/obj.aspx"], 3)

        # first alert time (inside the alert window) and request counts inside the log window, per entry and IP
        for i, en in enumerate(self.entries):
            times = [t for t, _, row in self.alerts.rows if row["SystemAlertId"] in en["alert_ids"]
                     and self.alert_from * TICKS <= t < self.alert_to * TICKS]
            en["first_alert_time"] = ts7(min(times)) if times else None
            counts = defaultdict(int)
            stems = set()
            for q in self.requests:
                if q[-1] == i and self.start * TICKS <= q[0] < self.end * TICKS and q[2] is not None \
                        and q[2].strip() not in ("", "-"):
                    counts[q[2]] += 1
                    stems.add(q[7])
            en["request_counts"] = dict(counts)
            en["raw_uri_stems"] = sorted(stems)
        self.requests.sort(key=lambda q: q[0])

    def _alert_row(self, alert_id):
        return next(row for _, _, row in self.alerts.rows if row["SystemAlertId"] == alert_id)


def _noise_alerts(rng: random.Random, alerts: _Alerts, day_start: int):
    """Ordinary alerts of one day: MDATP with non-script files, a .js on a workstation, other providers."""
    hosts = ["web01", "web02", "web03", "web04", "web05", "ws-0142", "ws-0217", "ws-0388", "sql01", "dc01"]
    for i in range(8):
        t = (day_start + rng.randrange(DAY)) * TICKS + rng.randrange(TICKS)
        name, sev, tactics, image, image_dir, dropped = rng.choice(NOISE_ALERTS)
        host = rng.choice(hosts)
        ents = _Entities(rng)
        h = ents.host(host, fqdn=rng.random() < 0.7)
        acc = ents.account(rng.choice(["jdoe", "asmith", "svc-backup"]), "CONTOSO")
        p = ents.process(image, image_dir, f"{image} -nop -w hidden", host=h, account=acc)
        ents.top_ref(p["ImageFile"])
        if i == 0:
            ents.file("invoice.js", "C:\\Users\\jdoe\\Downloads")   # a script, on a host without IIS logs
            host = "ws-0142"
            ents.items[0]["HostName"] = host
            ents.items[0]["FQDN"] = f"{host}.{DOMAIN}"
        else:
            ents.file(dropped, "C:\\Users\\Public\\Temp")
        ents.ip(f"{rng.choice(PUBLIC_FIRST_OCTETS)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}")
        provider = "MDATP" if i < 6 else rng.choice(["Detection", "IPC", "MCAS"])
        alerts.add(t, name=name, severity=sev, tactics=tactics, technique="T1059", compromised=host,
                   entities=ents.json(), provider=provider)


# ---------------------------------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------------------------------

W3C_DEFAULT_FIELDS = ("date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
                      "cs(Referer) sc-status sc-substatus sc-win32-status time-taken")
W3C_EXTENDED_FIELDS = ("date time s-sitename s-computername s-ip cs-method cs-uri-stem cs-uri-query s-port "
                       "cs-username c-ip cs(User-Agent) cs(Cookie) cs(Referer) cs-host sc-status sc-substatus "
                       "sc-win32-status sc-bytes cs-bytes time-taken")


class _ExportTree:
    """Log Analytics data-export blobs of one table, written once each (rows are grouped by blob first)."""

    def __init__(self, root, table, workspace_path, layout, gzip_share, seed):
        self.base = f"{root}/{table}/WorkspaceResourceId={workspace_path}"
        self.table, self.layout, self.gzip_share, self.seed = table, layout, gzip_share, seed
        self.pending = defaultdict(list)     # (blob start second, blob kind) -> lines
        self._keys: dict[int, tuple] = {}
        self.blobs = 0

    def kind(self, hour_start: int) -> str:
        if self.layout != "mixed":
            return self.layout
        return "PT1H" if random.Random(f"{self.seed}:layout:{hour_start}").random() < 0.5 else "PT05M"

    def key(self, sec: int):
        slot = sec - sec % 300
        k = self._keys.get(slot)
        if k is None:
            hour = sec - sec % HOUR
            kind = self.kind(hour)
            k = self._keys[slot] = (slot if kind == "PT05M" else hour, kind)
        return k

    def add(self, sec: int, line: str):
        self.pending[self.key(sec)].append(line)

    def flush(self, before: int | None = None):
        """Write every pending blob that ends at or before `before` (all when None)."""
        for k in sorted(self.pending):
            start, kind = k
            if before is not None and start + (300 if kind == "PT05M" else HOUR) > before:
                continue
            self._write(start, kind, self.pending.pop(k))

    def _write(self, start, kind, lines):
        dt = datetime.fromtimestamp(start, timezone.utc)
        folder = (f"{self.base}/y={dt.year:04d}/m={dt.month:02d}/d={dt.day:02d}/h={dt.hour:02d}/"
                  f"m={dt.minute:02d}")
        os.makedirs(folder, exist_ok=True)
        data = "\n".join(lines) + "\n"
        gz = self.gzip_share > 0 and random.Random(f"{self.seed}:gz:{self.table}:{start}").random() < self.gzip_share
        if gz:      # mtime=0: the same seed gives the same bytes
            with gzip.GzipFile(f"{folder}/{kind}.json.gz", "wb", compresslevel=1, mtime=0) as fh:
                fh.write(data.encode("utf-8"))
        else:
            with open(f"{folder}/{kind}.json", "w", encoding="utf-8", newline="") as fh:
                fh.write(data)
        self.blobs += 1


class _W3CFiles:
    """Native IIS logs: <root>/W3CIISLog/<host folder>/<site>/u_exYYMMDD.log, CRLF, headers per block."""

    def __init__(self, root, gzip_share, seed):
        self.root, self.gzip_share, self.seed = f"{root}/W3CIISLog", gzip_share, seed
        self.open = {}      # (folder, site, epoch day) -> [handle, block]
        self.files = 0

    def handle(self, site: _Site, day: int):
        k = (site.folder, site.site, day)
        h = self.open.get(k)
        if h is None:
            folder = f"{self.root}/{site.folder}/{site.site}"
            os.makedirs(folder, exist_ok=True)
            name = "u_ex" + _date(day).replace("-", "")[2:] + ".log"
            gz = self.gzip_share > 0 and random.Random(f"{self.seed}:gz:w3c:{k}").random() < self.gzip_share
            fh = (io.TextIOWrapper(gzip.GzipFile(f"{folder}/{name}.gz", "wb", compresslevel=1, mtime=0),
                                   encoding="utf-8", newline="")
                  if gz else open(f"{folder}/{name}", "w", encoding="utf-8", newline=""))
            h = self.open[k] = [fh, None]
            self.files += 1
        return h

    def close_before(self, day: int | None = None):
        for k in [k for k in self.open if day is None or k[2] < day]:
            self.open.pop(k)[0].close()


def _w3c_value(v) -> str:
    if v is None:
        return "-"
    v = str(v)
    return "-" if v.strip() in ("", "-") else v.replace(" ", "+")


# ---------------------------------------------------------------------------------------------------------------------
# generate()
# ---------------------------------------------------------------------------------------------------------------------

def _hour_shape(hour: int) -> float:
    return 0.25 + math.exp(-((hour - 14.5) / 4.0) ** 2) + 0.35 * math.exp(-((hour - 9) / 1.5) ** 2)


def _allocate(total: int, weights: list[float]) -> list[int]:
    s = sum(weights)
    raw = [total * w / s for w in weights]
    out = [int(x) for x in raw]
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - out[i], reverse=True)[: total - sum(out)]:
        out[i] += 1
    return out


def generate(out_dir: str, *, days: int = 3, requests_per_day: int = 2000, start: str = "2026-11-01T00:00:00Z",
             seed: int = 7, layout: str = "PT05M", gzip_share: float = 0.0, iis_format: str = "jsonl",
             malformed_lines: int = 0) -> dict:
    """Write SecurityAlert and W3CIISLog exports under `out_dir` and return (and write) the manifest.

    The period is [start, start + days). Alert window: its last day; log window: the whole period; as_of: its end.
    `requests_per_day` is the IIS row count of each day of the period (planted requests included, malformed lines
    not); a few planted rows lie just outside the period on purpose. The manifest's `planted` entries say, per
    trap, which (host, site, shell_location, attacker_ips) a correct hunt must find (`expect` "match") or must not
    (`expect` "none")."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}")
    if iis_format not in IIS_FORMATS:
        raise ValueError(f"iis_format must be one of {IIS_FORMATS}")
    if days < 1 or requests_per_day < 0 or malformed_lines < 0 or not 0.0 <= gzip_share <= 1.0:
        raise ValueError("days >= 1, requests_per_day >= 0, malformed_lines >= 0, 0 <= gzip_share <= 1")
    t0 = time.time()
    out_dir = os.path.abspath(out_dir)
    for sub in ("SecurityAlert", "W3CIISLog"):
        shutil.rmtree(os.path.join(out_dir, sub), ignore_errors=True)
    os.makedirs(out_dir, exist_ok=True)

    p_start = _parse_start(start)
    p_end = p_start + days * DAY
    alert_from, alert_to = p_end - DAY, p_end
    rng = random.Random(f"{seed}:estate")
    tenant = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    subscription = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    workspace_path = (f"/subscriptions/{subscription}/resourcegroups/rg-sentinel-prod/providers/"
                      f"microsoft.operationalinsights/workspaces/law-sentinel-prod")

    # the estate
    sites: list[_Site] = []
    for host, computer, scn, sip, host_sites, cookie, weight in HOSTS:
        for site, port, vhost in host_sites:
            variants = WEB04_SCN_VARIANTS if scn is None else (scn,)
            for v in variants:
                sites.append(_Site(len(sites), host, computer, v, sip, site, port, vhost, cookie,
                                   weight / len(host_sites) / len(variants)))
    site_cum, acc = [], 0.0
    for s in sites:
        acc += s.weight
        site_cum.append(acc)
    page_rng = random.Random(f"{seed}:pages")
    pages = {}
    for s in sites:
        if (s.host, s.site) not in pages:
            pv = _pages(page_rng, s.host, s.vhost)
            cum, a = [], 0.0
            for v in pv:
                a += v[7]
                cum.append(a)
            pages[(s.host, s.site)] = (pv, cum, a)
    clients, client_cum = _clients(random.Random(f"{seed}:clients"))

    # the scenario and the alerts
    alerts = _Alerts(random.Random(f"{seed}:alerts"), tenant)
    plan = _Plan(random.Random(f"{seed}:plan"), sites, alerts, p_start, p_end, alert_from, alert_to)
    plan.build()
    if malformed_lines:
        plan.entries.append({
            "trap": "malformed_rows", "expect": "none", "host": "web01", "site": "W3SVC1",
            "shell_location": "/uploads/up.aspx", "file_name": "up.aspx", "attacker_ips": ["203.0.113.250"],
            "path_matched": None, "alert_ids": [], "first_alert_time": None, "request_counts": {}, "raw_uri_stems": [],
            "description": "malformed lines (truncated JSON, no or unparseable TimeGenerated; in w3c a line with "
                           "an extra field) request a real shell from this IP: they must not count"})
    noise_rng = random.Random(f"{seed}:noise")
    for d in range(days):
        _noise_alerts(noise_rng, alerts, p_start + d * DAY)

    alert_tree = _ExportTree(out_dir, "SecurityAlert", workspace_path, layout, gzip_share, seed)
    for t, lag, row in sorted(alerts.rows, key=lambda x: x[0]):
        alert_tree.add(t // TICKS + lag, json.dumps(row, separators=(",", ":")))
    alert_tree.flush()

    # IIS: hour chunks from a day before the period to a day after it (planted rows outside the window)
    planted = plan.requests
    planted_per_day = defaultdict(int)
    for q in planted:
        planted_per_day[(q[0] // TICKS - p_start) // DAY] += 1
    shape = [_hour_shape(h) for h in range(24)]
    malformed_rng = random.Random(f"{seed}:malformed")
    malformed_at = defaultdict(list)      # chunk start -> [(second, kind index)]
    for i in range(malformed_lines):
        sec = p_start + malformed_rng.randrange(days * DAY)
        malformed_at[sec - (sec - p_start) % HOUR].append((sec, i % 4))

    w3c = iis_format == "w3c"
    tree = None if w3c else _ExportTree(out_dir, "W3CIISLog", workspace_path, layout, gzip_share, seed)
    files = _W3CFiles(out_dir, gzip_share, seed) if w3c else None
    J = _Json()
    iis_rows = 0
    pi = 0
    n_planted = len(planted)
    HT = HOUR * TICKS
    for day in range(-1, days + 1):
        day_start = p_start + day * DAY
        benign = max(0, requests_per_day - planted_per_day[day]) if 0 <= day < days else 0
        per_hour = _allocate(benign, shape) if benign else [0] * 24
        day_rng = random.Random(f"{seed}:iis:{day}")
        if w3c:
            files.close_before((day_start) // DAY)
        for hour in range(24):
            c0 = day_start + hour * HOUR
            n = per_hour[hour]
            reqs = []
            if n:
                rnd = day_rng.random
                six = day_rng.choices(range(len(sites)), cum_weights=site_cum, k=n)
                cix = day_rng.choices(range(len(clients)), cum_weights=client_cum, k=n)
                offs = sorted(int(rnd() * HT) for _ in range(n))
                base = c0 * TICKS
                for i in range(n):
                    s = sites[six[i]]
                    pv, pcum, ptot = pages[(s.host, s.site)]
                    m, stem, q, st, sub, w32, size, _ = pv[bisect.bisect_right(pcum, rnd() * ptot)]
                    ip, ua, cookie = clients[cix[i]]
                    r = rnd()
                    user = "-" if s.site != "W3SVC2" or s.host != "web01" else f"CONTOSO\\user{cix[i] % 97:02d}"
                    reqs.append((base + offs[i], s.index, ip, ua, cookie, user, m, stem, q, st, sub, w32,
                                 s.referers[int(r * len(s.referers))], size + int(r * size / 4) if st != "304"
                                 else size, 300 + int(r * 900), 1 + int(r * r * r * 1500),
                                 int(rnd() ** 4 * IIS_MAX_LAG)))
            c1 = (c0 + HOUR) * TICKS
            extra = []
            while pi < n_planted and planted[pi][0] < c1:
                extra.append(planted[pi][:17])
                pi += 1
            if extra:
                reqs.extend(extra)
                reqs.sort(key=lambda x: x[0])
            iis_rows += len(reqs)
            bad = malformed_at.get(c0, ())
            if w3c:
                _write_w3c_chunk(files, sites, reqs, bad, malformed_rng)
            else:
                _write_jsonl_chunk(tree, sites, reqs, bad, malformed_rng, J, tenant)
                tree.flush(before=c0 + HOUR)
    assert pi == n_planted, "planted requests outside the generated chunks"
    if w3c:
        files.close_before(None)
    else:
        tree.flush()

    manifest = {
        "alerts_dir": os.path.join(out_dir, "SecurityAlert"),
        "iis_dir": os.path.join(out_dir, "W3CIISLog"),
        "iis_format": iis_format,
        "alert_window": (iso(alert_from), iso(alert_to)),
        "log_window": (iso(p_start), iso(p_end)),
        "as_of": iso(p_end),
        "planted": plan.entries,
        "max_landing_lag_seconds": {"alerts": ALERT_MAX_LAG, "iis": 0 if w3c else IIS_MAX_LAG},
        "counts": {"alert_rows": len(alerts.rows), "iis_rows": iis_rows, "malformed_lines": malformed_lines,
                   "alert_blobs": alert_tree.blobs,
                   "iis_files": files.files if w3c else tree.blobs},
        "params": {"days": days, "requests_per_day": requests_per_day, "start": start, "seed": seed,
                   "layout": layout, "gzip_share": gzip_share, "iis_format": iis_format,
                   "malformed_lines": malformed_lines},
        "seconds": round(time.time() - t0, 2),
    }
    with open(os.path.join(out_dir, "manifest.json"), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2)
    return manifest


def _write_jsonl_chunk(tree: _ExportTree, sites, reqs, bad, rng, J, tenant):
    pre = f'{{"TenantId":"{tenant}","TimeGenerated":"'
    post = '"SourceSystem":"OpsManager","Type":"W3CIISLog"}'
    pending, key = tree.pending, tree.key
    for t, si, ip, ua, cookie, user, m, stem, q, st, sub, w32, ref, scb, csb, tt, lag in reqs:
        s = sites[si]
        sec = t // TICKS
        line = (f'{pre}{_date(sec // DAY)}T{_HMS[sec % DAY]}.{t % TICKS:07d}Z",{s.pre}'
                f'"csMethod":{J[m]},"csUriStem":{J[stem]},"csUriQuery":{J[q]},{s.port_part}"csUserName":{J[user]},'
                + ("" if ip is None else f'"cIP":{J[ip]},')
                + f'"csVersion":"HTTP/1.1","csUserAgent":{J["-" if ua is None else ua]},'
                + (f'"csCookie":{J[cookie]},' if s.logs_cookie else "")
                + f'"csReferer":{J[ref]},{s.host_part}"scStatus":{J[st]},"scSubStatus":{J[sub]},'
                  f'"scWin32Status":{J[w32]},"scBytes":{scb},"csBytes":{csb},"TimeTaken":{tt},{post}')
        pending[key(sec + lag)].append(line)
    for sec, kind in bad:
        tree.add(sec, _bad_json_line(kind, sec, rng, tenant))


def _bad_json_line(kind, sec, rng, tenant):
    row = {"TenantId": tenant, "TimeGenerated": ts7(sec * TICKS + rng.randrange(TICKS)),
           "Computer": "web01.contoso.local", "sSiteName": "W3SVC1", "sComputerName": "WEB01", "csMethod": "POST",
           "csUriStem": "/uploads/up.aspx",
           "csUriQuery": "cmd=whoami", "cIP": "203.0.113.250", "scStatus": "200", "SourceSystem": "OpsManager",
           "Type": "W3CIISLog"}
    if kind == 0:                       # truncated JSON (a partly written line)
        text = json.dumps(row, separators=(",", ":"))
        return text[: rng.randint(20, len(text) - 5)]
    if kind == 1:                       # a bare array
        return json.dumps(["W3CIISLog", "web01", 200, None])
    if kind == 2:                       # no TimeGenerated
        del row["TimeGenerated"]
    else:                               # unparseable TimeGenerated
        row["TimeGenerated"] = "not-a-date"
    return json.dumps(row, separators=(",", ":"))


def _write_w3c_chunk(files: _W3CFiles, sites, reqs, bad, rng):
    by_file = defaultdict(list)
    for r in reqs:
        s = sites[r[1]]
        sec = r[0] // TICKS
        by_file[(s.folder, s.site, sec // DAY)].append(r)
    for sec, kind in bad:
        s = sites[rng.randrange(len(sites))]
        by_file[(s.folder, s.site, sec // DAY)].append((sec * TICKS, s.index, "bad", kind))
    for k in sorted(by_file):
        rows = sorted(by_file[k], key=lambda r: r[0])
        h = files.handle(sites[rows[0][1]], k[2])
        out = []
        for r in rows:
            s = sites[r[1]]
            sec = r[0] // TICKS
            hour = (sec % DAY) // HOUR
            extended = s.host == "web02" and hour >= 12        # more fields enabled at noon
            block = (extended, s.host == "web03" and hour >= 9)   # web03 restarts at 09:00: header again
            d, hms = _date(sec // DAY), _HMS[sec % DAY]
            if block != h[1]:
                h[1] = block
                out.append("#Software: Microsoft Internet Information Services 10.0")
                out.append("#Version: 1.0")
                out.append(f"#Date: {d} {hms}")
                out.append("#Fields: " + (W3C_EXTENDED_FIELDS if extended else W3C_DEFAULT_FIELDS))
            if r[2] == "bad":
                n = 21 if extended else 15
                kind = r[3] % 3
                if kind == 0:       # cut short
                    out.append(f"{d} {hms} {s.sip} GET /index")
                elif kind == 1:     # one field too many (an unencoded space)
                    out.append(" ".join([d, hms, s.sip, "GET", "/", "-", str(s.port), "-", "203.0.113.250",
                                         "Mozilla/5.0 (bad", "-", "200", "0", "0", "15"] + ["-"] * (n - 15) + ["x"]))
                else:               # bad date
                    out.append(" ".join(["not-a-date", hms] + ["-"] * (n - 2)))
                continue
            _, _, ip, ua, cookie, user, m, stem, q, st, sub, w32, ref, scb, csb, tt, _ = r
            v = _w3c_value
            if extended:
                out.append(f"{d} {hms} {s.site} {v(s.scn)} {s.sip} {m} {v(stem)} {v(q)} {s.port} {v(user)} "
                           f"{v(ip)} {v(ua)} {v(cookie)} {v(ref)} {s.vhost} {st} {sub} {w32} {scb} {csb} {tt}")
            else:
                out.append(f"{d} {hms} {s.sip} {m} {v(stem)} {v(q)} {s.port} {v(user)} {v(ip)} {v(ua)} {v(ref)} "
                           f"{st} {sub} {w32} {tt}")
        h[0].write("\r\n".join(out) + "\r\n")


# ---------------------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m jobs.generate",
        description="Write realistic Sentinel exports (SecurityAlert + W3CIISLog) with planted web shells and "
                    "traps, plus OUT_DIR/manifest.json saying what a correct hunt finds.",
        epilog="Examples:\n  python -m jobs.generate demo-exports\n"
               "  python -m jobs.generate /tmp/big --days 30 --requests-per-day 500000 --gzip-share 0.1\n"
               "  python -m jobs.generate /tmp/native --iis-format w3c --malformed-lines 20\n"
               "OUT_DIR/SecurityAlert and OUT_DIR/W3CIISLog are replaced.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", metavar="OUT_DIR", help="where to write (SecurityAlert/, W3CIISLog/, manifest.json)")
    ap.add_argument("--days", type=int, default=3, help="days in the period (default 3); the alert window is the "
                                                        "last day, the log window the whole period")
    ap.add_argument("--requests-per-day", type=int, default=2000, help="IIS rows per day (default 2000)")
    ap.add_argument("--start", default="2026-11-01T00:00:00Z", help="period start, a whole UTC hour "
                                                                    "(default 2026-11-01T00:00:00Z)")
    ap.add_argument("--seed", type=int, default=7, help="random seed (default 7): same seed, same data")
    ap.add_argument("--layout", choices=LAYOUTS, default="PT05M",
                    help="export blobs: PT05M (5-minute, since Oct 2021), PT1H (hourly, before) or mixed per hour")
    ap.add_argument("--gzip-share", type=float, default=0.0, help="share of blobs/files written gzipped (0..1)")
    ap.add_argument("--iis-format", choices=IIS_FORMATS, default="jsonl",
                    help="jsonl: Log Analytics data export; w3c: native IIS u_exYYMMDD.log files")
    ap.add_argument("--malformed-lines", type=int, default=0,
                    help="extra bad IIS lines (not JSON, bare arrays, no/unparseable TimeGenerated)")
    ap.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    a = ap.parse_args(argv)
    m = generate(a.out_dir, days=a.days, requests_per_day=a.requests_per_day, start=a.start, seed=a.seed,
                 layout=a.layout, gzip_share=a.gzip_share, iis_format=a.iis_format,
                 malformed_lines=a.malformed_lines)
    if a.json:
        print(json.dumps(m, indent=2))
        return 0
    c = m["counts"]
    print(f"wrote {a.out_dir} in {m['seconds']} s")
    print(f"  SecurityAlert: {c['alert_rows']} rows in {c['alert_blobs']} blobs  ({m['alerts_dir']})")
    print(f"  W3CIISLog:     {c['iis_rows']} rows in {c['iis_files']} files ({m['iis_format']}), "
          f"{c['malformed_lines']} malformed lines  ({m['iis_dir']})")
    print(f"  alert window:  {m['alert_window'][0]} .. {m['alert_window'][1]}")
    print(f"  log window:    {m['log_window'][0]} .. {m['log_window'][1]}   as_of {m['as_of']}")
    print("  planted:")
    for e in m["planted"]:
        ips = ",".join("null" if ip is None else repr(ip) if ip.strip() in ("", "-") else ip
                       for ip in e["attacker_ips"])
        print(f"    {e['expect']:5} {e['trap']:32} {e['host']:5} {e['site']:6} {e['shell_location']:38} {ips}")
    print(f"  manifest: {os.path.join(os.path.abspath(a.out_dir), 'manifest.json')}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:          # e.g. piped into head
        sys.exit(0)
