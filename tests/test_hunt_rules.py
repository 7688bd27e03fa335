"""CONTRACT.md rules for candidates, requests and the attacker summary, on in-memory frames through the real
pipelines. The lake, publishing and the comparison with the reference implementation are in test_hunt_lake.py."""
from __future__ import annotations

import json

from pyspark.testing import assertDataFrameEqual

from pipelines.entities import entity_findings
from schemas.sentinel import SECURITY_ALERT
from tests.helpers import alert, candidates, frame, keys, request, shell_entities, summary, ts

A_TIME = "2026-11-02T10:00:00Z"
R_TIME = "2026-11-01T12:00:00Z"


def cand_tuples(df):
    return sorted((r.FileName, r.HostName, r.SystemAlertId) for r in df.collect())


# ----------------------------------------------------------------------------------------------- candidates

def test_entities_that_are_not_json_or_not_an_array_yield_nothing_and_are_findings(spark):
    alerts = [alert("bad1", A_TIME, "{not json"), alert("bad2", A_TIME, json.dumps({"Type": "file"})),
              alert("ok", A_TIME, shell_entities())]
    findings = frame(spark, alerts, SECURITY_ALERT).transform(entity_findings()).select("SystemAlertId", "Reason")
    assertDataFrameEqual(findings, spark.createDataFrame(
        [("bad1", "Entities is not JSON"), ("bad2", "Entities is not a JSON array")], "SystemAlertId string, Reason string"))
    assert cand_tuples(candidates(spark, alerts)) == [("shell.aspx", "web01", "ok")]


def test_a_top_level_ref_is_replaced_by_the_object_indexed_anywhere_in_the_tree(spark):
    ents = [{"$id": "2", "Type": "host", "HostName": "web01"},
            {"$id": "3", "Type": "process", "ImageFile": {"$id": "4", "Type": "file", "Name": "wso.aspx",
                                                          "Directory": "C:\\inetpub"}, "Host": {"$ref": "2"}},
            {"$ref": "4"}]
    assert cand_tuples(candidates(spark, [alert("a1", A_TIME, ents)])) == [("wso.aspx", "web01", "a1")]


def test_a_ref_into_an_array_inside_an_entity_is_resolved(spark):
    ents = [{"$id": "2", "Type": "host", "HostName": "web04"},
            {"$id": "3", "Type": "malware", "Files": [{"$id": "5", "Type": "file", "Name": "edit.aspx"}]},
            {"$ref": "5"}]
    assert cand_tuples(candidates(spark, [alert("a1", A_TIME, ents)])) == [("edit.aspx", "web04", "a1")]


def test_an_unresolvable_ref_is_dropped_and_recorded(spark):
    alerts = [alert("a1", A_TIME, shell_entities() + [{"$ref": "42"}])]
    assert cand_tuples(candidates(spark, alerts)) == [("shell.aspx", "web01", "a1")]
    findings = frame(spark, alerts, SECURITY_ALERT).transform(entity_findings()).select("Reason", "Detail")
    assertDataFrameEqual(findings, spark.createDataFrame([("unresolvable $ref", '{"$ref":"42"}')],
                                                         "Reason string, Detail string"))


def test_ref_ids_are_scoped_to_their_alert(spark):
    other = [{"$id": "2", "Type": "host", "HostName": "web05"}, {"$ref": "3"}]
    assert cand_tuples(candidates(spark, [alert("a1", A_TIME, shell_entities()), alert("a2", A_TIME, other)])) == \
        [("shell.aspx", "web01", "a1")]


def test_entity_types_match_ignoring_case(spark):
    ents = [{"$id": "2", "Type": "Host", "HostName": "web01"}, {"$id": "3", "Type": "FILE", "Name": "a.aspx"}]
    assert cand_tuples(candidates(spark, [alert("a1", A_TIME, ents)])) == [("a.aspx", "web01", "a1")]


