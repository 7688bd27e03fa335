"""`hunt --incremental`: alerts by ingestion (late ones too), the watermark moves only after publishing, one run per
window when two start at once, and alerts waiting for their host's IIS logs are retried, then given up."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs import incremental as I
from jobs.land import land
from jobs.transform import transform
from schemas import tables as T
from tests.conftest import write_lines

AS_OF = datetime(2026, 11, 3, 0, 0, tzinfo=timezone.utc)
CFG = {"hunt": {"providers": ["MDATP"], "script_extensions": [".aspx", ".php"], "max_set_size": 100,
                "max_pushdown_keys": 5000, "alert_lookback": "1h", "log_lookback": "7d",
                "retry_missing_logs": "24h", "claim_timeout": "2h"},
       "quality": {"max_gold_rows": 100000, "max_quarantine_share": 1.0},
       "transform": {"rows_per_file": 1000, "entity_max_depth": 8}}


def _alert(alert_id: str, time: str, host: str, name: str = "shell.aspx") -> str:
    return json.dumps({"TimeGenerated": time, "SystemAlertId": alert_id, "ProviderName": "MDATP",
                       "AlertName": "Web shell", "Entities": json.dumps([
                           {"$id": "2", "Type": "host", "HostName": host},
                           {"$id": "3", "Type": "file", "Name": name, "Directory": "C:\\inetpub\\wwwroot"}])})


def _request(time: str, host: str, ip: str, stem: str = "/shell.aspx") -> str:
    return json.dumps({"TimeGenerated": time, "Computer": host, "sComputerName": host, "cIP": ip,
                       "csUriStem": stem, "csMethod": "POST", "scStatus": "200", "sSiteName": "W3SVC1"})


def _deliver(spark, lake, root, batch: str, alerts=(), requests=()):
    """One export delivery: new files, landed and transformed."""
    if alerts:
        write_lines(root / "alerts" / batch / "PT05M.json", list(alerts))
        land(spark, lake, "security_alert", str(root / "alerts"))
    if requests:
        write_lines(root / "iis" / batch / "PT05M.json", list(requests))
        land(spark, lake, "w3c_iis_log", str(root / "iis"))
    transform(spark, lake, CFG)


def _gold(lake):
    return lake.read(T.ATTACKER_SUMMARY.name).select("AttackerIP", "HostName", "AlertIds")


def test_incremental_hunt_takes_late_alerts_by_ingestion(spark, lake, tmp_path):
    _deliver(spark, lake, tmp_path, "b1", alerts=[_alert("A1", "2026-11-02T23:30:00Z", "web01")],
             requests=[_request("2026-11-01T10:00:00Z", "web01", "203.0.113.5"),
                       _request("2026-11-01T10:00:00Z", "web02", "203.0.113.9")])
    first = I.run(spark, lake, CFG, AS_OF)
    assert first.hunt.published and first.new_alerts == 1
    # an alert raised two days earlier, exported late: outside any "last hour" window, still hunted
    _deliver(spark, lake, tmp_path, "b2", alerts=[_alert("A2", "2026-11-01T00:30:00Z", "web02")])
    second = I.run(spark, lake, CFG, AS_OF)
    assert second.new_alerts == 1 and second.retried_alerts == 0 and second.hunt.published
    assertDataFrameEqual(_gold(lake), spark.createDataFrame(
        [("203.0.113.5", "web01", ["A1"]), ("203.0.113.9", "web02", ["A2"])], _gold(lake).schema))


def test_watermark_moves_only_after_publishing(spark, lake, tmp_path):
    _deliver(spark, lake, tmp_path, "b1", alerts=[_alert("A1", "2026-11-02T23:30:00Z", "web01")],
             requests=[_request("2026-11-01T10:00:00Z", "web01", "203.0.113.5")])
    failed = I.run(spark, lake, {**CFG, "quality": {**CFG["quality"], "max_gold_rows": 0}}, AS_OF)
    assert not failed.hunt.published
    assert I.watermark(lake) == I.EPOCH
    assert not lake.exists(T.ATTACKER_SUMMARY.name) or lake.read(T.ATTACKER_SUMMARY.name).count() == 0
    retried = I.run(spark, lake, CFG, AS_OF)            # the failed window is claimed again at once
    assert retried.from_ingested == I.EPOCH and retried.new_alerts == 1 and retried.hunt.published
    assert I.watermark(lake) == retried.to_ingested > I.EPOCH


def test_a_second_run_on_an_empty_window_is_a_no_op(spark, lake, tmp_path):
    _deliver(spark, lake, tmp_path, "b1", alerts=[_alert("A1", "2026-11-02T23:30:00Z", "web01")],
             requests=[_request("2026-11-01T10:00:00Z", "web01", "203.0.113.5")])
    I.run(spark, lake, CFG, AS_OF)
    version = lake.delta(T.ATTACKER_SUMMARY.name).history(1).first()["version"]
    again = I.run(spark, lake, CFG, AS_OF)
    assert again.claimed and again.new_alerts == 0 and again.hunt is None
    assert lake.delta(T.ATTACKER_SUMMARY.name).history(1).first()["version"] == version


def test_two_runs_at_once_cannot_both_claim_the_same_window(spark, lake):
    lake.ensure(T.HUNT_WATERMARK)
    holders, errors = {}, []

    def attempt(run_id):
        try:
            holders[run_id] = I.claim(lake, I.EPOCH, run_id, timedelta(hours=2))
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(f"run-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    winners = {h for h in holders.values()}
    assert len(winners) == 1 and winners <= {"run-0", "run-1"}, holders
    rows = lake.read(T.HUNT_WATERMARK.name).where(F.col("from_ingested") == F.lit(I.EPOCH))
    assert [r.run_id for r in rows.collect()] == list(winners)


def test_a_dead_runs_claim_is_taken_over_after_the_timeout(spark, lake):
    lake.ensure(T.HUNT_WATERMARK)
    assert I.claim(lake, I.EPOCH, "dead", timedelta(hours=2)) == "dead"
    assert I.claim(lake, I.EPOCH, "next", timedelta(hours=2)) == "dead"      # still within the timeout
    assert I.claim(lake, I.EPOCH, "next", timedelta(seconds=0)) == "next"    # timed out: taken over


def test_alert_whose_host_has_no_logs_waits_and_is_hunted_when_they_arrive(spark, lake, tmp_path):
    _deliver(spark, lake, tmp_path, "b1", alerts=[_alert("A1", "2026-11-02T23:30:00Z", "web07")],
             requests=[_request("2026-11-01T10:00:00Z", "web01", "198.51.100.1", "/index.aspx")])
    first = I.run(spark, lake, CFG, AS_OF)
    assert first.hunt.published and first.waiting == [("A1", "web07")]
    outcome = [o for o in first.hunt.gate.outcomes if o.suite == "alerts_waiting"]
    assert outcome and not outcome[0].success                     # the quality record names the waiting alert
    _deliver(spark, lake, tmp_path, "b2", requests=[_request("2026-11-02T12:00:00Z", "web07", "203.0.113.7")])
    second = I.run(spark, lake, CFG, AS_OF + timedelta(hours=1))
    assert second.new_alerts == 0 and second.retried_alerts == 1 and second.waiting == []
    assertDataFrameEqual(_gold(lake), spark.createDataFrame([("203.0.113.7", "web07", ["A1"])], _gold(lake).schema))


def test_waiting_alert_is_given_up_after_the_retry_time(spark, lake, tmp_path):
    _deliver(spark, lake, tmp_path, "b1", alerts=[_alert("A1", "2026-11-02T23:30:00Z", "web07")],
             requests=[_request("2026-11-01T10:00:00Z", "web01", "198.51.100.1", "/index.aspx")])
    assert I.run(spark, lake, CFG, AS_OF).waiting == [("A1", "web07")]
    later = I.run(spark, lake, CFG, AS_OF + timedelta(hours=25))
    assert later.retried_alerts == 0 and later.expired == ["A1"]


@pytest.mark.parametrize("args", [["--incremental", "--alerts-from", "2026-11-01T00:00:00Z"]])
def test_incremental_rejects_explicit_alert_windows(args, tmp_path, capsys):
    from jobs.cli import main

    assert main(["hunt", "--lake", str(tmp_path), *args]) == 2
    assert "--incremental" in capsys.readouterr().err
