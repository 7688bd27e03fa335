"""Landing exports into bronze: formats, exactly-once, quarantine, reconciliation."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs.land import land
from pipelines.land import (REASON_NOT_OBJECT, REASON_TIME_MISSING, REASON_TIME_UNPARSEABLE, parse_timestamp)
from tests.conftest import export_blob, write_lines

ROOT = Path(__file__).resolve().parents[1]


def iis_row(ts: str, host: str = "web01", stem: str = "/index.aspx", ip: str = "10.0.0.1", **extra) -> str:
    row = {"TimeGenerated": ts, "Computer": host, "sComputerName": host, "cIP": ip, "csUriStem": stem,
           "csMethod": "GET", "scStatus": "200", "sPort": 443, "Type": "W3CIISLog"}
    row.update(extra)
    return json.dumps(row)


def bronze(lake, source="w3c_iis_log"):
    return lake.read(f"bronze/{source}")


def test_real_csv_export_lands_every_entities_value_intact(spark, lake, samples):
    result = land(spark, lake, "security_alert", str(samples / "alertlist.csv"))
    with open(samples / "alertlist.csv", newline="", encoding="utf-8") as fh:
        expected = [(r["SystemAlertId"], r["Entities"] or None) for r in csv.DictReader(fh)]
    actual = bronze(lake, "security_alert").select("SystemAlertId", F.nullif("Entities", F.lit("")).alias("Entities"))
    assert (result.rows_read, result.rows_landed, result.rows_quarantined) == (189, 189, 0)
    assertDataFrameEqual(actual, spark.createDataFrame(expected, "SystemAlertId string, Entities string"))


def test_csv_columns_the_schema_lacks_go_to_extra_and_renamed_ones_are_null(spark, lake, samples):
    land(spark, lake, "security_alert", str(samples / "alertlist.csv"))
    row = bronze(lake, "security_alert").where(
        F.col("SystemAlertId") == "047f47d6-79b7-4502-824b-97abc4905a73").first()
    assert row["StartTime"] is None and row["AlertSeverity"] is None          # renamed by msticpy: not guessed
    assert row["_extra"]["StartTimeUtc"] == "2019-01-11 06:31:40"
    assert row["_extra"]["Severity"] == "Low"
    assert row["_extra"]["_c0"] == "0"                                       # pandas index column, unnamed
    assert row["TimeGenerated"] == datetime(2019, 1, 12, 6, 41, 44)


def test_export_tree_with_both_blob_layouts_and_gzip_lands_every_row(spark, lake, tmp_path):
    exports = tmp_path / "exports"
    write_lines(export_blob(exports, "2026-11-01T05:00", minute_layout=False),
                [iis_row("2026-11-01T05:01:00.1234567Z"), iis_row("2026-11-01T05:59:59Z")])
    write_lines(export_blob(exports, "2026-11-02T06:35"), [iis_row("2026-11-02T06:36:00Z", ip="10.0.0.2")])
    write_lines(export_blob(exports, "2026-11-02T06:40"), [iis_row("2026-11-02T06:41:00Z", ip="10.0.0.3")], gz=True)
    result = land(spark, lake, "w3c_iis_log", str(exports))
    assert (result.files_landed, result.rows_read, result.rows_landed) == (3, 4, 4)
    expected = spark.createDataFrame(
        [(datetime(2026, 11, 1, 5, 1, 0, 123456), "10.0.0.1"), (datetime(2026, 11, 1, 5, 59, 59), "10.0.0.1"),
         (datetime(2026, 11, 2, 6, 36), "10.0.0.2"), (datetime(2026, 11, 2, 6, 41), "10.0.0.3")],
        "TimeGenerated timestamp, cIP string")
    assertDataFrameEqual(bronze(lake).select("TimeGenerated", "cIP"), expected)


def test_bronze_is_typed_and_partitioned_by_event_date(spark, lake, tmp_path):
    write_lines(tmp_path / "in" / "PT1H.json", [iis_row("2026-11-01T05:01:00Z", scBytes=10, TimeTaken="15")])
    land(spark, lake, "w3c_iis_log", str(tmp_path / "in"))
    df = bronze(lake)
    types = dict(df.dtypes)
    assert (types["TimeGenerated"], types["scStatus"], types["sPort"], types["scBytes"], types["TimeTaken"]) == \
        ("timestamp", "string", "int", "bigint", "bigint")
    assert lake.delta("bronze/w3c_iis_log").detail().first()["partitionColumns"] == ["_event_date"]
    assertDataFrameEqual(df.select("_event_date", "TimeTaken", "_line"),
                         spark.createDataFrame([(datetime(2026, 11, 1).date(), 15, 1)],
                                               "_event_date date, TimeTaken long, _line long"))


def test_values_that_do_not_fit_their_type_and_unknown_columns_are_kept_in_extra(spark, lake, tmp_path):
    write_lines(tmp_path / "in" / "a.json", [iis_row("2026-11-01T05:01:00Z", sPort="http", Custom="x")])
    land(spark, lake, "w3c_iis_log", str(tmp_path / "in"))
    row = bronze(lake).first()
    assert row["sPort"] is None
    assert row["_extra"] == {"sPort": "http", "Custom": "x"}


def test_second_run_over_the_same_folder_lands_nothing(spark, lake, tmp_path):
    write_lines(export_blob(tmp_path / "in", "2026-11-01T05:05"), [iis_row("2026-11-01T05:06:00Z")])
    first = land(spark, lake, "w3c_iis_log", str(tmp_path / "in"))
    version = lake.delta("bronze/w3c_iis_log").history(1).first()["version"]
    second = land(spark, lake, "w3c_iis_log", str(tmp_path / "in"))
    assert (first.rows_landed, second.files_landed, second.rows_read) == (1, 0, 0)
    assert lake.delta("bronze/w3c_iis_log").history(1).first()["version"] == version


def test_files_added_later_land_alone(spark, lake, tmp_path):
    write_lines(export_blob(tmp_path / "in", "2026-11-01T05:05"), [iis_row("2026-11-01T05:06:00Z", ip="10.0.0.1")])
    land(spark, lake, "w3c_iis_log", str(tmp_path / "in"))
    write_lines(export_blob(tmp_path / "in", "2026-11-01T05:10"), [iis_row("2026-11-01T05:11:00Z", ip="10.0.0.9")])
    later = land(spark, lake, "w3c_iis_log", str(tmp_path / "in"))
    assert (later.files_landed, later.rows_landed) == (1, 1)
    assertDataFrameEqual(bronze(lake).groupBy("cIP").count(),
                         spark.createDataFrame([("10.0.0.1", 1), ("10.0.0.9", 1)], "cIP string, count long"))


def test_a_run_killed_after_its_bronze_commit_lands_every_row_once_when_run_again(spark, lake, tmp_path):
    blob = write_lines(export_blob(tmp_path / "in", "2026-11-01T05:05"),
                       [iis_row(f"2026-11-01T05:06:{s:02d}Z", ip=f"10.0.0.{s}") for s in range(5)])
    env = dict(os.environ, SHELLTRACE_CRASH_AFTER="bronze")
    killed = subprocess.run([sys.executable, "-m", "jobs.land", "--source", "w3c_iis_log", "--input", str(blob.parent),
                             "--lake", lake.root, "--master", "local[1]"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == 137, killed.stderr[-2000:]
    assert bronze(lake).count() == 5                      # the killed run did commit its bronze rows
    again = land(spark, lake, "w3c_iis_log", str(tmp_path / "in"))
    assert len(again.recovered_runs) == 1 and again.rows_landed == 5
    assertDataFrameEqual(bronze(lake).groupBy("cIP").count(),
                         spark.createDataFrame([(f"10.0.0.{s}", 1) for s in range(5)], "cIP string, count long"))


def test_malformed_lines_go_to_quarantine_with_reason_and_reconcile(spark, lake, tmp_path):
    blob = write_lines(tmp_path / "in" / "PT05M.json", [
        iis_row("2026-11-01T05:06:00Z"),
        "this is not json",
        "[1, 2, 3]",
        '{"TimeGenerated": "2026-11-01T05:0',
        json.dumps({"cIP": "10.0.0.5"}),
        json.dumps({"TimeGenerated": "yesterday", "cIP": "10.0.0.6"}),
        "",
        iis_row("2026-11-01T05:07:00Z"),
    ])
    result = land(spark, lake, "w3c_iis_log", str(tmp_path / "in"))
    assert (result.rows_read, result.rows_landed, result.rows_quarantined) == (7, 2, 5)
    assert result.rows_read == result.rows_landed + result.rows_quarantined
    expected = spark.createDataFrame([
        (2, "this is not json", REASON_NOT_OBJECT), (3, "[1, 2, 3]", REASON_NOT_OBJECT),
        (4, '{"TimeGenerated": "2026-11-01T05:0', REASON_NOT_OBJECT),
        (5, json.dumps({"cIP": "10.0.0.5"}), REASON_TIME_MISSING),
        (6, json.dumps({"TimeGenerated": "yesterday", "cIP": "10.0.0.6"}), REASON_TIME_UNPARSEABLE),
    ], "_line long, raw string, reason string")
    q = lake.read("quarantine/w3c_iis_log")
    assertDataFrameEqual(q.select("_line", "raw", "reason"), expected)
    (source_file, run_id), = q.select("_source_file", "_run_id").distinct().collect()
    assert source_file.endswith(str(blob)) and run_id == result.run_id


def test_many_small_files_do_not_make_many_delta_files(spark, lake, tmp_path):
    for i in range(120):
        write_lines(export_blob(tmp_path / "in", f"2026-11-01T{i // 12:02d}:{(i % 12) * 5:02d}"),
                    [iis_row(f"2026-11-01T{i // 12:02d}:{(i % 12) * 5:02d}:01Z", ip=f"10.1.0.{i}")])
    result = land(spark, lake, "w3c_iis_log", str(tmp_path / "in"))
    files = lake.delta("bronze/w3c_iis_log").detail().first()["numFiles"]
    assert result.rows_landed == 120 and files <= 4, files


def test_parse_timestamp_accepts_export_layouts(spark):
    df = spark.createDataFrame([("2026-11-01T05:06:07.1234567Z",), ("2026-11-01 05:06:07",),
                                ("11/1/2026, 5:06:07.123 AM",), ("2026-11-01T07:06:07+02:00",), ("bad",)], "t string")
    expected = spark.createDataFrame([(datetime(2026, 11, 1, 5, 6, 7, 123456),), (datetime(2026, 11, 1, 5, 6, 7),),
                                      (datetime(2026, 11, 1, 5, 6, 7, 123000),), (datetime(2026, 11, 1, 5, 6, 7),),
                                      (None,)], "ts timestamp")
    assertDataFrameEqual(df.select(parse_timestamp(F.col("t")).alias("ts")), expected)


def test_an_empty_folder_is_a_clear_message_not_a_stack_trace(tmp_path, capsys, spark):
    from jobs.cli import main

    (tmp_path / "empty").mkdir()
    code = main(["land", "--source", "w3c_iis_log", "--input", str(tmp_path / "empty"), "--lake", str(tmp_path / "lk")])
    out = capsys.readouterr()
    assert code == 0
    assert "no export files under" in out.err and "Traceback" not in out.err


def test_a_missing_input_path_exits_2_with_one_line(tmp_path, capsys, spark):
    from jobs.cli import main

    code = main(["land", "--source", "w3c_iis_log", "--input", str(tmp_path / "nope"), "--lake", str(tmp_path / "lk")])
    assert code == 2
    assert "input path does not exist" in capsys.readouterr().err


def test_a_wrong_source_is_refused_with_the_valid_choices(capsys):
    from jobs.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["land", "--source", "syslog", "--input", "x", "--lake", "y"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "security_alert" in err and "w3c_iis_log" in err


def _json_lines(spark, lines):
    return spark.createDataFrame([(i + 1, t) for i, t in enumerate(lines)], "_line long, _text string")


def test_json_record_keeps_unknown_keys_in_extra_also_beside_null_or_repeated_known_keys(spark):
    from pipelines.land import json_record
    from schemas.sentinel import W3C_IIS_LOG

    df = _json_lines(spark, [
        '{"TimeGenerated": "2026-11-01T05:06:00Z", "cIP": "10.0.0.1"}',           # all known
        '{"TimeGenerated": "2026-11-01T05:06:00Z", "cIP": null}',                  # all known, one JSON null
        '{"TimeGenerated": "2026-11-01T05:06:00Z", "cIP": null, "Custom": 7}',     # unknown beside a null
        '{"cIP": "10.0.0.1", "cIP": "10.0.0.2", "Zone": "dmz"}',                   # a repeated key and an unknown one
        '{"TimeGenerated": "2026-11-01T05:06:00Z", "X": {"a": [1, 2]}}',           # nested unknown value as JSON
        'not json',
    ])
    actual = df.transform(json_record(W3C_IIS_LOG)).select("_line", "_extra_in", "_pre_reason")
    expected = spark.createDataFrame([
        (1, None, None), (2, None, None), (3, {"Custom": "7"}, None), (4, {"Zone": "dmz"}, None),
        (5, {"X": '{"a":[1,2]}'}, None), (6, None, REASON_NOT_OBJECT),
    ], "_line long, _extra_in map<string,string>, _pre_reason string")
    assertDataFrameEqual(actual, expected)


def test_a_clean_line_and_one_parsed_again_as_text_give_the_same_typed_values(spark):
    """Line 1 is clean (typed by the first parse); lines 2 and 3 hold the same values but are parsed again as raw
    text (an unknown key; a JSON null) and cast: every typed column agrees, including numbers Jackson reads in
    another spelling (1.5e1, -0.0) and the 7-digit fraction of Log Analytics timestamps."""
    from pipelines.land import json_record, typed_record
    from schemas.sentinel import W3C_IIS_LOG

    values = ('"TimeGenerated": "2026-11-01T05:06:07.1234567Z", "sPort": 443, "scBytes": 9007199254740993, '
              '"RemoteIPLatitude": 1.5e1, "RemoteIPLongitude": -0.0, "cIP": "10.0.0.1", "csUriQuery": "a=%22b%22"')
    df = _json_lines(spark, ["{" + values + "}", "{" + values + ', "Custom": 1}', "{" + values + ', "csHost": null}'])
    typed = df.transform(json_record(W3C_IIS_LOG)).transform(typed_record(W3C_IIS_LOG))
    cols = ["TimeGenerated", "sPort", "scBytes", "RemoteIPLatitude", "RemoteIPLongitude", "cIP", "csUriQuery",
            "reason"]
    actual = typed.select("_line", *cols, "_extra")
    row = (datetime(2026, 11, 1, 5, 6, 7, 123456), 443, 9007199254740993, 15.0, -0.0, "10.0.0.1", "a=%22b%22", None)
    expected = spark.createDataFrame(
        [(1, *row, None), (2, *row, {"Custom": "1"}), (3, *row, None)],
        "_line long, TimeGenerated timestamp, sPort int, scBytes long, RemoteIPLatitude double, "
        "RemoteIPLongitude double, cIP string, csUriQuery string, reason string, _extra map<string,string>")
    assertDataFrameEqual(actual, expected)


def test_sql_text_literals_and_names_round_trip_quotes_and_backslashes(spark):
    from pipelines.land import _lit, _q

    texts = ["plain", "it's", "back\\slash", "quote\"d", "tick`name"]
    actual = spark.sql("SELECT " + ", ".join(f"{_lit(t)} AS {_q(t)}" for t in texts))
    expected = spark.createDataFrame([tuple(texts)], ", ".join(f"{_q(t)} string" for t in texts))
    assertDataFrameEqual(actual, expected)


def test_the_jobs_own_bronze_plan_parses_each_json_line_once(spark, lake, tmp_path):
    """The plan `land` writes (jobs.land.bronze_plan, as the job plans it): its observation keeps the bronze filter
    above the parse; without it the filter's condition is rewritten through the parse, once per field it names."""
    from jobs.io import session_setting
    from jobs.land import _ledger, bronze_plan, plan_files

    write_lines(export_blob(tmp_path / "in", "2026-11-01T05:05"), [iis_row("2026-11-01T05:06:00Z")])
    _ledger(lake)
    files, *_ = plan_files(spark, lake, "w3c_iis_log", str(tmp_path / "in"), "auto")
    with session_setting(spark, "spark.sql.constraintPropagation.enabled", "false"):
        rows, _ = bronze_plan(spark, files, "w3c_iis_log", "run")
        plan = rows._jdf.queryExecution().executedPlan().toString()
    # one parse with numbers typed, one to raw text for the lines that are not clean; neither repeated
    assert plan.count("from_json(StructField(TenantId") == 2, plan
    assert plan.count("StructField(sPort,IntegerType") == 1, plan
    assert plan.count("StructField(sPort,StringType") == 1, plan
    assert plan.count("jsonObjectKeys") == 1, plan


