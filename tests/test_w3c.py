"""Landing native IIS W3C extended logs (u_ex*.log) into bronze W3CIISLog: real files, layouts that change inside a
file, host and site from the path, grown files, quarantine and reconciliation, format detection by content."""
from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs.common import UserError
from jobs.generate import generate
from jobs.land import file_heads, land, looks_like_w3c
from pipelines.land import REASON_TIME_MISSING, REASON_TIME_UNPARSEABLE
from pipelines.w3c import REASON_W3C_NO_FIELDS, count_reason, java_regex, path_groups
from tests.reference import load_w3c_rows

COLS = ["_line", "TimeGenerated", "Computer", "sSiteName", "sComputerName", "sIP", "csMethod", "csUriStem",
        "csUriQuery", "sPort", "csUserName", "cIP", "csVersion", "csUserAgent", "csCookie", "csReferer", "csHost",
        "scStatus", "scSubStatus", "scWin32Status", "scBytes", "csBytes", "TimeTaken", "Type"]
COLS_DDL = ("_line long, TimeGenerated timestamp, Computer string, sSiteName string, sComputerName string, "
            "sIP string, csMethod string, csUriStem string, csUriQuery string, sPort int, csUserName string, "
            "cIP string, csVersion string, csUserAgent string, csCookie string, csReferer string, csHost string, "
            "scStatus string, scSubStatus string, scWin32Status string, scBytes long, csBytes long, "
            "TimeTaken long, Type string")
QUARANTINE_DDL = "_line long, raw string, reason string"

HEADER = ["#Software: Microsoft Internet Information Services 10.0", "#Version: 1.0", "#Date: 2026-11-01 00:00:00"]
SHORT_FIELDS = "#Fields: date time s-ip cs-method cs-uri-stem s-port c-ip sc-status"


def row(line, ts, **cols):
    """An expected bronze row in COLS order: unnamed columns are null, Type is always W3CIISLog."""
    values = {"_line": line, "TimeGenerated": datetime.fromisoformat(ts), "Type": "W3CIISLog", **cols}
    return tuple(values.get(c) for c in COLS)


