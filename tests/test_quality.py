"""The quality gate: each critical expectation blocks publishing, warnings publish, records and Data Docs exist."""
from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import pytest

from jobs import gate as G
from jobs.generate import generate
from jobs.config import load_config
from jobs.io import Lake
from jobs.land import land
from jobs.transform import transform
from pipelines.quality import gold_check_frame
from schemas import tables as T

from pyspark.sql.types import StructField, StructType

UTC = timezone.utc
# the staged frame as a faulty pipeline could produce it: nothing enforced by the schema
LOOSE = StructType([StructField(f.name, f.dataType, True) for f in T.GOLD_SCHEMA.fields])
L_FROM, L_TO = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC)
CFG = {"hunt": {"script_extensions": [".aspx", ".php"], "max_set_size": 2},
       "quality": {"max_gold_rows": 12}}


def row(ip="203.0.113.5", **over):
    t = datetime(2026, 11, 2)
    base = dict(AttackerIP=ip, HostName="web01", SiteName="W3SVC1", ShellLocation="/up/shell.aspx",
                FileName="shell.aspx", RequestCount=3, StartTime=t, EndTime=t + timedelta(hours=1),
                RequestUserAgents=["ua"], RequestMethods=["GET"], RequestStatusCodes=[200], RequestCookies=[],
                RequestReferers=[], RequestQueryStrings=[], RawUriStems=["/up/shell.aspx"], AlertIds=["a1"],
                FirstAlertTime=t, PathMatched=True, timestamp=t, IPCustomEntity=ip, HostCustomEntity="web01",
                AlertWindowStart=t, AlertWindowEnd=t, LogWindowStart=L_FROM.replace(tzinfo=None),
                LogWindowEnd=L_TO.replace(tzinfo=None), HuntRunId="r", PublishedAt=t)
    base.update(over)
    return tuple(base[f.name] for f in T.GOLD_SCHEMA.fields)


# one violating row per critical expectation; the key (AttackerIP) names the case
VIOLATIONS = {
    "expect_column_values_to_not_be_null(AttackerIP)": row(ip=None),
    "expect_column_values_to_not_be_null(HostName)": row("10.0.0.2", HostName=None),
    "expect_column_values_to_not_be_null(ShellLocation)": row("10.0.0.3", ShellLocation=None),
    "expect_column_values_to_not_be_null(FileName)": row("10.0.0.4", FileName=None),
    "expect_compound_columns_to_be_unique(['AttackerIP', 'HostName', 'SiteName', 'ShellLocation'])": row("10.0.0.5"),
    "expect_column_values_to_match_regex(AttackerIP)": row("999.1.2.3"),
    "expect_column_values_to_be_between(RequestCount)": row("10.0.0.7", RequestCount=0),
    "expect_column_pair_values_a_to_be_greater_than_b(EndTime,StartTime)":
        row("10.0.0.8", StartTime=datetime(2026, 11, 3), EndTime=datetime(2026, 11, 2, 23)),
    "expect_column_values_to_be_between(StartTime)": row("10.0.0.9", StartTime=datetime(2026, 10, 31, 23)),
    "expect_column_values_to_be_between(EndTime)": row("10.0.0.10", EndTime=datetime(2026, 11, 8)),
    "expect_column_values_to_match_regex(ShellLocation)": row("10.0.0.11", ShellLocation="/up/notes.aspx.txt",
                                                              FileName="notes.aspx.txt"),
    "expect_column_pair_values_to_be_equal(FileName,_last_segment)": row("10.0.0.12", FileName="other.aspx"),
    "expect_column_values_to_be_between(_n_AlertIds)": row("10.0.0.13", AlertIds=[]),
    "expect_column_values_to_be_between(_n_RequestUserAgents)": row("10.0.0.14", RequestUserAgents=["a", "b", "c"]),
    "expect_table_row_count_to_be_between": None,      # 16 rows > quality.max_gold_rows = 12
}


@pytest.fixture(scope="module")
def failed_gate(spark, tmp_path_factory):
    rows = [row(), row("10.0.0.5")] + [r for r in VIOLATIONS.values() if r is not None]
    df = spark.createDataFrame(rows, LOOSE).cache()
    frames = {"gold": (gold_check_frame(df), G.gold_expectations(CFG, L_FROM, L_TO), G.GOLD_INDEX)}
    return G.run_gate("test-run", frames, str(tmp_path_factory.mktemp("q")))


