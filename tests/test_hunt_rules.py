"""CONTRACT.md rules for candidates, requests and the attacker summary, on in-memory frames through the real
pipelines. The lake, publishing and the comparison with the reference implementation are in test_hunt_lake.py."""
from __future__ import annotations

import json

from pyspark.testing import assertDataFrameEqual

from pipelines.entities import entity_findings
from schemas.sentinel import SECURITY_ALERT
from tests.helpers import alert, candidates, frame, keys, request, shell_entities, summary, ts

A_TIME = "2026-11-02T10:00:00Z"
EXT_DEFAULT = [".asp", ".aspx", ".asmx", ".asax", ".php", ".jsp", ".js", ".cfm", ".shtml"]
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



# ------------------------------------------------------------------------ rules pinned after a contract audit

def test_entities_given_as_a_json_array_instead_of_a_string_are_parsed(spark):
    from pipelines.entities import alert_entities, candidate_rows
    from pipelines.land import json_record, typed_record

    line = json.dumps({"TimeGenerated": "2026-11-02T10:00:00Z", "SystemAlertId": "a1", "ProviderName": "MDATP",
                       "Entities": shell_entities(name="a.aspx")})
    landed = (spark.createDataFrame([(1, line)], "_line long, _text string")
              .transform(json_record(SECURITY_ALERT)).transform(typed_record(SECURITY_ALERT)))
    cands = landed.transform(alert_entities()).transform(candidate_rows(["MDATP"], [".aspx"]))
    assert cand_tuples(cands) == [("a.aspx", "web01", "a1")]


def test_a_ref_that_has_a_type_is_an_entity_of_its_own(spark):
    ents = [{"$id": "2", "Type": "host", "HostName": "web01"}, {"$id": "3", "Type": "file", "Name": "a.aspx"},
            {"$ref": "3", "Type": "file", "Name": "typed.aspx"}]
    assert cand_tuples(candidates(spark, [alert("a1", A_TIME, ents)])) == \
        [("a.aspx", "web01", "a1"), ("typed.aspx", "web01", "a1")]


def test_an_entity_nested_in_another_without_a_top_level_ref_is_no_candidate(spark):
    ents = [{"$id": "2", "Type": "host", "HostName": "web01"},
            {"$id": "3", "Type": "process", "ImageFile": {"$id": "4", "Type": "file", "Name": "wso.aspx"}}]
    assert cand_tuples(candidates(spark, [alert("a1", A_TIME, ents)])) == []


def test_every_file_of_an_alert_pairs_with_every_host_of_it(spark):
    ents = [{"$id": "2", "Type": "host", "HostName": "web01"}, {"$id": "3", "Type": "host", "HostName": "web02"},
            {"$id": "4", "Type": "file", "Name": "a.aspx"}, {"$id": "5", "Type": "file", "Name": "b.php"}]
    assert cand_tuples(candidates(spark, [alert("a1", A_TIME, ents)])) == \
        [("a.aspx", "web01", "a1"), ("a.aspx", "web02", "a1"), ("b.php", "web01", "a1"), ("b.php", "web02", "a1")]


def test_an_empty_host_name_falls_back_to_the_netbios_name_and_a_host_without_names_is_no_candidate(spark):
    alerts = [alert("a1", A_TIME, shell_entities(host="  ", netbios="WEB05")),
              alert("a2", A_TIME, [{"$id": "2", "Type": "host", "FQDN": "web06.contoso.local"},
                                   {"$id": "3", "Type": "file", "Name": "shell.aspx"}])]
    assert cand_tuples(candidates(spark, alerts)) == [("shell.aspx", "web05", "a1")]


