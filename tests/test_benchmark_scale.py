"""The scale benchmark (benchmarks/scale.py) cannot rot: it runs here at a tiny size, in this process with the suite's
SparkSession, and the three implementations of the contract (shelltrace's gold, one DuckDB query over the raw
exports, plain Spark over the raw exports) must agree with each other and with tests/reference.py. The DuckDB query
(benchmarks/contract.sql) is also pinned to tests/reference.py on its own, without Spark: on a generated set with
every trap of jobs/generate.py, and on hand-written rows for the rules the generator does not exercise."""
from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from jobs.generate import generate
from jobs.common import parse_ts
from tests import benchmark_modules
from tests import reference as R

ROOT = Path(__file__).resolve().parents[1]
UTC = timezone.utc


S = benchmark_modules.load("scale")


def _windows(manifest):
    (a_from, a_to), (l_from, l_to) = manifest["alert_window"], manifest["log_window"]
    return dict(alerts_from=parse_ts(a_from), alerts_to=parse_ts(a_to), logs_from=parse_ts(l_from),
                logs_to=parse_ts(l_to))


def _duckdb(alerts_dir, iis_dir, w, max_set_size=100):
    return S.duckdb_summary(str(alerts_dir), str(iis_dir), w["alerts_from"], w["alerts_to"], w["logs_from"],
                            w["logs_to"], {"hunt": {"max_set_size": max_set_size}})


def _reference(alerts_dir, iis_dir, w, max_set_size=100):
    return R.attacker_summary(R.load_export_rows(str(alerts_dir)), R.load_export_rows(str(iis_dir)),
                              max_set_size=max_set_size, **w)


# ------------------------------------------------------------------------------------ DuckDB query vs the reference

def test_duckdb_contract_query_equals_the_reference_on_a_generated_set_with_every_trap(tmp_path):
    m = generate(str(tmp_path / "exports"), days=3, requests_per_day=600, malformed_lines=8, layout="mixed",
                 gzip_share=0.3)
    w = _windows(m)
    expected = S.dict_rows(_reference(m["alerts_dir"], m["iis_dir"], w))
    actual = S.dict_rows(_duckdb(m["alerts_dir"], m["iis_dir"], w))
    assert len(expected) > 10
    assert S.compare({"reference": expected, "duckdb": actual}) == []
    check = S.planted_check(m, actual)
    assert (check["missed"], check["trapped"]) == ([], [])
    assert check["planted_found"] == check["planted_expected"] > 5


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


T0 = datetime(2026, 11, 3, tzinfo=UTC)
EDGE_WINDOWS = dict(alerts_from=T0, alerts_to=T0 + timedelta(hours=1), logs_from=T0 - timedelta(days=7),
                    logs_to=T0 + timedelta(hours=1))


def _alert(alert_id, entities, time, provider="MDATP"):
    row = {"TimeGenerated": time, "SystemAlertId": alert_id, "ProviderName": provider, "AlertName": "web shell"}
    if entities is not None:
        row["Entities"] = entities
    return row