def test_host_name_falls_back_to_netbios_name_and_is_normalised(spark):
    alerts = [alert("a1", A_TIME, shell_entities(host=None, netbios="WEB05.corp")),
              alert("a2", A_TIME, shell_entities(host=" WEB06.contoso.local "))]
    assert cand_tuples(candidates(spark, alerts)) == [("shell.aspx", "web05", "a1"), ("shell.aspx", "web06", "a2")]


def test_a_file_that_is_not_a_script_is_no_candidate_even_if_the_name_contains_one(spark):
    alerts = [alert("a1", A_TIME, shell_entities(name="notes.aspx.txt")), alert("a2", A_TIME, shell_entities("x.exe"))]
    assert cand_tuples(candidates(spark, alerts)) == []


def test_candidates_pair_files_and_hosts_of_the_same_alert_only(spark):
    a1 = [{"$id": "2", "Type": "file", "Name": "a.aspx"}]
    a2 = [{"$id": "2", "Type": "host", "HostName": "web01"}]
    assert cand_tuples(candidates(spark, [alert("a1", A_TIME, a1), alert("a2", A_TIME, a2)])) == []


def test_only_configured_providers_give_candidates(spark):
    alerts = [alert("a1", A_TIME, shell_entities(), provider="Detection"), alert("a2", A_TIME, shell_entities())]
    assert cand_tuples(candidates(spark, alerts)) == [("shell.aspx", "web01", "a2")]
    assert cand_tuples(candidates(spark, alerts, providers=("Detection",))) == [("shell.aspx", "web01", "a1")]


def test_an_alert_landed_several_times_is_one_alert_with_its_earliest_time_in_the_window(spark):
    alerts = [alert("a1", "2026-11-02T10:00:00Z", shell_entities(), Status="New"),
              alert("a1", "2026-11-02T10:47:00Z", shell_entities(), Status="InProgress"),
              alert("a1", "2026-11-02T10:00:00Z", shell_entities(), Status="New")]
    out = summary(spark, alerts, [request(R_TIME)])
    assert [(r.AlertIds, r.FirstAlertTime) for r in out.collect()] == [(["a1"], ts("2026-11-02T10:00:00Z"))]


def test_alert_window_is_half_open(spark):
    alerts = [alert("at_start", "2026-11-02T00:00:00Z", shell_entities()),
              alert("at_end", "2026-11-03T00:00:00Z", shell_entities(name="b.aspx")),
              alert("before", "2026-11-01T23:59:59Z", shell_entities(name="c.aspx"))]
    out = summary(spark, alerts, [request(R_TIME, "/shell.aspx"), request(R_TIME, "/b.aspx"),
                                  request(R_TIME, "/c.aspx")])
    assert [r.AlertIds for r in out.collect()] == [["at_start"]]


# ------------------------------------------------------------------------------------------------- requests

def test_log_window_is_half_open(spark):
    reqs = [request("2026-11-01T00:00:00Z", ip="1.1.1.1"), request("2026-11-03T00:00:00Z", ip="2.2.2.2"),
            request("2026-10-31T23:59:59Z", ip="3.3.3.3")]
    out = summary(spark, [alert("a1", A_TIME, shell_entities())], reqs)
    assert keys(out) == [("1.1.1.1", "web01", "W3SVC1", "/shell.aspx")]


def test_requests_without_cip_or_uri_stem_are_ignored(spark):
    reqs = [request(R_TIME, ip="-"), request(R_TIME, ip="  "), request(R_TIME, ip=None),
            request(R_TIME, stem=None), request(R_TIME, stem="-"), request(R_TIME, ip="9.9.9.9")]
    out = summary(spark, [alert("a1", A_TIME, shell_entities())], reqs)
    assert [(r.AttackerIP, r.RequestCount) for r in out.collect()] == [("9.9.9.9", 1)]