def test_only_files_with_rows_that_did_not_land_are_read_again_for_the_quarantine(spark, lake, tmp_path, caplog):
    write_lines(export_blob(tmp_path / "in", "2026-11-01T05:05"), [iis_row("2026-11-01T05:06:00Z")])
    write_lines(export_blob(tmp_path / "in", "2026-11-01T05:10"), [iis_row("2026-11-01T05:11:00Z"), "oops"])
    write_lines(export_blob(tmp_path / "in", "2026-11-01T05:15"), [iis_row("2026-11-01T05:16:00Z")])
    with caplog.at_level("INFO", logger="shelltrace"):
        result = land(spark, lake, "w3c_iis_log", str(tmp_path / "in"))
    assert (result.rows_read, result.rows_landed, result.rows_quarantined) == (4, 3, 1)
    assert "1 file(s) hold rows that did not land" in caplog.text
    assertDataFrameEqual(lake.read("quarantine/w3c_iis_log").select("_line", "raw"),
                         spark.createDataFrame([(2, "oops")], "_line long, raw string"))


def test_bronze_write_tasks_follow_input_size_never_below_the_cores(spark):
    from jobs.land import write_tasks

    least = 2 * spark.sparkContext.defaultParallelism
    gib = 1024 ** 3
    assert write_tasks(spark, [("a.json", 10, None, "jsonl", 0)]) == least
    assert write_tasks(spark, [(f"{i}.json", gib, None, "jsonl", 0) for i in range(9)]) == max(least, 9)
    assert write_tasks(spark, [("a.json.gz", gib, None, "jsonl", 0)]) == max(least, 8)
    assert write_tasks(spark, [("a.json", 3 * gib, None, "jsonl", 0)], cfg_mb=256) == max(least, 12)