def test_null_or_empty_entities_yield_nothing_and_are_findings(spark):
    alerts = [alert("a1", A_TIME, "", AlertSeverity="High"), alert("a2", A_TIME, "   "),
              {**alert("a3", A_TIME, "[]"), "Entities": None}]
    findings = frame(spark, alerts, SECURITY_ALERT).transform(entity_findings()).select("SystemAlertId", "Reason")
    assertDataFrameEqual(findings, spark.createDataFrame(
        [("a1", "Entities is empty"), ("a2", "Entities is empty"), ("a3", "Entities is empty")],
        "SystemAlertId string, Reason string"))
    assert cand_tuples(candidates(spark, alerts)) == []


def test_the_default_configuration_hunts_the_nine_script_extensions_of_mdatp_alerts():
    from jobs.config import load_config

    hunt = load_config(None, [])["hunt"]
    assert sorted(hunt["script_extensions"]) == sorted(EXT_DEFAULT) and hunt["providers"] == ["MDATP"]


def test_each_default_script_extension_makes_a_candidate(spark):
    names = [f"s{e}" for e in EXT_DEFAULT] + ["notes.txt", "s.aspx.bak"]
    ents = [{"$id": "1", "Type": "host", "HostName": "web01"}] + \
        [{"$id": str(i + 2), "Type": "file", "Name": n.upper()} for i, n in enumerate(names)]
    out = candidates(spark, [alert("a1", A_TIME, ents)], extensions=EXT_DEFAULT)
    assert cand_tuples(out) == sorted((f"s{e}", "web01", "a1") for e in EXT_DEFAULT)


def test_an_alert_row_outside_the_window_neither_names_nor_dates_the_alert(spark):
    alerts = [alert("a1", "2026-11-01T23:55:00Z", shell_entities()), alert("a1", "2026-11-02T00:30:00Z",
                                                                           shell_entities()),
              alert("a2", "2026-11-01T23:00:00Z", shell_entities())]
    row = summary(spark, alerts, [request(R_TIME)]).first()
    assert (row.AlertIds, row.FirstAlertTime) == (["a1"], ts("2026-11-02T00:30:00Z"))


def test_path_matched_when_the_directory_of_any_of_the_candidates_matches(spark):
    alerts = [alert("a1", A_TIME, shell_entities(directory="D:\\sites\\a")),
              alert("a2", A_TIME, shell_entities(directory="D:\\sites\\b\\Uploads"))]
    reqs = [request(R_TIME, "/uploads/shell.aspx", ip="1.1.1.1"), request(R_TIME, "/c/shell.aspx", ip="2.2.2.2")]
    out = summary(spark, alerts, reqs).select("AttackerIP", "PathMatched", "AlertIds")
    assertDataFrameEqual(out, spark.createDataFrame(
        [("1.1.1.1", True, ["a1", "a2"]), ("2.2.2.2", False, ["a1", "a2"])],
        "AttackerIP string, PathMatched boolean, AlertIds array<string>"))


def test_status_codes_are_sorted_as_numbers(spark):
    reqs = [request(R_TIME, scStatus=s) for s in ("404", "1000", "200", "500")]
    assert summary(spark, [alert("a1", A_TIME, shell_entities())], reqs).first().RequestStatusCodes == \
        [200, 404, 500, 1000]


def test_every_set_keeps_at_most_max_set_size_first_values(spark):
    reqs = [request(R_TIME, csUserAgent=f"ua{i}", csMethod=m, scStatus=s, csCookie=f"c={i}", csReferer=f"r{i}",
                    csUriQuery=f"q={i}") for i, m, s in ((3, "PUT", "500"), (1, "POST", "404"), (2, "GET", "200"))]
    row = summary(spark, [alert("a1", A_TIME, shell_entities())], reqs, max_set_size=2).first()
    assert (row.RequestUserAgents, row.RequestMethods, row.RequestStatusCodes, row.RequestCookies,
            row.RequestReferers, row.RequestQueryStrings, row.RequestCount) == \
        (["ua1", "ua2"], ["GET", "POST"], [200, 404], ["c=1", "c=2"], ["r1", "r2"], ["q=1", "q=2"], 3)