def _failed(gate):
    return {f"{o.expectation}({o.column})" if o.column else o.expectation: o for o in gate.failed_critical}


@pytest.mark.parametrize("expectation", list(VIOLATIONS))
def test_each_critical_expectation_catches_its_violation(failed_gate, expectation):
    failed = _failed(failed_gate)
    assert expectation in failed, sorted(failed)
    bad = VIOLATIONS[expectation]
    if bad is not None and expectation.startswith("expect_column"):
        assert any(ex.get("AttackerIP") == bad[0] for ex in failed[expectation].examples if isinstance(ex, dict)), \
            failed[expectation].examples


def test_a_valid_result_passes_every_critical_expectation(spark, tmp_path):
    df = spark.createDataFrame([row(), row("2001:db8::1"), row("::1%0", SiteName=None)], LOOSE)
    gate = G.run_gate("ok-run", {"gold": (gold_check_frame(df), G.gold_expectations(CFG, L_FROM, L_TO),
                                          G.GOLD_INDEX)}, str(tmp_path))
    assert gate.verdict == G.PASSED and not gate.failed_critical, [o.line() for o in gate.failed_critical]


def test_the_gate_writes_json_results_and_data_docs(failed_gate):
    with open(failed_gate.results_path) as fh:
        data = json.load(fh)
    assert data["verdict"] == "failed" and len(data["outcomes"]) == len(failed_gate.outcomes)
    assert os.path.exists(failed_gate.docs_path)
    assert os.path.exists(os.path.join(os.path.dirname(failed_gate.results_path), "gx_validation_results.json"))


# --------------------------------------------------------------------------------------------- in the hunt

@pytest.fixture(scope="module")
def small_lake(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("qlake")
    m = generate(str(root / "exports"), days=2, requests_per_day=300, malformed_lines=3)
    lake = Lake(spark, root=str(root / "lake"))
    land(spark, lake, "security_alert", m["alerts_dir"])
    land(spark, lake, "w3c_iis_log", m["iis_dir"])
    transform(spark, lake, load_config())
    return m, lake


def _hunt_args(m, lake, *extra):
    (a_from, a_to), (l_from, l_to) = m["alert_window"], m["log_window"]
    return ["hunt", "--lake", lake.root, "--alerts-from", a_from, "--alerts-to", a_to, "--logs-from", l_from,
            "--logs-to", l_to, *extra]


def test_a_failed_critical_check_publishes_nothing_and_exits_3(small_lake, capsys):
    from jobs.cli import main

    m, lake = small_lake
    before = lake.delta(T.ATTACKER_SUMMARY.name).history(1).first()["version"] \
        if lake.exists(T.ATTACKER_SUMMARY.name) else None
    code = main(_hunt_args(m, lake, "--set", "quality.max_gold_rows=1"))
    out = capsys.readouterr().out
    assert code == 3
    assert "[critical] gold: expect_table_row_count_to_be_between" in out and "quality gate: failed" in out
    after = lake.delta(T.ATTACKER_SUMMARY.name).history(1).first()["version"] \
        if lake.exists(T.ATTACKER_SUMMARY.name) else None
    assert before == after


def test_warnings_are_reported_and_the_result_is_published(small_lake, capsys):
    from jobs.cli import main

    m, lake = small_lake
    code = main(_hunt_args(m, lake))
    out = capsys.readouterr().out
    assert code == 0
    assert "quality gate: passed with warnings" in out
    assert "[warning] candidate_host_logs: expect_column_values_to_be_in_set(has_logs)" in out   # a host without logs
    assert "[warning] quarantine_share" in out                                                    # malformed lines
    assert lake.read(T.ATTACKER_SUMMARY.name).count() > 0


def test_quality_command_prints_the_latest_verdict_and_the_history(small_lake, capsys):
    from jobs.cli import main

    _, lake = small_lake
    assert main(["quality", "--lake", lake.root]) == 0
    out = capsys.readouterr().out
    assert "latest:" in out and "passed with warnings" in out and "history (2 of 2 runs)" in out
    assert "gold:expect_table_row_count_to_be_between" in out