def _edge_alerts():
    at = T0 + timedelta(minutes=5)
    return [
        # Entities already parsed (an array, not a string); FQDN host with spaces and capitals; a time with a space
        # and no zone (UTC); a Directory with a trailing backslash
        _alert("a1", [{"$id": "2", "Type": "host", "HostName": "  WEB07.Contoso.local "},
                      {"$id": "3", "Type": "FILE", "Name": "Up.ASPX", "Directory": "C:\\inetpub\\wwwroot\\uploads\\"}],
               "2026-11-03 00:05:00"),
        # nested ids, the first of two equal ids (pre-order) wins, a numeric $ref/$id, a $ref with a Type is an
        # entity of its own, HostName not a string (NetBiosName is used); time with an offset
        _alert("a2", json.dumps([
            {"$id": "2", "Type": "host", "HostName": 42, "NetBiosName": "WEB08"},
            {"$id": "3", "Type": "process",
             "ImageFile": {"$id": "9", "Type": "file", "Name": "first.aspx", "Directory": "c:\\sites\\a"}},
            {"$id": "4", "Type": "malware",
             "Files": [{"$id": "9", "Type": "file", "Name": "second.aspx", "Directory": "c:\\x"}]},
            {"$ref": "9"},
            {"$ref": "3", "Type": "file", "Name": "typedref.aspx", "Directory": "c:\\y"},
            {"$id": "6", "Type": "url", "Nested": {"$id": 5, "Type": "File", "Name": "Num.PHP",
                                                    "Directory": "C:/sites/a/"}},
            {"$ref": 5},
            {"$ref": "77"},
            {"Type": 5, "Name": "typeless.aspx"},
        ]), "2026-11-03T02:10:00+02:00"),
        # one alert landed three times: the earliest row in the window gives its time; a row before the window adds
        # nothing
        _alert("a3", json.dumps([{"$id": "2", "Type": "host", "HostName": "web07"},
                                 {"$id": "3", "Type": "file", "Name": "late.aspx", "Directory": "C:\\inetpub"}]),
               _ts(T0 + timedelta(minutes=50))),
        _alert("a3", json.dumps([{"$id": "2", "Type": "host", "HostName": "web07"},
                                 {"$id": "3", "Type": "file", "Name": "up.aspx", "Directory": "D:\\Other"}]),
               _ts(T0 + timedelta(minutes=20, microseconds=7))),
        _alert("a3", json.dumps([{"$id": "2", "Type": "host", "HostName": "web07"},
                                 {"$id": "3", "Type": "file", "Name": "outside.aspx", "Directory": "C:\\inetpub"}]),
               _ts(T0 - timedelta(seconds=1))),
        # unusable Entities, other provider, at the window's end: nothing
        _alert("a4", "[{", _ts(at)),
        _alert("a5", json.dumps({"entities": [{"Type": "host", "HostName": "web07"}]}), _ts(at)),
        _alert("a6", None, _ts(at)),
        _alert("a7", json.dumps([{"Type": "host", "HostName": "web07"}, {"Type": "file", "Name": "other.aspx"}]),
               _ts(at), provider="Detection"),
        _alert("a8", json.dumps([{"Type": "host", "HostName": "web07"}, {"Type": "file", "Name": "end.aspx"}]),
               _ts(T0 + timedelta(hours=1))),
        # at the window's start (lower-case z); percent-encoded names, one not UTF-8; not a script; a full path
        _alert("a9", json.dumps([{"Type": "host", "HostName": "web09"},
                                 {"Type": "file", "Name": "b%E2%82ad.aspx", "Directory": "C:\\inetpub"},
                                 {"Type": "file", "Name": "b%e2%82%acd.aspx", "Directory": "C:\\inetpub\\x"},
                                 {"Type": "file", "Name": "notes.aspx.txt", "Directory": "C:\\inetpub"},
                                 {"Type": "file", "Name": "C:\\inetpub\\Root.asp"}]),
               "2026-11-03T00:00:00z"),
    ]


def _iis(stem, ip="198.51.100.1", time=None, **kw):
    row = {"TimeGenerated": time or _ts(T0 - timedelta(hours=3)), "Computer": "web07.contoso.local",
           "sComputerName": "WEB07", "sSiteName": "W3SVC1", "cIP": ip, "csMethod": "GET", "csUriStem": stem,
           "csUriQuery": "-", "csUserAgent": "curl/8.4.0", "csCookie": "-", "csReferer": "-", "scStatus": "200"}
    row.update(kw)
    return {k: v for k, v in row.items() if v is not _MISSING}


_MISSING = object()


