"""The whole chain over a lake: transform and hunt jobs, publishing rules, gold readable without Spark, and the
Spark result against the independent reference implementation (tests/reference.py) on a generated multi-day set."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs import hunt as H
from jobs.generate import generate
from jobs.io import Lake
from jobs.land import land
from jobs.transform import transform
from schemas import tables as T
from tests import reference as R

RUN_COLUMNS = ["AlertWindowStart", "AlertWindowEnd", "LogWindowStart", "LogWindowEnd", "HuntRunId", "PublishedAt"]
CFG = {"hunt": {"providers": ["MDATP"], "script_extensions": list(R.DEFAULT_EXTENSIONS), "max_set_size": 100,
                "max_pushdown_keys": 5000, "alert_lookback": "1h", "log_lookback": "7d"},
       "transform": {"rows_per_file": 100, "entity_max_depth": 8}}


@pytest.fixture(scope="module")
def hunted(spark, tmp_path_factory):
    """A generated 3-day set with every trap, landed, transformed and hunted once."""
    root = tmp_path_factory.mktemp("e2e")
    manifest = generate(str(root / "exports"), days=3, requests_per_day=600, malformed_lines=6, layout="mixed",
                        gzip_share=0.3)
    lake = Lake(spark, root=str(root / "lake"))
    land(spark, lake, "security_alert", manifest["alerts_dir"])
    land(spark, lake, "w3c_iis_log", manifest["iis_dir"])
    transform(spark, lake, CFG)
    (a_from, a_to), (l_from, l_to) = manifest["alert_window"], manifest["log_window"]
    w = H.resolve_windows(CFG, a_from, a_to, l_from, l_to)
    result = H.hunt(spark, lake, CFG, w)
    return manifest, lake, w, result


def reference_rows(manifest, w):
    alerts = R.load_export_rows(manifest["alerts_dir"])
    iis = R.load_export_rows(manifest["iis_dir"])
    return R.attacker_summary(alerts, iis, alerts_from=w.alerts_from, alerts_to=w.alerts_to, logs_from=w.logs_from,
                              logs_to=w.logs_to)


def test_gold_equals_the_independent_reference_implementation(spark, hunted):
    manifest, lake, w, _ = hunted
    expected = [tuple(_naive(r[c]) for c in R.SUMMARY_COLUMNS) for r in reference_rows(manifest, w)]
    actual = lake.read(T.ATTACKER_SUMMARY.name).select(*R.SUMMARY_COLUMNS)
    assert len(expected) > 10
    assertDataFrameEqual(actual, spark.createDataFrame(expected, actual.schema))


def test_every_planted_shell_is_found_and_every_trap_yields_nothing(hunted):
    manifest, lake, _, _ = hunted
    found = {(r.HostName, r.ShellLocation, r.AttackerIP) for r in lake.read(T.ATTACKER_SUMMARY.name).collect()}
    for p in manifest["planted"]:
        ips = [ip for ip in p["attacker_ips"] if ip]
        hits = [ip for ip in ips if (p["host"], p["shell_location"], ip) in found]
        assert (hits == ips if p["expect"] == "match" else hits == []), p


def test_gold_run_columns_record_the_windows_and_the_run(hunted):
    _, lake, w, result = hunted
    row = lake.read(T.ATTACKER_SUMMARY.name).select(*RUN_COLUMNS).distinct().collect()
    assert [(r.AlertWindowStart, r.LogWindowEnd, r.HuntRunId) for r in row] == \
        [(_naive(w.alerts_from), _naive(w.logs_to), result.run_id)]


def test_hunt_reads_only_part_of_silver_requests(hunted):
    _, _, _, result = hunted
    assert 0 < result.files_read < result.files_total, (result.files_read, result.files_total)


def test_a_hunt_for_one_file_and_host_reads_at_most_one_file_per_date(hunted):
    manifest, lake, w, _ = hunted
    scan = H.requests_scan(lake, w, [("up.aspx", "web01")], max_keys=10)
    total = lake.delta(T.IIS_REQUEST.name).detail().first()["numFiles"]
    days = (w.logs_to - w.logs_from).days
    assert len(scan.inputFiles()) <= days < total / 3, (len(scan.inputFiles()), days, total)
    assert scan.where(F.col("FileName") == "up.aspx").count() > 0


def test_transform_twice_changes_nothing(spark, hunted):
    _, lake, _, _ = hunted
    before = {t: lake.delta(t).history(1).first()["version"] for t in
              (T.IIS_REQUEST.name, T.ALERT_ENTITY.name, T.WEBSHELL_CANDIDATE.name)}
    again = transform(spark, lake, CFG)
    assert (again.iis_runs, again.alert_runs) == (0, 0)
    assert before == {t: lake.delta(t).history(1).first()["version"] for t in before}


def test_silver_requests_hold_every_landed_request_once(spark, hunted):
    _, lake, _, _ = hunted
    assert lake.read(T.IIS_REQUEST.name).count() == lake.read("bronze/w3c_iis_log").count()
    dup = lake.read(T.IIS_REQUEST.name).groupBy("_source_file", "_line").count().where("count > 1").count()
    assert dup == 0


def test_alert_findings_record_unusable_entities(spark, hunted):
    _, lake, _, _ = hunted
    reasons = {r.Reason for r in lake.read(T.ALERT_FINDING.name).select("Reason").distinct().collect()}
    assert {"Entities is not JSON", "Entities is not a JSON array", "unresolvable $ref"} <= reasons


def test_an_alert_landed_twice_counts_once_in_alert_entity(spark, hunted):
    _, lake, _, _ = hunted
    multi = lake.read(T.ALERT_ENTITY.name).where(F.size("AlertTimes") > 1)
    assert multi.count() > 0
    assert multi.groupBy("SystemAlertId", "EntityIndex").count().where("count > 1").count() == 0


def test_the_same_hunt_twice_leaves_gold_unchanged_but_for_run_columns(spark, hunted):
    _, lake, w, _ = hunted
    before = lake.read(T.ATTACKER_SUMMARY.name).drop("HuntRunId", "PublishedAt").collect()
    again = H.hunt(spark, lake, CFG, w)
    after = lake.read(T.ATTACKER_SUMMARY.name)
    assert again.inserted == 0 and again.updated == len(before)
    assertDataFrameEqual(after.drop("HuntRunId", "PublishedAt"), spark.createDataFrame(before, after.drop(
        "HuntRunId", "PublishedAt").schema))
    assert after.select("HuntRunId").distinct().collect()[0][0] == again.run_id


def test_a_published_run_leaves_nothing_in_staging(spark, hunted):
    _, lake, _, result = hunted
    assert result.published
    assert not lake.exists(H.STAGING) or lake.read(H.STAGING).where(F.col("HuntRunId") == result.run_id).count() == 0


def test_a_run_the_gate_stops_keeps_its_rows_in_staging_and_leaves_gold_untouched(spark, hunted):
    _, lake, w, published = hunted
    gold_version = lake.delta(T.ATTACKER_SUMMARY.name).history(1).first()["version"]
    stopped = H.hunt(spark, lake, {**CFG, "quality": {"max_gold_rows": 0}}, w)
    assert not stopped.published and stopped.gate.failed_critical and stopped.rows == published.rows > 0
    assert lake.delta(T.ATTACKER_SUMMARY.name).history(1).first()["version"] == gold_version
    staged = lake.read(H.STAGING).where(F.col("HuntRunId") == stopped.run_id)
    gold = lake.read(T.ATTACKER_SUMMARY.name)
    key_and_figures = [*T.GOLD_KEY, "RequestCount", "StartTime", "EndTime", "AlertIds"]
    assertDataFrameEqual(staged.select(*key_and_figures), gold.select(*key_and_figures))


def test_gold_is_readable_without_spark_and_gives_the_same_rows(spark, hunted):
    from deltalake import DeltaTable

    _, lake, _, _ = hunted
    table = DeltaTable(lake.path(T.ATTACKER_SUMMARY.name)).to_pyarrow_table()
    spark_rows = lake.read(T.ATTACKER_SUMMARY.name).select("AttackerIP", "HostName", "SiteName", "ShellLocation",
                                                            "RequestCount", "AlertIds").collect()
    rs_rows = sorted(zip(*[table.column(c).to_pylist() for c in ("AttackerIP", "HostName", "SiteName",
                                                                  "ShellLocation", "RequestCount", "AlertIds")]),
                     key=lambda r: (r[0], r[1], r[2] or "", r[3]))
    assert rs_rows == sorted([tuple(r) for r in spark_rows], key=lambda r: (r[0], r[1], r[2] or "", r[3]))


def test_gold_protocol_has_no_deletion_vectors_or_column_mapping(spark, hunted):
    _, lake, _, _ = hunted
    detail = lake.delta(T.ATTACKER_SUMMARY.name).detail().first()
    assert detail["minReaderVersion"] == 1 and detail["minWriterVersion"] <= 4
    assert detail["properties"].get("delta.enableDeletionVectors") == "false"
    assert "delta.columnMapping.mode" not in detail["properties"]


# ------------------------------------------------------------------------------------------- publishing rule

def _gold_row(ip, log_end, count, run="r1", host="web01"):
    t0 = datetime(2026, 11, 1, 0, 0)
    return (ip, host, "W3SVC1", "/shell.aspx", "shell.aspx", count, t0, t0, [], ["GET"], [200], [], [], [],
            ["/shell.aspx"], ["a1"], t0, True, t0, ip, host, t0, t0, t0 - timedelta(days=7), log_end, run, t0)


def test_an_older_log_window_does_not_overwrite_a_newer_row_and_unseen_keys_stay(spark, tmp_path):
    lake = Lake(spark, root=str(tmp_path / "lake"))
    new, old = datetime(2026, 11, 8), datetime(2026, 11, 5)
    H.publish(lake, spark.createDataFrame([_gold_row("1.1.1.1", new, 10), _gold_row("2.2.2.2", new, 3)],
                                          T.GOLD_SCHEMA))
    inserted, updated = H.publish(lake, spark.createDataFrame(
        [_gold_row("1.1.1.1", old, 4, "r2"), _gold_row("3.3.3.3", old, 1, "r2")], T.GOLD_SCHEMA))
    assert (inserted, updated) == (1, 0)
    got = lake.read(T.ATTACKER_SUMMARY.name).select("AttackerIP", "RequestCount", "LogWindowEnd", "HuntRunId")
    assertDataFrameEqual(got, spark.createDataFrame(
        [("1.1.1.1", 10, new, "r1"), ("2.2.2.2", 3, new, "r1"), ("3.3.3.3", 1, old, "r2")],
        "AttackerIP string, RequestCount long, LogWindowEnd timestamp, HuntRunId string"))


def test_a_newer_or_equal_log_window_replaces_the_row(spark, tmp_path):
    lake = Lake(spark, root=str(tmp_path / "lake"))
    d = datetime(2026, 11, 8)
    H.publish(lake, spark.createDataFrame([_gold_row("1.1.1.1", d, 10)], T.GOLD_SCHEMA))
    assert H.publish(lake, spark.createDataFrame([_gold_row("1.1.1.1", d, 12, "r2")], T.GOLD_SCHEMA)) == (0, 1)
    assert H.publish(lake, spark.createDataFrame([_gold_row("1.1.1.1", d + timedelta(hours=1), 13, "r3")],
                                                 T.GOLD_SCHEMA)) == (0, 1)
    assert [tuple(r) for r in lake.read(T.ATTACKER_SUMMARY.name).select("RequestCount", "HuntRunId").collect()] == \
        [(13, "r3")]


def test_a_key_with_a_null_site_name_is_updated_in_place_not_inserted_again(spark, tmp_path):
    lake = Lake(spark, root=str(tmp_path / "lake"))
    d = datetime(2026, 11, 8)
    row = list(_gold_row("1.1.1.1", d, 10))
    row[2] = None
    assert H.publish(lake, spark.createDataFrame([tuple(row)], T.GOLD_SCHEMA)) == (1, 0)
    row[5], row[-2] = 11, "r2"
    assert H.publish(lake, spark.createDataFrame([tuple(row)], T.GOLD_SCHEMA)) == (0, 1)
    assert [tuple(r) for r in lake.read(T.ATTACKER_SUMMARY.name).select("SiteName", "RequestCount", "HuntRunId")
            .collect()] == [(None, 11, "r2")]


def test_windows_default_to_as_of_with_the_configured_lookbacks():
    w = H.resolve_windows(CFG, as_of="2026-11-08T12:00:00Z")
    assert (w.alerts_from, w.alerts_to, w.logs_from, w.logs_to) == (
        datetime(2026, 11, 8, 11, tzinfo=timezone.utc), datetime(2026, 11, 8, 12, tzinfo=timezone.utc),
        datetime(2026, 11, 1, 12, tzinfo=timezone.utc), datetime(2026, 11, 8, 12, tzinfo=timezone.utc))


def _naive(v):
    if isinstance(v, datetime) and v.tzinfo is not None:
        return v.astimezone(timezone.utc).replace(tzinfo=None)
    return v