def write_log(path: Path, lines, *, crlf=True, gz=False, append=False) -> Path:
    """A native log as IIS writes it (CRLF line ends by default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line + ("\r\n" if crlf else "\n") for line in lines).encode()
    if gz:
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        with open(path, "ab" if append else "wb") as fh:
            fh.write(data)
    return path


def bronze(lake):
    return lake.read("bronze/w3c_iis_log")


def quarantine(lake):
    return lake.read("quarantine/w3c_iis_log").select("_line", "raw", "reason")


# --------------------------------------------------------------------------------------------------------------------
# The real files (elastic/beats test data)
# --------------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real(spark, tmp_path_factory):
    """The three real files (not u_ex names, so host and site come from the flags), landed once for the tests below
    with --format auto: they are recognised by their directives."""
    from jobs.io import Lake
    from tests.conftest import SAMPLES

    real_lake = Lake(spark, root=str(tmp_path_factory.mktemp("real") / "lake"))
    result = land(spark, real_lake, "w3c_iis_log", str(SAMPLES / "iis"), host="iis-sample", site="Default Web Site")
    return real_lake, result


def rows_of(lake, file_name):
    return bronze(lake).where(F.col("_source_file").endswith("/" + file_name)).select(*COLS)


def test_real_logs_are_recognised_and_reconcile_per_file(spark, real):
    real_lake, result = real
    assert (result.files_landed, result.files_ignored) == (3, [])
    assertDataFrameEqual(
        real_lake.read("_state/landed_files").where("status = 'committed'")
        .select(F.regexp_extract("path", r"[^/]+$", 0).alias("file"), "format", "lines", "rows_read", "rows_landed",
                "rows_quarantined"),
        spark.createDataFrame([("test.log", "w3c", 17, 5, 3, 2), ("test-iis-7.5.log", "w3c", 8, 4, 4, 0),
                               ("test-ipv6zone.log", "w3c", 5, 1, 1, 0)],
                              "file string, format string, lines long, rows_read long, rows_landed long, "
                              "rows_quarantined long"))


def test_real_log_with_three_field_layouts_lands_each_line_with_its_own_block_layout(spark, real):
    firefox = "Mozilla/5.0+(Windows+NT+6.1;+Win64;+x64;+rv:57.0)+Gecko/20100101+Firefox/57.0"
    chrome = ("Mozilla/5.0+(Macintosh;+Intel+Mac+OS+X+10_14_0)+AppleWebKit/537.36+(KHTML,+like+Gecko)"
              "+Chrome/70.0.3538.102+Safari/537.36")
    expected = [
        # block 1 (line 4): no s-sitename -> the --site value; no byte counts
        row(5, "2018-01-01 08:09:10", Computer="iis-sample", sSiteName="Default Web Site", sIP="127.0.0.1",
            csMethod="GET", csUriStem="/", csUriQuery="q=100", sPort=80, cIP="81.2.69.143", csUserAgent=firefox,
            scStatus="200", scSubStatus="0", scWin32Status="0", TimeTaken=123),
        # block 2 (line 9): s-sitename logged, no s-ip, cookie/host/bytes
        row(10, "2018-01-01 09:10:11", Computer="iis-sample", sSiteName="W3SVC1", csMethod="GET", csUriStem="/",
            sPort=80, cIP="127.0.0.1", csUserAgent=firefox, csHost="example.com", scStatus="200", scSubStatus="0",
            scWin32Status="0", scBytes=123, csBytes=456, TimeTaken=789),
        # block 3 (line 14): every field
        row(15, "2018-01-01 10:11:12", Computer="iis-sample", sSiteName="W3SVC1", sComputerName="MACHINE-NAME",
            sIP="127.0.0.1", csMethod="GET", csUriStem="/", sPort=80, cIP="81.2.69.143", csVersion="HTTP/1.1",
            csUserAgent=chrome, csHost="example.com", scStatus="200", scSubStatus="0", scWin32Status="0",
            scBytes=123, csBytes=456, TimeTaken=789),
    ]
    assertDataFrameEqual(rows_of(real[0], "test.log"), spark.createDataFrame(expected, COLS_DDL))


def test_real_log_lines_that_do_not_fit_their_block_are_quarantined_with_line_and_reason(spark, real, samples):
    lines = (samples / "iis" / "test.log").read_text().split("\n")
    # lines 16 and 17 have 15 values (an IIS 7.5 layout) under the 22-field #Fields of line 14
    expected = [(16, lines[15], count_reason(15, 22)), (17, lines[16], count_reason(15, 22))]
    assertDataFrameEqual(quarantine(real[0]), spark.createDataFrame(expected, QUARANTINE_DDL))


def test_real_iis75_log_keeps_mangled_and_duplicate_lines_and_ipv6_clients_as_logged(spark, real):
    ua = ("Mozilla/4.0+(compatible;+MSIE+7.0;+Windows+NT+6.3;+WOW64;+Trident/7.0;+.NET4.0E;+.NET4.0C;+.NET+CLR+"
          "3.5.30729;+.NET+CLR[+2.0.50727](tel:+2050727);+.NET+CLR+3.0.30729)")
    common = dict(Computer="iis-sample", sSiteName="Default Web Site", csMethod="GET", sPort=80, scSubStatus="0",
                  scWin32Status="0")
    health = dict(common, csUriStem="/health-monitoring", scStatus="200", TimeTaken=15)
    v6 = "2001:cdba:0000:0000:0000:0000:3257:9652"
    expected = [
        # the mangled first line still has 14 values: it lands with the addresses as written
        row(5, "2018-08-28 18:24:25", **dict(common, sIP="[10.100.220.70](http://10.100.220.70)", csUriStem="/",
                                             cIP="[10.100.118.31](http://10.100.118.31)", csUserAgent=ua,
                                             scStatus="404", scSubStatus="4", scWin32Status="2", TimeTaken=792)),
        row(6, "2019-03-06 18:43:17", sIP="10.0.140.107", cIP="10.0.140.2", **health),
        row(7, "2019-03-06 18:43:17", sIP="10.0.140.107", cIP="10.0.140.2", **health),   # a duplicate line
        row(8, "2019-03-06 18:43:17", sIP=v6, cIP=v6, **health),
    ]
    assertDataFrameEqual(rows_of(real[0], "test-iis-7.5.log"), spark.createDataFrame(expected, COLS_DDL))


def test_real_log_with_ipv6_zone_index_keeps_the_zone(spark, real):
    # s-sitename is logged, so the --site value is not used
    expected = [row(5, "2018-01-01 10:11:12", Computer="iis-sample", sSiteName="W3SVC1",
                    sComputerName="MACHINE-NAME", sIP="::1%0", csMethod="GET", csUriStem="/", sPort=80, cIP="::1%0",
                    csVersion="HTTP/1.1",
                    csUserAgent="Mozilla/5.0+(Macintosh;+Intel+Mac+OS+X+10_14_0)+AppleWebKit/537.36+(KHTML,+like+"
                                "Gecko)+Chrome/70.0.3538.102+Safari/537.36",
                    csHost="example.com", scStatus="200", scSubStatus="0", scWin32Status="0", scBytes=123,
                    csBytes=456, TimeTaken=789)]
    assertDataFrameEqual(rows_of(real[0], "test-ipv6zone.log"), spark.createDataFrame(expected, COLS_DDL))


# --------------------------------------------------------------------------------------------------------------------
# The pure functions (pipelines/w3c.py)
# --------------------------------------------------------------------------------------------------------------------

PURE_LINES = [("f", 1, "#Fields: date time c-ip cs-uri-stem"),
              ("f", 2, "2026-11-01 10:00:00 1.2.3.4 /a"),
              ("f", 3, "#Fields: date time s-sitename c-ip X-Custom"),
              ("f", 4, "2026-11-01 10:00:01 W3SVC3 5.6.7.8 abc"),
              ("f", 5, "2026-11-01 10:00:02 - 5.6.7.9 -"),
              ("f", 6, "2026-11-01 10:00:03 W3SVC3 5.6.7.8"),
              ("g", 1, "2026-11-01 10:00:04 9.9.9.9 /b")]


def pure_lines(spark):
    return spark.createDataFrame([(f, n, t, 6) for f, n, t in PURE_LINES],
                                 "_source_file string, _line long, _text string, _file_lines long")


def test_w3c_fields_maps_each_data_line_by_the_fields_directive_before_it_in_its_file(spark):
    from pipelines.w3c import w3c_fields

    out = pure_lines(spark).transform(lambda d: w3c_fields(d, host="h", site="S")).orderBy("_source_file", "_line")
    common = {"Type": "W3CIISLog", "Computer": "h"}
    assert [(r["_source_file"], r["_line"], r["_fields"], r["_pre_reason"]) for r in out.collect()] == [
        ("f", 2, {"TimeGenerated": "2026-11-01 10:00:00", "cIP": "1.2.3.4", "csUriStem": "/a", "sSiteName": "S",
                  **common}, None),
        ("f", 4, {"TimeGenerated": "2026-11-01 10:00:01", "cIP": "5.6.7.8", "X-Custom": "abc", "sSiteName": "W3SVC3",
                  **common}, None),
        ("f", 5, {"TimeGenerated": "2026-11-01 10:00:02", "cIP": "5.6.7.9", "X-Custom": None, "sSiteName": "S",
                  **common}, None),
        ("f", 6, None, count_reason(4, 5)),
        ("g", 1, None, REASON_W3C_NO_FIELDS),       # the layout of file f does not carry over to file g
    ]


def test_w3c_record_builds_the_same_records_as_w3c_fields_through_a_map(spark):
    from pipelines.land import map_record, typed_record
    from pipelines.w3c import w3c_fields, w3c_record
    from schemas.sentinel import W3C_IIS_LOG

    cols = ["_source_file", "_line", *[f.name for f in W3C_IIS_LOG.fields], "_extra", "reason", "raw"]
    via_map = (pure_lines(spark).transform(lambda d: w3c_fields(d, host="h")).transform(map_record(W3C_IIS_LOG))
               .transform(typed_record(W3C_IIS_LOG)).select(*cols))
    direct = (pure_lines(spark).transform(w3c_record(W3C_IIS_LOG, host="h")).transform(typed_record(W3C_IIS_LOG))
              .select(*cols))
    assert direct.count() == 5
    assertDataFrameEqual(direct, via_map)


# --------------------------------------------------------------------------------------------------------------------
# Generated estate, path convention, host and site
# --------------------------------------------------------------------------------------------------------------------

def test_generated_multi_server_tree_lands_the_rows_the_reference_reads(spark, lake, tmp_path):
    manifest = generate(str(tmp_path / "gen"), days=1, requests_per_day=1500, iis_format="w3c", malformed_lines=6)
    result = land(spark, lake, "w3c_iis_log", manifest["iis_dir"])
    dash = lambda v: None if v is None or v == "-" else v  # noqa: E731
    ref = [(r["Computer"], dash(r["sSiteName"]), r["TimeGenerated"].replace(tzinfo=None), dash(r["cIP"]),
            dash(r["csUriStem"]), dash(r.get("csUserAgent")), dash(r["scStatus"]))
           for r in load_w3c_rows(manifest["iis_dir"])]
    assert (result.rows_landed, result.rows_quarantined) == (len(ref), 6)
    cols = ["Computer", "sSiteName", "TimeGenerated", "cIP", "csUriStem", "csUserAgent", "scStatus"]
    assertDataFrameEqual(bronze(lake).select(*cols), spark.createDataFrame(
        ref, "Computer string, sSiteName string, TimeGenerated timestamp, cIP string, csUriStem string, "
             "csUserAgent string, scStatus string"))


def test_host_and_site_come_from_the_path_else_from_the_flags(spark, lake, tmp_path):
    lines = HEADER + [SHORT_FIELDS, "2026-11-01 10:00:00 10.0.0.5 GET /a.aspx 443 198.51.100.7 200"]
    write_log(tmp_path / "in" / "web08.contoso.local" / "W3SVC2" / "u_ex261101.log", lines)
    write_log(tmp_path / "in" / "copied" / "iis.log", lines)
    land(spark, lake, "w3c_iis_log", str(tmp_path / "in"), host="fallback-host", site="Fallback Site")
    actual = bronze(lake).select(F.regexp_extract("_source_file", r"in/(\w+)", 1).alias("dir"), "Computer",
                                 "sSiteName")
    assertDataFrameEqual(actual, spark.createDataFrame(
        [("web08", "web08.contoso.local", "W3SVC2"), ("copied", "fallback-host", "Fallback Site")],
        "dir string, Computer string, sSiteName string"))


def test_a_configured_path_pattern_is_converted_to_java_and_used(spark, lake, tmp_path):
    pattern = r"/logs/(?P<site>[^/]+)/(?P<host>[^/]+)/[^/]+\.log$"
    assert java_regex(pattern) == r"/logs/(?<site>[^/]+)/(?<host>[^/]+)/[^/]+\.log$"
    assert path_groups(pattern)[1:] == (2, 1)
    write_log(tmp_path / "logs" / "Shop" / "web11" / "access.log",
              HEADER + [SHORT_FIELDS, "2026-11-01 10:00:00 10.0.0.5 GET /a.aspx 443 198.51.100.7 200"])
    land(spark, lake, "w3c_iis_log", str(tmp_path / "logs"), w3c_path_pattern=pattern)
    assertDataFrameEqual(bronze(lake).select("Computer", "sSiteName"),
                         spark.createDataFrame([("web11", "Shop")], "Computer string, sSiteName string"))


def test_a_path_pattern_without_host_or_site_group_is_refused(spark, lake, tmp_path):
    with pytest.raises(UserError, match="no named group"):
        land(spark, lake, "w3c_iis_log", str(tmp_path), w3c_path_pattern=r"/u_ex\d+\.log$")


def test_custom_fields_land_in_extra_under_their_w3c_name(spark, lake, tmp_path):
    write_log(tmp_path / "in" / "web01" / "W3SVC1" / "u_ex261101.log", HEADER + [
        "#Fields: date time c-ip cs-uri-stem sc-status X-Forwarded-For OriginalIP",
        "2026-11-01 10:00:00 10.0.0.9 /a.aspx 200 203.0.113.9,10.0.0.1 -"])
    land(spark, lake, "w3c_iis_log", str(tmp_path / "in"))
    r = bronze(lake).first()
    assert (r["cIP"], r["csUriStem"], r["scStatus"]) == ("10.0.0.9", "/a.aspx", "200")
    assert r["_extra"] == {"X-Forwarded-For": "203.0.113.9,10.0.0.1", "OriginalIP": None}


# --------------------------------------------------------------------------------------------------------------------
# Exactly once, grown files
# --------------------------------------------------------------------------------------------------------------------

def test_a_grown_log_lands_only_its_new_lines_with_the_layout_of_their_block(spark, lake, tmp_path):
    log_file = write_log(tmp_path / "in" / "web07" / "W3SVC5" / "u_ex261101.log", HEADER + [
        SHORT_FIELDS,                                                                   # line 4
        "2026-11-01 10:00:00 10.0.0.5 GET /a.aspx 443 198.51.100.1 200",                # 5
        "2026-11-01 10:00:01 10.0.0.5 GET /b.aspx 443 198.51.100.2 200"])               # 6
    first = land(spark, lake, "w3c_iis_log", str(tmp_path / "in"))
    write_log(log_file, [
        "2026-11-01 10:00:02 10.0.0.5 GET /c.aspx 443 198.51.100.3 404",                # 7: block of line 4
        *HEADER,                                                                        # 8-10: IIS restarted
        "#Fields: date time s-sitename cs-method cs-uri-stem s-port c-ip cs-host sc-status",  # 11
        "2026-11-01 11:00:00 W3SVC9 POST /d.aspx 443 198.51.100.4 shop.contoso.com 200",      # 12
        "2026-11-01 11:00:01 - GET /e.aspx 443 198.51.100.5 shop.contoso.com 200"],           # 13
        append=True)
    second = land(spark, lake, "w3c_iis_log", str(tmp_path / "in"))
    third = land(spark, lake, "w3c_iis_log", str(tmp_path / "in"))
    assert (first.rows_landed, second.files_landed, second.rows_read, second.rows_landed) == (2, 1, 3, 3)
    assert (third.files_landed, third.rows_read) == (0, 0)
    assertDataFrameEqual(
        bronze(lake).select("_line", "sIP", "csUriStem", "cIP", "sSiteName", "csHost", "scStatus", "_run_id"),
        spark.createDataFrame([
            (5, "10.0.0.5", "/a.aspx", "198.51.100.1", "W3SVC5", None, "200", first.run_id),
            (6, "10.0.0.5", "/b.aspx", "198.51.100.2", "W3SVC5", None, "200", first.run_id),
            (7, "10.0.0.5", "/c.aspx", "198.51.100.3", "W3SVC5", None, "404", second.run_id),
            (12, None, "/d.aspx", "198.51.100.4", "W3SVC9", "shop.contoso.com", "200", second.run_id),
            (13, None, "/e.aspx", "198.51.100.5", "W3SVC5", "shop.contoso.com", "200", second.run_id),
        ], "_line long, sIP string, csUriStem string, cIP string, sSiteName string, csHost string, "
           "scStatus string, _run_id string"))


def test_a_log_read_in_many_splits_keeps_its_line_numbers_and_block_layouts(spark, lake, tmp_path):
    # files are read line by line (never whole); a plain file larger than a split is read by several tasks
    lines = HEADER + [SHORT_FIELDS]
    expected = []
    for i in range(400):
        if i == 200:
            lines += ["#Fields: date time s-sitename cs-method cs-uri-stem s-port c-ip sc-status"]
        site = "W3SVC7 " if i >= 200 else "10.0.0.5 "
        lines.append(f"2026-11-01 10:{i // 60:02d}:{i % 60:02d} {site}GET /p{i}.aspx 443 198.51.100.{i % 250} 200")
        expected.append((len(lines), f"/p{i}.aspx", "W3SVC7" if i >= 200 else "W3SVC1",
                         None if i >= 200 else "10.0.0.5"))
    write_log(tmp_path / "in" / "web01" / "W3SVC1" / "u_ex261101.log", lines)
    previous = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "2048")
    try:
        result = land(spark, lake, "w3c_iis_log", str(tmp_path / "in"))
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", previous)
    assert (result.rows_read, result.rows_landed) == (400, 400)
    assertDataFrameEqual(bronze(lake).select("_line", "csUriStem", "sSiteName", "sIP"),
                         spark.createDataFrame(expected, "_line long, csUriStem string, sSiteName string, sIP string"))


def test_a_last_line_still_being_written_lands_whole_on_the_next_run(spark, lake, tmp_path):
    log_file = write_log(tmp_path / "in" / "web07" / "W3SVC5" / "u_ex261101.log", HEADER + [
        SHORT_FIELDS, "2026-11-01 10:00:00 10.0.0.5 GET /a.aspx 443 198.51.100.1 200"])
    with open(log_file, "ab") as fh:
        fh.write(b"2026-11-01 10:00:01 10.0.0.5 GET /b.aspx 443 198.51.100.2 20")      # IIS is mid-write
    first = land(spark, lake, "w3c_iis_log", str(tmp_path / "in"))
    with open(log_file, "ab") as fh:
        fh.write(b"0\r\n")
    second = land(spark, lake, "w3c_iis_log", str(tmp_path / "in"))
    assert (first.rows_read, second.rows_read, second.rows_quarantined) == (1, 1, 0)
    assertDataFrameEqual(bronze(lake).select("_line", "csUriStem", "scStatus"),
                         spark.createDataFrame([(5, "/a.aspx", "200"), (6, "/b.aspx", "200")],
                                               "_line long, csUriStem string, scStatus string"))


# --------------------------------------------------------------------------------------------------------------------
# Quarantine and reconciliation
# --------------------------------------------------------------------------------------------------------------------

def test_a_data_line_before_any_fields_directive_is_quarantined(spark, lake, tmp_path):
    lines = ["2026-11-01 09:59:59 10.0.0.5 GET /x.aspx 443 198.51.100.1 200",
             SHORT_FIELDS,
             "2026-11-01 10:00:00 10.0.0.5 GET /a.aspx 443 198.51.100.1 200"]
    write_log(tmp_path / "in" / "web01" / "W3SVC1" / "u_ex261101.log", lines)
    result = land(spark, lake, "w3c_iis_log", str(tmp_path / "in"), "w3c")   # no leading directive: forced
    assert (result.rows_read, result.rows_landed, result.rows_quarantined) == (2, 1, 1)
    assertDataFrameEqual(quarantine(lake), spark.createDataFrame([(1, lines[0], REASON_W3C_NO_FIELDS)],
                                                                 QUARANTINE_DDL))
    assert [r["_line"] for r in bronze(lake).collect()] == [3]


def test_quarantine_reconciles_data_lines_read_with_landed_plus_quarantined(spark, lake, tmp_path):
    lines = HEADER + [
        "#Fields: date time c-ip cs-uri-stem sc-status",     # 4
        "2026-11-01 10:00:00 10.0.0.1 /a.aspx 200",           # 5: lands
        "2026-11-01 10:00:01 10.0.0.2 /b.aspx",               # 6: a value short
        "2026-11-01 10:00:02 10.0.0.3 /c d.aspx 200",         # 7: an unencoded space
        "not-a-date 10:00:03 10.0.0.4 /e.aspx 200",           # 8: date does not parse
        "- - 10.0.0.5 /f.aspx 200",                           # 9: no date/time
        "#Remark: directives are not rows",                   # 10
        "",                                                   # 11: blank
        "2026-11-01 10:00:04 10.0.0.6 /g.aspx 500",           # 12: lands
    ]
    write_log(tmp_path / "in" / "web01" / "W3SVC1" / "u_ex261101.log", lines)
    result = land(spark, lake, "w3c_iis_log", str(tmp_path / "in"))
    assert (result.rows_read, result.rows_landed, result.rows_quarantined) == (6, 2, 4)
    assert bronze(lake).count() + lake.read("quarantine/w3c_iis_log").count() == result.rows_read
    assertDataFrameEqual(quarantine(lake), spark.createDataFrame([
        (6, lines[5], count_reason(4, 5)), (7, lines[6], count_reason(6, 5)),
        (8, lines[7], REASON_TIME_UNPARSEABLE), (9, lines[8], REASON_TIME_MISSING)], QUARANTINE_DDL))
    ledger = lake.read("_state/landed_files").where("status = 'committed'").first()
    assert (ledger["format"], ledger["lines"], ledger["rows_read"], ledger["rows_quarantined"]) == ("w3c", 12, 6, 4)


# --------------------------------------------------------------------------------------------------------------------
# Format detection
# --------------------------------------------------------------------------------------------------------------------

def test_auto_format_recognises_native_logs_by_content_not_by_name(spark, lake, tmp_path):
    one = "2026-11-01 10:00:00 10.0.0.5 GET /a.aspx 443 198.51.100.1 200"
    write_log(tmp_path / "in" / "web01" / "W3SVC1" / "u_ex261101.log", HEADER + [SHORT_FIELDS, one])
    write_log(tmp_path / "in" / "web01" / "W3SVC1" / "u_ex261102.log.gz", HEADER + [SHORT_FIELDS, one], gz=True)
    write_log(tmp_path / "in" / "other" / "access.log", ["#Version: 1.0", SHORT_FIELDS, one])
    app = write_log(tmp_path / "in" / "app" / "service.log", ["2026-11-01 10:00:00 INFO service started"])
    write_log(tmp_path / "in" / "export" / "PT05M.json",
              ['{"TimeGenerated": "2026-11-01T10:00:00Z", "cIP": "198.51.100.9", "csUriStem": "/j.aspx"}'])
    result = land(spark, lake, "w3c_iis_log", str(tmp_path / "in"))
    assert result.files_landed == 4 and [Path(p).name for p in result.files_ignored] == [app.name]
    assertDataFrameEqual(bronze(lake).select(F.regexp_extract("_source_file", r"[^/]+$", 0).alias("file"), "cIP"),
                         spark.createDataFrame([("u_ex261101.log", "198.51.100.1"),
                                                ("u_ex261102.log.gz", "198.51.100.1"),
                                                ("access.log", "198.51.100.1"), ("PT05M.json", "198.51.100.9")],
                                               "file string, cIP string"))


def test_file_heads_reads_the_start_of_plain_and_gzip_files_with_or_without_the_jvm(spark, tmp_path):
    plain = write_log(tmp_path / "a.log", ["\ufeff#Software: Microsoft Internet Information Services 10.0"])
    packed = write_log(tmp_path / "b.log.gz", ["#Fields: date time"], gz=True)
    other = write_log(tmp_path / "c.log", ["hello"])
    paths = [f"file:{p}" for p in (plain, packed, other)]
    for use_jvm in (True, False):
        heads = file_heads(spark, paths, use_jvm=use_jvm)
        assert [looks_like_w3c(heads[p]) for p in paths] == [True, True, False], use_jvm


def test_w3c_format_is_refused_for_security_alert(spark, lake, tmp_path):
    with pytest.raises(UserError, match="w3c_iis_log"):
        land(spark, lake, "security_alert", str(tmp_path), "w3c")


def test_a_hunt_over_native_logs_finds_the_same_attackers_as_over_the_json_export(spark, tmp_path):
    from jobs import hunt as H
    from jobs.config import load_config
    from jobs.io import Lake as _Lake
    from jobs.transform import transform
    from schemas import tables as T

    cfg = load_config()
    found = {}
    for fmt in ("jsonl", "w3c"):
        m = generate(str(tmp_path / fmt), days=2, requests_per_day=400, iis_format=fmt, seed=11)
        lake = _Lake(spark, root=str(tmp_path / f"lake-{fmt}"))
        land(spark, lake, "security_alert", m["alerts_dir"])
        land(spark, lake, "w3c_iis_log", m["iis_dir"])
        transform(spark, lake, cfg)
        (a_from, a_to), (l_from, l_to) = m["alert_window"], m["log_window"]
        result = H.hunt(spark, lake, cfg, H.resolve_windows(cfg, a_from, a_to, l_from, l_to))
        assert result.published
        found[fmt] = sorted(tuple(r) for r in lake.read(T.ATTACKER_SUMMARY.name).select(
            "AttackerIP", "HostName", "SiteName", "ShellLocation", "RequestCount", "AlertIds").collect())
    assert len(found["jsonl"]) > 5
    assert found["w3c"] == found["jsonl"]