def test_an_observation_that_never_arrives_gives_none(spark):
    from pyspark.sql import Observation

    from jobs.land import observed

    seen = Observation("never-run")
    spark.range(3).observe(seen, F.count(F.lit(1)).alias("n"))      # no action runs
    assert observed(seen, wait_s=0.2) is None
    ran = Observation("ran")
    spark.range(3).observe(ran, F.count(F.lit(1)).alias("n")).write.format("noop").mode("overwrite").save()
    assert observed(ran) == {"n": 3}


def test_without_an_observation_line_counts_name_the_files_with_rows_that_did_not_land(spark, lake, tmp_path):
    from jobs.land import _files_with_bad_rows

    write_lines(export_blob(tmp_path / "in", "2026-11-01T05:05"), [iis_row("2026-11-01T05:06:00Z")])
    bad = write_lines(export_blob(tmp_path / "in", "2026-11-01T05:10"), [iis_row("2026-11-01T05:11:00Z"), "oops"])
    result = land(spark, lake, "w3c_iis_log", str(tmp_path / "in"))
    landed = [r.path for r in lake.read("_state/landed_files").select("path").distinct().collect()]
    suspects = _files_with_bad_rows(spark, lake, "w3c_iis_log", result.run_id,
                                    [(p, 0, None, "jsonl", 0) for p in sorted(landed)])
    assert len(landed) == 2 and len(suspects) == 1 and suspects[0][0].endswith(str(bad)), suspects