def test_host_falls_back_to_computer_when_scomputername_is_empty(spark):
    reqs = [request(R_TIME, host="-", computer="WEB01.CONTOSO.LOCAL", ip="1.1.1.1"),
            request(R_TIME, host="", computer="web01", ip="2.2.2.2"),
            request(R_TIME, host=None, computer="web02", ip="3.3.3.3")]
    out = summary(spark, [alert("a1", A_TIME, shell_entities())], reqs)
    assert keys(out) == [("1.1.1.1", "web01", "W3SVC1", "/shell.aspx"), ("2.2.2.2", "web01", "W3SVC1", "/shell.aspx")]


def test_a_request_for_the_same_file_on_another_host_does_not_match(spark):
    out = summary(spark, [alert("a1", A_TIME, shell_entities())], [request(R_TIME, host="web02")])
    assert keys(out) == []


# ------------------------------------------------------------------------------------ what the KQL misses

def test_kql_miss_host_case(spark):
    out = summary(spark, [alert("a1", A_TIME, shell_entities(host="web01"))], [request(R_TIME, host="WEB01")])
    assert keys(out) == [("203.0.113.5", "web01", "W3SVC1", "/shell.aspx")]


def test_kql_miss_file_name_case(spark):
    out = summary(spark, [alert("a1", A_TIME, shell_entities(name="Shell.ASPX"))], [request(R_TIME, "/shell.aspx")])
    assert keys(out) == [("203.0.113.5", "web01", "W3SVC1", "/shell.aspx")]


def test_kql_miss_fqdn_host(spark):
    out = summary(spark, [alert("a1", A_TIME, shell_entities(host="web02"))],
                  [request(R_TIME, host="web02.contoso.local")])
    assert keys(out) == [("203.0.113.5", "web02", "W3SVC1", "/shell.aspx")]


def test_kql_miss_ref_entities(spark):
    ents = [{"$id": "2", "Type": "host", "HostName": "web01"},
            {"$id": "3", "Type": "process", "ImageFile": {"$id": "4", "Type": "file", "Name": "shell.aspx"}},
            {"$ref": "4"}]
    assert keys(summary(spark, [alert("a1", A_TIME, ents)], [request(R_TIME)])) == \
        [("203.0.113.5", "web01", "W3SVC1", "/shell.aspx")]


def test_kql_miss_percent_encoding(spark):
    out = summary(spark, [alert("a1", A_TIME, shell_entities())], [request(R_TIME, "/sh%65ll.aspx")])
    assert [(r.ShellLocation, r.RawUriStems) for r in out.collect()] == [("/shell.aspx", ["/sh%65ll.aspx"])]


def test_kql_miss_has_any_on_a_longer_name(spark):
    out = summary(spark, [alert("a1", A_TIME, shell_entities(name="notes.aspx.txt"))],
                  [request(R_TIME, "/notes.aspx.txt")])
    assert keys(out) == []


# -------------------------------------------------------------------------------------------------- summary

def test_summary_groups_by_attacker_host_site_and_location(spark):
    reqs = [request(R_TIME, "/shell.aspx", sSiteName="W3SVC1"), request(R_TIME, "/shell.aspx", sSiteName="W3SVC2"),
            request(R_TIME, "/up/shell.aspx"), request(R_TIME, "//Shell.aspx"), request(R_TIME, ip=" 203.0.113.5 ")]
    out = summary(spark, [alert("a1", A_TIME, shell_entities())], reqs)
    assertDataFrameEqual(out.select("AttackerIP", "SiteName", "ShellLocation", "FileName", "RequestCount"),
                         spark.createDataFrame([("203.0.113.5", "W3SVC1", "/shell.aspx", "shell.aspx", 3),
                                                ("203.0.113.5", "W3SVC2", "/shell.aspx", "shell.aspx", 1),
                                                ("203.0.113.5", "W3SVC1", "/up/shell.aspx", "shell.aspx", 1)],
                                               "AttackerIP string, SiteName string, ShellLocation string, "
                                               "FileName string, RequestCount long"))