def _edge_requests():
    h = T0 - timedelta(hours=3)
    rows = [
        _iis("/uploads/up.aspx", ip=" 198.51.100.1 ", csUserAgent="-", scStatus="200"),
        _iis("/uploads/up.aspx", scStatus=" 404 ", csUriQuery="cmd=whoami", time=_ts(h + timedelta(seconds=1))),
        _iis("/uploads/up.aspx", scStatus="+201", csMethod="POST", time="2026-11-02T23:00:00.1234567Z"),
        _iis("/uploads/up.aspx", scStatus="abc", time="2026-11-02T23:00:00.9999999Z"),
        _iis("/uploads/up.aspx", scStatus=500, time="2026-11-02T10:00:00-05:00"),
        _iis("/uploads/up.aspx", scStatus="-", time="2026-11-02 09:00:00"),
        # Computer names the host when sComputerName is '-' or missing; '//' and case and a trailing space
        _iis("//Uploads//UP.aspx ", sComputerName="-", Computer="WEB07.contoso.local"),
        _iis("/uploads/up.aspx", sComputerName=_MISSING, Computer="web07"),
        _iis("/uploads/up.aspx", sSiteName=_MISSING),                  # SiteName null: a group of its own
        _iis("/uploads\\up.aspx", sSiteName="-"),
        _iis("/other/up.aspx"), _iis("/x/up.aspx"), _iis("/late.aspx"),
        _iis("/outside.aspx"), _iis("/end.aspx"), _iis("/other.aspx"),
        # web08: only first.aspx, typedref.aspx and num.php are its candidates
        *[_iis(s, sComputerName="web08.contoso.local", Computer="web08")
          for s in ("/first.aspx", "/second.aspx", "/typedref.aspx", "/a/num.php", "/typeless.aspx")],
        # web09: percent-encoded requests (one not UTF-8, in either case of hex), not a script, a full-path name
        *[_iis(s, sComputerName="WEB09", Computer="web09")
          for s in ("/b%E2%82ad.aspx", "/B%e2%82AD.aspx", "/x/b%e2%82%acd.aspx", "/x/b%E2%82%ACd.aspx",
                    "/notes.aspx.txt", "/root.asp", "/%C0%AF/root.asp", "/a%zz/root.asp", "/%F0%9F%98/root.asp")],
        # not requests: no client IP, no stem, outside the log window, unparseable time
        _iis("/uploads/up.aspx", ip="-"), _iis("/uploads/up.aspx", ip=_MISSING), _iis("-", ip="198.51.100.9"),
        _iis("/uploads/up.aspx", ip="198.51.100.2", time=_ts(T0 + timedelta(hours=1))),
        _iis("/uploads/up.aspx", ip="198.51.100.3", time=_ts(T0 - timedelta(days=7, microseconds=1))),
        _iis("/uploads/up.aspx", ip="198.51.100.4", time="2026-11-02T24:00:00Z"),
        _iis("/uploads/up.aspx", ip="198.51.100.5", time="not a time"),
        # exactly at the log window's start: in
        _iis("/uploads/up.aspx", ip="198.51.100.6", time=_ts(T0 - timedelta(days=7))),
    ]
    # more distinct values than a small cap
    rows += [_iis("/uploads/up.aspx", ip="198.51.100.7", csUserAgent=f"agent-{i}", csReferer=f"https://r{i}/",
                  csCookie=f"c={i}", csUriQuery=f"q={i}", scStatus=str(200 + i), csMethod=m)
             for i, m in enumerate(["GET", "POST", "PUT", "HEAD", "GET"])]
    return rows


def _write_export(root: Path, rows, gz_from: int | None = None, bad_lines=()):
    """rows as JSON lines in two data-export blobs: .json, and from row `gz_from` on .json.gz."""
    base = root / "WorkspaceResourceId=" / "subscriptions" / "s" / "y=2026" / "m=11" / "d=02" / "h=00"
    lines = [json.dumps(r) for r in rows]
    cut = len(lines) if gz_from is None else gz_from
    (base / "m=00").mkdir(parents=True, exist_ok=True)
    (base / "m=00" / "PT05M.json").write_text("\n".join(lines[:cut] + list(bad_lines)) + "\n")
    if cut < len(lines):
        (base / "m=05").mkdir(parents=True, exist_ok=True)
        with gzip.open(base / "m=05" / "PT05M.json.gz", "wt", encoding="utf-8") as fh:
            fh.write("\n".join(lines[cut:]) + "\n")


@pytest.fixture(scope="module")
def edge_exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("edge")
    _write_export(root / "SecurityAlert", _edge_alerts(), gz_from=5)
    _write_export(root / "W3CIISLog", _edge_requests(), gz_from=20,
                  bad_lines=['{"TimeGenerated": "2026-11-02T23:', '["W3CIISLog", 1]', "   "])
    return root / "SecurityAlert", root / "W3CIISLog"