def test_optimized_writes_switch_restores_the_session_setting(spark, lake):
    key = "spark.databricks.delta.optimizeWrite.enabled"
    spark.conf.set(key, "true")
    try:
        with lake.optimized_writes(False):
            assert spark.conf.get(key) == "false"
        assert spark.conf.get(key) == "true"
    finally:
        spark.conf.unset(key)
    with lake.optimized_writes(False):
        assert spark.conf.get(key) == "false"
    assert spark.conf.get(key, None) is None


def test_planned_local_files_are_listed_on_the_driver_and_the_setting_is_restored(spark):
    from jobs.io import listing

    key = "spark.sql.sources.parallelPartitionDiscovery.threshold"
    before = spark.conf.get(key, None)
    local = [f"file:///tmp/in/{i}.json" for i in range(40)]
    with listing(spark, local):
        assert spark.conf.get(key) == "40"
    assert spark.conf.get(key, None) == before
    with listing(spark, [f"abfss://c@a.dfs.core.windows.net/{i}.json" for i in range(40)]):
        assert spark.conf.get(key, None) == before
    with listing(spark, local[:5]):
        assert spark.conf.get(key, None) == before


def test_more_event_dates_in_a_task_than_concurrent_writers_land_every_row_under_its_date(spark, lake, tmp_path):
    # one file, so one write task, holding four dates: two open writers, then Spark sorts the remaining rows
    days = ["2026-11-03", "2026-11-01", "2026-11-04", "2026-11-02", "2026-11-01"]
    write_lines(tmp_path / "in" / "PT1H.json",
                [iis_row(f"{d}T05:00:00Z", ip=f"10.0.0.{i}") for i, d in enumerate(days)])
    result = land(spark, lake, "w3c_iis_log", str(tmp_path / "in"), concurrent_writers=2)
    assert result.rows_landed == 5
    expected = spark.createDataFrame([(datetime.fromisoformat(d).date(), f"10.0.0.{i}") for i, d in enumerate(days)],
                                     "_event_date date, cIP string")
    assertDataFrameEqual(bronze(lake).select("_event_date", "cIP"), expected)


def test_concurrent_writers_come_from_config_and_a_negative_count_is_refused():
    from jobs.common import UserError
    from jobs.config import load_config
    from jobs.land import land_options

    assert land_options(load_config(None, []))["concurrent_writers"] == 64
    assert land_options(load_config(None, ["land.concurrent_writers=0"]))["concurrent_writers"] == 0
    with pytest.raises(UserError, match="concurrent_writers"):
        land_options(load_config(None, ["land.concurrent_writers=-1"]))


def test_landing_restores_the_session_concurrent_writers_setting(spark, lake, tmp_path):
    key = "spark.sql.maxConcurrentOutputFileWriters"
    before = spark.conf.get(key, None)
    write_lines(tmp_path / "in" / "PT1H.json", [iis_row("2026-11-01T05:00:00Z")])
    land(spark, lake, "w3c_iis_log", str(tmp_path / "in"), concurrent_writers=8)
    assert spark.conf.get(key, None) == before
