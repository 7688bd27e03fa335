"""Tests of the plain-Python reference (tests/reference.py) and of the export generator (jobs/generate.py).

Pure Python, no Spark: one behaviour of CONTRACT.md per test, then a hunt over generated exports that must find every
planted web shell and none of the traps."""
from __future__ import annotations

import gzip
import json
import os
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from jobs.generate import generate  # noqa: E402
from tests import reference as R  # noqa: E402

UTC = timezone.utc
T0 = datetime(2026, 11, 3, tzinfo=UTC)
WINDOWS = dict(alerts_from=T0, alerts_to=T0 + timedelta(hours=1),
               logs_from=T0 - timedelta(days=7), logs_to=T0 + timedelta(hours=1))


def ts(dt: datetime) -> str:
    """A datetime as Log Analytics writes it (7 fraction digits, Z)."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def alert(entities, *, at=T0 + timedelta(minutes=10), alert_id="a1", provider="MDATP", **extra):
    row = {"TimeGenerated": ts(at), "SystemAlertId": alert_id, "ProviderName": provider,
           "AlertName": "Possible web shell installation",
           "Entities": entities if isinstance(entities, str) else json.dumps(entities)}
    row.update(extra)
    return row


def host(name="web01", **kw):
    return {"$id": kw.pop("id", "2"), "HostName": name, "Type": "host", **kw}


def file(name="shell.aspx", directory="C:\\inetpub\\wwwroot\\uploads", **kw):
    return {"$id": kw.pop("id", "3"), "Name": name, "Directory": directory, "Type": "file", **kw}


def iis(stem="/uploads/shell.aspx", *, ip="203.0.113.10", at=T0 - timedelta(hours=2), **kw):
    row = {"TimeGenerated": ts(at), "Computer": "web01.contoso.local", "sComputerName": "web01",
           "sSiteName": "W3SVC1", "cIP": ip, "csMethod": "GET", "csUriStem": stem, "csUriQuery": "-",
           "csUserAgent": "curl/8.4.0", "csCookie": "-", "csReferer": "-", "scStatus": "200"}
    row.update(kw)
    return row


def summary(alerts, requests, **kw):
    return R.attacker_summary(alerts, requests, **{**WINDOWS, **kw})


def cands(alerts, **kw):
    return R.candidates(alerts, alerts_from=WINDOWS["alerts_from"], alerts_to=WINDOWS["alerts_to"],
                        providers=kw.get("providers", R.DEFAULT_PROVIDERS),
                        extensions=kw.get("extensions", R.DEFAULT_EXTENSIONS))


# --------------------------------------------------------------------------------------------------------------------
# Normal forms
# --------------------------------------------------------------------------------------------------------------------

def test_norm_host_fqdn_becomes_short_name():
    assert R.norm_host("web02.contoso.local") == "web02"
    assert R.norm_host("WEB04.CONTOSO.LOCAL") == "web04"


def test_norm_host_trims_and_lowercases():
    assert R.norm_host("  WEB01\t") == "web01"


def test_norm_host_empty_is_null():
    assert R.norm_host("") is None
    assert R.norm_host("   ") is None
    assert R.norm_host(".contoso.local") is None
    assert R.norm_host(None) is None


def test_empty_value_null_empty_dash_after_trim():
    for v in (None, "", "   ", "-", " - ", "\t-\n"):
        assert R.empty(v) is None
    assert R.empty("x") == "x"
    assert R.empty(" x ") == " x "          # only nulls; other values stay as logged
    assert R.empty("--") == "--"


def test_norm_path_percent_decodes_once():
    assert R.norm_path("/uploads/sh%65ll.aspx") == "/uploads/shell.aspx"
    assert R.norm_path("/a%2541.aspx") == "/a%41.aspx"


def test_norm_path_plus_stays_plus():
    assert R.norm_path("/my+shell.aspx") == "/my+shell.aspx"
    assert R.norm_path("/my%2Bshell.aspx") == "/my+shell.aspx"
    assert R.norm_path("/my%20shell.aspx") == "/my shell.aspx"


def test_norm_path_malformed_percent_kept():
    assert R.norm_path("/sh%zzell.aspx") == "/sh%zzell.aspx"
    assert R.norm_path("/x%") == "/x%"
    assert R.norm_path("/caf%e9.aspx") == "/caf\ufffd.aspx"       # not UTF-8: replacement character
    assert R.norm_path("/caf%C3%A9.aspx") == "/café.aspx"


def test_norm_path_backslash_becomes_slash():
    assert R.norm_path("/uploads\\cmd.aspx") == "/uploads/cmd.aspx"
    assert R.norm_path("/uploads%5Ccmd.aspx") == "/uploads/cmd.aspx"      # decoded first, then replaced


def test_norm_uri_collapses_slashes_trims_lowercases():
    assert R.norm_uri("//Uploads//CMD.aspx") == "/uploads/cmd.aspx"
    assert R.norm_uri("/uploads\\\\cmd.aspx") == "/uploads/cmd.aspx"
    assert R.norm_uri("/%2F%2Fuploads/cmd.aspx") == "/uploads/cmd.aspx"
    assert R.norm_uri("  /Shell.aspx  ") == "/shell.aspx"


def test_norm_uri_adds_leading_slash():
    assert R.norm_uri("uploads/x.aspx") == "/uploads/x.aspx"
    assert R.norm_uri("") == "/"


def test_norm_file_is_last_segment():
    assert R.norm_file("/a/b/Shell.ASPX") == "shell.aspx"
    assert R.norm_file("C:\\inetpub\\wwwroot\\x.aspx") == "x.aspx"
    assert R.norm_file("/uploads/") == ""
    assert R.norm_file("/uploads/sh%65ll.aspx") == "shell.aspx"


def test_script_extension_is_a_suffix_of_the_file_name():
    assert R.is_script("Shell.ASPX")
    assert R.is_script("/x/a.jsp") and R.is_script("a.shtml") and R.is_script("a.cfm")
    assert not R.is_script("notes.aspx.txt")
    assert not R.is_script("data.json")              # .js is not a suffix of .json
    assert not R.is_script("payload.ps1")
    assert not R.is_script(None)
    assert R.is_script("x.PL", (".pl",)) and not R.is_script("x.aspx", (".pl",))


def test_status_codes_are_integers():
    assert R.status_code("200") == 200
    assert R.status_code(" 404 ") == 404
    assert R.status_code(302) == 302
    assert R.status_code("abc") is None and R.status_code("2.5") is None and R.status_code(None) is None


def test_parse_time_seven_fraction_digits_truncated():
    assert R.parse_time("2026-11-01T05:35:12.1234567Z") == datetime(2026, 11, 1, 5, 35, 12, 123456, tzinfo=UTC)
    assert R.parse_time("2026-11-01T05:35:12.9999999Z") == datetime(2026, 11, 1, 5, 35, 12, 999999, tzinfo=UTC)


def test_parse_time_naive_is_utc_and_offsets_convert():
    assert R.parse_time("2026-11-01T05:35:12") == datetime(2026, 11, 1, 5, 35, 12, tzinfo=UTC)
    assert R.parse_time("2026-11-01 05:35:12.5") == datetime(2026, 11, 1, 5, 35, 12, 500000, tzinfo=UTC)
    assert R.parse_time("2026-11-01T07:35:12+02:00") == datetime(2026, 11, 1, 5, 35, 12, tzinfo=UTC)


def test_parse_time_rejects_garbage():
    for v in ("not-a-date", "", None, "2026-13-01T00:00:00Z", 12345):
        assert R.parse_time(v) is None


# --------------------------------------------------------------------------------------------------------------------
# Entities and candidates
# --------------------------------------------------------------------------------------------------------------------

def test_candidate_is_file_and_host_pair_of_one_alert():
    c = cands([alert([host(), file("Shell.ASPX")])])
    assert [(x["FileName"], x["HostName"], x["Directory"], x["SystemAlertId"]) for x in c] == \
        [("shell.aspx", "web01", "C:\\inetpub\\wwwroot\\uploads", "a1")]
    assert c[0]["TimeGenerated"] == T0 + timedelta(minutes=10)


def test_ref_resolves_file_only_nested_in_a_process():
    image = file("wso.aspx", "C:\\inetpub\\wwwroot\\images", id="4")
    ents = [host(), {"$id": "3", "ProcessId": "4120", "ImageFile": image, "Host": {"$ref": "2"}, "Type": "process"},
            {"$ref": "4"}]
    assert [(x["FileName"], x["HostName"]) for x in cands([alert(ents)])] == [("wso.aspx", "web01")]


def test_ref_resolves_object_inside_an_array():
    ents = [host(), {"$id": "3", "Type": "malware", "Files": [file("edit.aspx", id="4")]}, {"$ref": "4"}]
    assert [x["FileName"] for x in cands([alert(ents)])] == ["edit.aspx"]


def test_ref_resolves_host_reference_too():
    ents = [{"$id": "2", "Type": "process", "Host": host("web03", id="3")}, {"$ref": "3"}, file(id="4")]
    assert [x["HostName"] for x in cands([alert(ents)])] == ["web03"]


def test_nested_only_entity_without_top_level_ref_is_not_seen():
    ents = [host(), {"$id": "3", "Type": "process", "ImageFile": file("wso.aspx", id="4")}]
    assert cands([alert(ents)]) == []


def test_element_with_ref_and_type_is_not_replaced():
    ents = [host(), file("a.aspx", id="3"), {"$ref": "3", "Type": "url", "Url": "http://x"}]
    assert [x["FileName"] for x in cands([alert(ents)])] == ["a.aspx"]


def test_unresolvable_ref_is_dropped_and_counted():
    ents = [host(), file("edit.aspx"), {"$ref": "42"}]
    c, findings = R.candidates_with_findings([alert(ents)], alerts_from=WINDOWS["alerts_from"],
                                             alerts_to=WINDOWS["alerts_to"])
    assert [x["FileName"] for x in c] == ["edit.aspx"]
    assert findings == [{"SystemAlertId": "a1", "reason": R.REASON_UNRESOLVED_REF, "count": 1}]


def test_ref_ids_are_scoped_to_one_alert():
    a = alert([host("web01"), file("up.aspx", id="8")], alert_id="a")
    b = alert([host("web05"), {"$ref": "8"}], alert_id="b")
    assert [(x["FileName"], x["HostName"]) for x in cands([a, b])] == [("up.aspx", "web01")]


def test_entities_not_json_yields_nothing_and_a_finding():
    c, findings = R.candidates_with_findings([alert('[{"$id":"2","HostName":"web03","Type":"host"},{"Name":"b.as')],
                                             alerts_from=WINDOWS["alerts_from"], alerts_to=WINDOWS["alerts_to"])
    assert c == [] and findings == [{"SystemAlertId": "a1", "reason": R.REASON_NOT_JSON, "count": 1}]


def test_entities_object_not_array_yields_nothing_and_a_finding():
    c, findings = R.candidates_with_findings([alert({"entities": [host(), file()]})],
                                             alerts_from=WINDOWS["alerts_from"], alerts_to=WINDOWS["alerts_to"])
    assert c == [] and findings[0]["reason"] == R.REASON_NOT_ARRAY


def test_entities_already_parsed_array_accepted():
    row = alert([])
    row["Entities"] = [host(), file()]
    assert len(cands([row])) == 1


def test_type_compared_ignoring_case():
    assert len(cands([alert([host(Type="HOST"), file(Type="File")])])) == 1


def test_host_falls_back_to_netbios_name():
    ents = [{"$id": "2", "NetBiosName": "WEB05", "Type": "host"}, file()]
    assert [x["HostName"] for x in cands([alert(ents)])] == ["web05"]
    ents = [{"$id": "2", "HostName": "", "NetBiosName": "WEB05.contoso.local", "Type": "host"}, file()]
    assert [x["HostName"] for x in cands([alert(ents)])] == ["web05"]


def test_host_without_names_gives_no_candidate():
    assert cands([alert([{"$id": "2", "FQDN": "web01.contoso.local", "Type": "host"}, file()])]) == []


def test_not_a_script_file_gives_no_candidate():
    assert cands([alert([host(), file("notes.aspx.txt")])]) == []


def test_only_configured_providers():
    assert cands([alert([host(), file()], provider="Detection")]) == []
    assert len(cands([alert([host(), file()], provider="Detection")], providers=("MDATP", "Detection"))) == 1


def test_alert_window_is_half_open():
    start, end = WINDOWS["alerts_from"], WINDOWS["alerts_to"]
    rows = [alert([host(), file("a.aspx")], at=start, alert_id="at-start"),
            alert([host(), file("b.aspx")], at=end, alert_id="at-end"),
            alert([host(), file("c.aspx")], at=start - timedelta(microseconds=1), alert_id="before")]
    assert [x["SystemAlertId"] for x in cands(rows)] == ["at-start"]


def test_alert_landed_twice_is_one_alert_with_its_first_time():
    first = T0 + timedelta(minutes=5)
    rows = [alert([host(), file()], at=first + timedelta(minutes=47), Status="InProgress"),
            alert([host(), file()], at=first, Status="New")]
    c = cands(rows)
    assert len(c) == 1 and c[0]["TimeGenerated"] == first
    out = summary(rows, [iis()])
    assert out[0]["AlertIds"] == ["a1"] and out[0]["FirstAlertTime"] == first


def test_alert_landing_outside_the_window_does_not_set_its_time():
    inside = T0 + timedelta(minutes=30)
    rows = [alert([host(), file()], at=T0 - timedelta(minutes=5)), alert([host(), file()], at=inside)]
    assert [x["TimeGenerated"] for x in cands(rows)] == [inside]


# --------------------------------------------------------------------------------------------------------------------
# Requests and the summary
# --------------------------------------------------------------------------------------------------------------------

SHELL_ALERT = [alert([host(), file("Shell.ASPX")])]


def test_summary_has_exactly_the_contract_columns():
    out = summary(SHELL_ALERT, [iis()])
    assert len(out) == 1 and tuple(out[0]) == R.SUMMARY_COLUMNS


def test_host_case_and_fqdn_in_iis_match_the_alert_host():
    out = summary(SHELL_ALERT, [iis(sComputerName="WEB01"), iis(sComputerName="web01.contoso.local", ip="x")])
    assert [(r["AttackerIP"], r["HostName"], r["RequestCount"]) for r in out] == \
        [("203.0.113.10", "web01", 1), ("x", "web01", 1)]


def test_computer_used_when_scomputername_is_empty():
    rows = [iis(sComputerName="-", Computer="WEB01.CONTOSO.LOCAL"), iis(sComputerName=" "), iis(sComputerName=None)]
    rows.append({k: v for k, v in iis().items() if k != "sComputerName"})
    assert [r["RequestCount"] for r in summary(SHELL_ALERT, rows)] == [4]


def test_request_on_another_host_does_not_match():
    assert summary(SHELL_ALERT, [iis(sComputerName="web02", Computer="web02")]) == []


def test_encoded_backslash_and_double_slash_stems_meet_their_shell():
    stems = ["/uploads/sh%65ll.aspx", "/uploads\\shell.aspx", "//uploads//Shell.aspx", "/uploads/shell.aspx"]
    out = summary(SHELL_ALERT, [iis(s) for s in stems])
    assert len(out) == 1
    r = out[0]
    assert (r["ShellLocation"], r["FileName"], r["RequestCount"]) == ("/uploads/shell.aspx", "shell.aspx", 4)
    assert r["RawUriStems"] == sorted(stems)


def test_same_file_name_in_another_directory_matches_without_path_match():
    out = summary(SHELL_ALERT, [iis("/docs/shell.aspx")])
    assert [(r["ShellLocation"], r["PathMatched"]) for r in out] == [("/docs/shell.aspx", False)]


def test_path_matched_in_a_subdirectory():
    a = [alert([host(), file("x.aspx", "C:\\inetpub\\wwwroot\\Uploads\\Img\\")])]
    out = summary(a, [iis("/uploads/img/x.aspx"), iis("/img/x.aspx", ip="b"), iis("/other/x.aspx", ip="c")])
    assert [(r["ShellLocation"], r["PathMatched"]) for r in out] == \
        [("/uploads/img/x.aspx", True), ("/img/x.aspx", True), ("/other/x.aspx", False)]


def test_path_matched_at_the_site_root():
    a = [alert([host(), file("x.aspx", "C:\\inetpub\\wwwroot")])]
    assert summary(a, [iis("/x.aspx")])[0]["PathMatched"] is True


def test_path_matched_false_without_directory():
    a = [alert([host(), {"$id": "3", "Name": "x.aspx", "Type": "file"}])]
    out = summary(a, [iis("/x.aspx")])
    assert out[0]["PathMatched"] is False


def test_path_matched_when_any_candidate_directory_matches():
    a = [alert([host(), file("x.aspx", "D:\\sites\\a")], alert_id="a1"),
         alert([host(), file("x.aspx", "D:\\sites\\b\\uploads")], alert_id="a2")]
    r = summary(a, [iis("/uploads/x.aspx")])[0]
    assert r["PathMatched"] is True and r["AlertIds"] == ["a1", "a2"]


def test_first_alert_time_is_the_earliest_candidate_alert():
    early, late = T0 + timedelta(minutes=1), T0 + timedelta(minutes=50)
    a = [alert([host(), file()], at=late, alert_id="b"), alert([host(), file()], at=early, alert_id="a")]
    r = summary(a, [iis()])[0]
    assert r["FirstAlertTime"] == early and r["AlertIds"] == ["a", "b"]


def test_log_window_is_half_open():
    start, end = WINDOWS["logs_from"], WINDOWS["logs_to"]
    rows = [iis(at=start, ip="at-start"), iis(at=end, ip="at-end"), iis(at=start - timedelta(microseconds=1),
                                                                         ip="before")]
    assert [r["AttackerIP"] for r in summary(SHELL_ALERT, rows)] == ["at-start"]


def test_requests_without_client_ip_or_stem_are_ignored():
    rows = [iis(ip="-"), iis(ip=""), iis(ip=" - "), iis(ip=None), iis(csUriStem="-"), iis(csUriStem=None)]
    rows.append({k: v for k, v in iis().items() if k != "cIP"})
    assert summary(SHELL_ALERT, rows) == []


def test_attacker_ip_is_trimmed():
    out = summary(SHELL_ALERT, [iis(ip=" 203.0.113.10 "), iis(ip="203.0.113.10")])
    assert [(r["AttackerIP"], r["RequestCount"], r["IPCustomEntity"]) for r in out] == [("203.0.113.10", 2,
                                                                                         "203.0.113.10")]


def test_groups_split_by_site():
    out = summary(SHELL_ALERT, [iis(), iis(sSiteName="W3SVC2")])
    assert [r["SiteName"] for r in out] == ["W3SVC1", "W3SVC2"]


def test_sets_are_sorted_distinct_and_non_null():
    rows = [iis(csUserAgent="b", csMethod="POST", scStatus="500", csUriQuery="cmd=dir"),
            iis(csUserAgent="a", csMethod="GET", scStatus="200", csUriQuery="-"),
            iis(csUserAgent="-", csMethod="GET", scStatus="abc", csCookie="s=1", csReferer="https://x/"),
            iis(csUserAgent="b", csMethod="GET", scStatus="0200")]
    r = summary(SHELL_ALERT, rows)[0]
    assert r["RequestUserAgents"] == ["a", "b"]
    assert r["RequestMethods"] == ["GET", "POST"]
    assert r["RequestStatusCodes"] == [200, 500]
    assert r["RequestCookies"] == ["s=1"] and r["RequestReferers"] == ["https://x/"]
    assert r["RequestQueryStrings"] == ["cmd=dir"]


def test_status_codes_sort_as_integers():
    rows = [iis(scStatus=s) for s in ("404", "1000", "200")]
    assert summary(SHELL_ALERT, rows)[0]["RequestStatusCodes"] == [200, 404, 1000]


def test_sets_truncated_at_max_set_size_first_in_sort_order():
    rows = [iis(csUserAgent=f"ua{i}", csUriQuery=f"q{i}", scStatus=str(200 + i)) for i in (5, 3, 9, 1, 7)]
    r = summary(SHELL_ALERT, rows, max_set_size=3)[0]
    assert r["RequestUserAgents"] == ["ua1", "ua3", "ua5"]
    assert r["RequestQueryStrings"] == ["q1", "q3", "q5"]
    assert r["RequestStatusCodes"] == [201, 203, 205]
    assert r["RequestCount"] == 5


def test_times_are_min_max_and_entity_columns_mirror_them():
    t1, t2 = T0 - timedelta(hours=3), T0 - timedelta(minutes=1)
    r = summary(SHELL_ALERT, [iis(at=t2), iis(at=t1)])[0]
    assert (r["StartTime"], r["EndTime"], r["timestamp"]) == (t1, t2, t1)
    assert (r["IPCustomEntity"], r["HostCustomEntity"]) == (r["AttackerIP"], r["HostName"])


# --------------------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------------------

def test_load_export_rows_skips_bad_lines_and_reads_gzip(tmp_path):
    good = json.dumps(iis())
    lines = [good, "", '{"TimeGenerated": "2026-11-0', "[1, 2]", json.dumps({"cIP": "x"}),
             json.dumps({"TimeGenerated": "not-a-date"}), '"text"', good]
    d = tmp_path / "y=2026" / "m=11" / "d=01" / "h=00" / "m=05"
    d.mkdir(parents=True)
    (d / "PT05M.json").write_text("\n".join(lines) + "\n")
    with gzip.open(d.parent / "PT1H.json.gz", "wt") as fh:
        fh.write(good + "\r\n")
    (d / "notes.txt").write_text(good)
    assert len(R.load_export_rows(str(tmp_path))) == 3


def test_load_w3c_rows_follows_fields_blocks(tmp_path):
    d = tmp_path / "WEB01.contoso.local" / "W3SVC2"
    d.mkdir(parents=True)
    (d / "u_ex261101.log").write_text("\r\n".join([
        "#Software: Microsoft Internet Information Services 10.0", "#Fields: date time c-ip cs-uri-stem",
        "2026-11-01 00:00:01 203.0.113.10 /a.aspx", "2026-11-01 00:00:02 203.0.113.10",
        "#Fields: date time s-computername c-ip cs-uri-stem",
        "2026-11-01 12:00:00 web09 203.0.113.11 /b.aspx", "not-a-date 12:00:00 web09 203.0.113.11 /b.aspx"]) + "\r\n")
    rows = R.load_w3c_rows(str(tmp_path))
    assert [(r["Computer"], r["sSiteName"], r.get("sComputerName"), r["csUriStem"]) for r in rows] == [
        ("WEB01.contoso.local", "W3SVC2", None, "/a.aspx"), ("WEB01.contoso.local", "W3SVC2", "web09", "/b.aspx")]


# --------------------------------------------------------------------------------------------------------------------
# The generator, hunted by the reference
# --------------------------------------------------------------------------------------------------------------------

def _hunt(manifest, iis_rows=None):
    alerts = R.load_export_rows(manifest["alerts_dir"])
    if iis_rows is None:
        iis_rows = (R.load_w3c_rows if manifest["iis_format"] == "w3c" else R.load_export_rows)(manifest["iis_dir"])
    p = R.parse_time
    return R.attacker_summary(alerts, iis_rows,
                              alerts_from=p(manifest["alert_window"][0]), alerts_to=p(manifest["alert_window"][1]),
                              logs_from=p(manifest["log_window"][0]), logs_to=p(manifest["log_window"][1]))


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("exports")
    m = generate(str(out / "jsonl"), days=2, requests_per_day=300, layout="mixed", gzip_share=0.3,
                 malformed_lines=12)
    return m, _hunt(m)


def test_generated_hunt_finds_every_planted_shell(generated):
    m, rows = generated
    by_key = {(r["AttackerIP"], r["HostName"], r["SiteName"], r["ShellLocation"]): r for r in rows}
    matches = [e for e in m["planted"] if e["expect"] == "match"]
    assert len(matches) >= 10
    for e in matches:
        for ip in e["attacker_ips"]:
            r = by_key.get((ip, e["host"], e["site"], e["shell_location"]))
            assert r is not None, (e["trap"], ip)
            assert r["PathMatched"] is e["path_matched"], e["trap"]
            assert r["AlertIds"] == e["alert_ids"], e["trap"]
            assert r["RequestCount"] == e["request_counts"][ip], e["trap"]
            assert r["FirstAlertTime"] == R.parse_time(e["first_alert_time"]), e["trap"]
            assert set(r["RawUriStems"]) <= set(e["raw_uri_stems"]), e["trap"]
    expected = {(ip, e["host"], e["site"], e["shell_location"]) for e in matches for ip in e["attacker_ips"]}
    assert set(by_key) == expected          # benign traffic never matches anything else


def test_generated_hunt_finds_none_of_the_traps(generated):
    m, rows = generated
    traps = [e for e in m["planted"] if e["expect"] == "none"]
    assert {"not_a_script", "other_provider", "alert_before_window", "alert_at_window_end",
            "requests_outside_log_window", "empty_cip", "entities_not_json", "entities_object",
            "same_name_other_host", "ref_scope_per_alert", "malformed_rows"} <= {e["trap"] for e in traps}
    matched_files = {(e["host"], e["file_name"]) for e in m["planted"] if e["expect"] == "match"}
    for e in traps:
        ips = {ip.strip() if ip else None for ip in e["attacker_ips"]}
        assert not [r for r in rows if r["AttackerIP"] in ips or r["AttackerIP"] in ("", "-")], e["trap"]
        if (e["host"], e["file_name"]) not in matched_files:
            assert not [r for r in rows if (r["HostName"], r["FileName"]) == (e["host"], e["file_name"])], e["trap"]


def test_generated_export_layout_and_formats(generated):
    m, _ = generated
    blob = re.compile(r"/WorkspaceResourceId=/subscriptions/[0-9a-f-]{36}/resourcegroups/[^/]+/providers/"
                      r"microsoft\.operationalinsights/workspaces/[^/]+/y=\d{4}/m=\d{2}/d=\d{2}/h=\d{2}/"
                      r"m=(\d{2})/(PT05M|PT1H)\.json(\.gz)?$")
    kinds, gz = set(), 0
    for root in (m["alerts_dir"], m["iis_dir"]):
        for dirpath, _, names in os.walk(root):
            for n in names:
                mm = blob.search(os.path.join(dirpath, n).replace(os.sep, "/"))
                assert mm, os.path.join(dirpath, n)
                kinds.add(mm.group(2))
                assert mm.group(2) == "PT05M" or mm.group(1) == "00"
                gz += bool(mm.group(3))
    assert kinds == {"PT05M", "PT1H"} and gz > 0
    rows = R.load_export_rows(m["iis_dir"])
    assert len(rows) == m["counts"]["iis_rows"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", r["TimeGenerated"]) for r in rows)
    assert all(isinstance(r["scStatus"], str) and isinstance(r["sPort"], int) for r in rows)
    alerts = R.load_export_rows(m["alerts_dir"])
    assert len(alerts) == m["counts"]["alert_rows"]
    assert all(isinstance(a["Entities"], str) for a in alerts)


def test_generated_w3c_logs_give_the_same_attackers(generated, tmp_path):
    m, rows = generated
    w = generate(str(tmp_path / "w3c"), days=2, requests_per_day=300, iis_format="w3c", malformed_lines=12)
    names = {n for _, _, files in os.walk(w["iis_dir"]) for n in files}
    assert names and all(re.fullmatch(r"u_ex\d{6}\.log", n) for n in names)
    rows_w3c = _hunt(w)

    def keyed(rs):
        return {(r["AttackerIP"], r["HostName"], r["SiteName"], r["ShellLocation"]): r["RequestCount"] for r in rs}
    assert keyed(rows_w3c) == keyed(rows)


def test_generate_is_deterministic(tmp_path):
    def snapshot(d):
        out = {}
        for dirpath, _, names in os.walk(d):
            for n in names:
                p = os.path.join(dirpath, n)
                if n != "manifest.json":
                    out[os.path.relpath(p, d)] = Path(p).read_bytes()
        return out
    a = generate(str(tmp_path / "a"), days=1, requests_per_day=200, layout="PT1H")
    b = generate(str(tmp_path / "b"), days=1, requests_per_day=200, layout="PT1H")
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    assert a["planted"] == b["planted"]
    generate(str(tmp_path / "c"), days=1, requests_per_day=200, layout="PT1H", seed=8)
    assert snapshot(tmp_path / "a") != snapshot(tmp_path / "c")


# --------------------------------------------------------------------------------------------------------------------
# Real third-party samples (../shared/samples/real, see its SOURCES.md)
# --------------------------------------------------------------------------------------------------------------------

from tests.conftest import SAMPLES as REAL  # noqa: E402 - one place knows where ../shared is


def test_real_alert_sample_entities_resolve_as_documented():
    import csv
    from collections import Counter

    with open(REAL / "alertlist.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    types, reasons = Counter(), Counter()
    for row in rows:
        entities, unresolved, reason = R.parse_entities(row["Entities"])
        reasons[reason] += 1
        assert unresolved == 0
        types.update(e.get("Type") for e in entities)
    assert len(rows) == 189 and reasons == {None: 176, R.REASON_NOT_JSON: 13}     # 13 empty Entities
    assert types == {"file": 272, "process": 272, "account": 205, "host": 176, "host-logon-session": 137,
                     "ip": 26, "registry-value": 10, "registry-key": 5}
    everything = R.candidates(rows, alerts_from=datetime(2019, 1, 1, tzinfo=UTC),
                              alerts_to=datetime(2020, 1, 1, tzinfo=UTC),
                              providers=("Detection", "CustomAlertRule", "InternalDemo"))
    assert everything == []          # no web-script file names in this sample


def test_real_iis_sample_blocks_and_misfit_lines(tmp_path):
    d = tmp_path / "iis01" / "W3SVC1"
    d.mkdir(parents=True)
    (d / "u_ex180101.log").write_bytes((REAL / "iis" / "test.log").read_bytes())
    rows = R.load_w3c_rows(str(tmp_path))
    # three #Fields blocks with one line each; the last two lines have 15 values for 22 fields
    assert [(r["TimeGenerated"].hour, r["cIP"], r.get("sComputerName")) for r in rows] == [
        (8, "81.2.69.143", None), (9, "127.0.0.1", None), (10, "81.2.69.143", "MACHINE-NAME")]