@pytest.mark.parametrize("cap", [100, 3])
def test_duckdb_contract_query_equals_the_reference_on_hand_written_edge_cases(edge_exports, cap):
    alerts, iis = edge_exports
    expected = S.dict_rows(_reference(alerts, iis, EDGE_WINDOWS, cap))
    actual = S.dict_rows(_duckdb(alerts, iis, EDGE_WINDOWS, cap))
    assert S.compare({"reference": expected, "duckdb": actual}) == []
    # and the rules the rows exercise (so that agreeing is not agreeing on nothing)
    got = {(r[1], r[3]) for r in actual}
    assert {("web07", "/uploads/up.aspx"), ("web07", "/other/up.aspx"), ("web07", "/late.aspx"),
            ("web08", "/first.aspx"), ("web08", "/typedref.aspx"), ("web08", "/a/num.php"),
            ("web09", "/b\ufffdad.aspx"), ("web09", "/x/b\u20acd.aspx"), ("web09", "/root.asp"),
            ("web09", "/\ufffd\ufffd/root.asp"), ("web09", "/a%zz/root.asp"), ("web09", "/\ufffd/root.asp")} <= got
    assert not {f for _, f in got} & {"/second.aspx", "/typeless.aspx", "/outside.aspx", "/end.aspx",
                                      "/other.aspx", "/notes.aspx.txt"}
    by_key = {(r[0], r[1], r[2], r[3]): dict(zip(S.SUMMARY_COLUMNS, r)) for r in actual}
    up = by_key[("198.51.100.1", "web07", "W3SVC1", "/uploads/up.aspx")]
    assert up["AlertIds"] == ["a1", "a3"] and up["FirstAlertTime"] == "2026-11-03T00:05:00.000000Z"
    assert up["RequestStatusCodes"] == sorted([200, 404, 201, 500])[:cap] and up["PathMatched"] is True
    assert up["StartTime"] == "2026-11-02T09:00:00.000000Z" and up["EndTime"] == "2026-11-02T23:00:00.999999Z"
    assert by_key[("198.51.100.1", "web07", "W3SVC1", "/x/up.aspx")]["PathMatched"] is False
    assert ("198.51.100.1", "web07", None, "/uploads/up.aspx") in by_key
    assert len(by_key[("198.51.100.7", "web07", "W3SVC1", "/uploads/up.aspx")]["RequestUserAgents"]) == min(cap, 5)


# ------------------------------------------------------------------------------------ the harness at a tiny size

def test_the_scale_benchmark_runs_and_shelltrace_duckdb_and_plain_spark_agree(spark, tmp_path):
    results = tmp_path / "results"
    code = S.main(["--days", "2", "--per-day", "3000", "--workdir", str(tmp_path / "work"), "--name", "ci-small",
                   "--results-dir", str(results), "--layout", "mixed", "--gzip-share", "0.2",
                   "--malformed-lines", "6", "--no-warmup", "--reference", "--hunt-runs", "2",
                   "--set", "transform.rows_per_file=1000"], spark=spark)
    assert code == 0
    out = json.loads((results / "ci-small.json").read_text())
    agreement = out["agreement"]
    assert agreement["agree"] and agreement["first_differences"] == []
    assert agreement["compared"] == ["shelltrace", "duckdb", "plain_spark", "reference"]
    assert len(set(agreement["rows"].values())) == 1 and agreement["rows"]["shelltrace"] > 10
    planted = out["planted"]
    assert planted["planted_found"] == planted["planted_expected"] > 5 and planted["traps_matched"] == 0
    stages = out["stages"]
    for name in ("land_alerts", "land_iis", "transform", "hunt", "plain_spark"):
        assert stages[name]["wall_s"] > 0 and stages[name]["jvm_heap_peak_mb"] > 0, name
        assert stages[name]["memory_spilled_mb"] >= 0 and stages[name]["spark_stages"] > 0, name
    assert stages["duckdb"]["python_process_peak_rss_mb"] > 0
    hunt = stages["hunt"]
    assert 0 < hunt["silver_files_read"] == hunt["silver_files_read_check"] < hunt["silver_files_total"]
    assert 0 < hunt["silver_mb_read"] < hunt["silver_mb_total"]
    assert len(hunt["runs_s"]) == 2 and hunt["wall_s"] == min(hunt["runs_s"])
    assert set(out["ratios"]) == {"duckdb_vs_hunt", "duckdb_vs_shelltrace_end_to_end", "plain_spark_vs_hunt",
                                  "plain_spark_vs_shelltrace_end_to_end"}
    assert out["sizes"]["iis_rows"] == 6003 and not (ROOT / "benchmarks" / "results" / "ci-small.json").exists()