def test_summary_sets_are_sorted_distinct_non_null_and_status_codes_are_integers(spark):
    reqs = [request("2026-11-01T01:00:00Z", csUserAgent="b", csMethod="POST", scStatus="500", csCookie="-",
                    csReferer="r1", csUriQuery="cmd=whoami"),
            request("2026-11-01T02:00:00Z", csUserAgent="a", csMethod="GET", scStatus="200", csCookie="c=1",
                    csReferer=None, csUriQuery="-"),
            request("2026-11-01T03:00:00Z", csUserAgent="a", csMethod="GET", scStatus="x", csCookie="c=1",
                    csReferer="r1", csUriQuery="cmd=dir", csUriStem="/Shell.aspx")]
    out = summary(spark, [alert("a1", A_TIME, shell_entities())], reqs)
    row = out.first()
    assert (row.RequestUserAgents, row.RequestMethods, row.RequestStatusCodes, row.RequestCookies,
            row.RequestReferers, row.RequestQueryStrings, row.RawUriStems) == \
        (["a", "b"], ["GET", "POST"], [200, 500], ["c=1"], ["r1"], ["cmd=dir", "cmd=whoami"],
         ["/Shell.aspx", "/shell.aspx"])
    assert (row.StartTime, row.EndTime, row.RequestCount) == \
        (ts("2026-11-01T01:00:00Z"), ts("2026-11-01T03:00:00Z"), 3)


def test_summary_sets_keep_at_most_max_set_size_first_values(spark):
    reqs = [request(R_TIME, csUserAgent=f"ua{i}") for i in (5, 3, 9, 1)]
    out = summary(spark, [alert("a1", A_TIME, shell_entities())], reqs, max_set_size=2)
    assert out.first().RequestUserAgents == ["ua1", "ua3"]


def test_alert_ids_and_first_alert_time_come_from_all_candidates_of_the_file_and_host(spark):
    alerts = [alert("a2", "2026-11-02T09:00:00Z", shell_entities()), alert("a1", "2026-11-02T11:00:00Z",
                                                                           shell_entities(directory="D:\\x"))]
    row = summary(spark, alerts, [request(R_TIME)]).first()
    assert (row.AlertIds, row.FirstAlertTime) == (["a1", "a2"], ts("2026-11-02T09:00:00Z"))


def test_path_matched_when_the_request_directory_is_a_suffix_of_an_alert_directory(spark):
    alerts = [alert("a1", A_TIME, shell_entities(directory="C:\\inetpub\\wwwroot\\Uploads\\"))]
    reqs = [request(R_TIME, "/uploads/shell.aspx", ip="1.1.1.1"), request(R_TIME, "/other/shell.aspx", ip="2.2.2.2"),
            request(R_TIME, "/shell.aspx", ip="3.3.3.3"), request(R_TIME, "/ploads/shell.aspx", ip="4.4.4.4")]
    out = summary(spark, alerts, reqs).select("AttackerIP", "PathMatched")
    assertDataFrameEqual(out, spark.createDataFrame([("1.1.1.1", True), ("2.2.2.2", False), ("3.3.3.3", True),
                                                     ("4.4.4.4", False)], "AttackerIP string, PathMatched boolean"))


def test_path_matched_is_false_without_a_directory(spark):
    ents = [{"$id": "2", "Type": "host", "HostName": "web01"}, {"$id": "3", "Type": "file", "Name": "shell.aspx"}]
    assert summary(spark, [alert("a1", A_TIME, ents)], [request(R_TIME)]).first().PathMatched is False


def test_sentinel_entity_mapping_columns(spark):
    row = summary(spark, [alert("a1", A_TIME, shell_entities())], [request(R_TIME, ip="1.2.3.4 ")]).first()
    assert (row.timestamp, row.IPCustomEntity, row.HostCustomEntity) == (row.StartTime, "1.2.3.4", "web01")


def test_site_name_is_as_logged_and_may_be_null(spark):
    out = summary(spark, [alert("a1", A_TIME, shell_entities())], [request(R_TIME, sSiteName="-")])
    assert keys(out) == [("203.0.113.5", "web01", None, "/shell.aspx")]

