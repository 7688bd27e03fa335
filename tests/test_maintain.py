"""`shelltrace maintain`: compaction that keeps every row and the hunt's answer, Z-order only where fragmented, a
second run that changes nothing, snapshots older than the run still readable, and no VACUUM below 168 hours."""
from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs import cli
from jobs import hunt as H
from jobs.common import UserError
from jobs.io import Lake
from jobs.land import land
from jobs.maintain import maintain
from jobs.transform import transform
from schemas import tables as T
from tests.conftest import write_lines

CFG = {"hunt": {"providers": ["MDATP"], "script_extensions": [".aspx", ".php"], "max_set_size": 100,
                "max_pushdown_keys": 5000, "alert_lookback": "1h", "log_lookback": "7d"},
       "quality": {"max_gold_rows": 100000, "max_quarantine_share": 1.0},
       "transform": {"rows_per_file": 100000, "entity_max_depth": 8},
       "maintain": {"retain_hours": 168, "target_file_mb": 128}}
WINDOWS = ("2026-11-02T23:00:00Z", "2026-11-03T00:00:00Z", "2026-10-30T00:00:00Z", "2026-11-03T00:00:00Z")


def _request(time: str, host: str, ip: str, stem: str) -> str:
    return json.dumps({"TimeGenerated": time, "Computer": host, "sComputerName": host, "cIP": ip,
                       "csUriStem": stem, "csMethod": "POST", "scStatus": "200", "sSiteName": "W3SVC1"})


@pytest.fixture(scope="module")
def fragmented(spark, tmp_path_factory):
    """A lake as hourly runs leave it: three landing + transform runs, each adding a small file to both dates of
    silver/iis_request, then one hunt. Tests copy it."""
    root = tmp_path_factory.mktemp("maintain")
    lake = Lake(spark, root=str(root / "lake"))
    alert = json.dumps({"TimeGenerated": "2026-11-02T23:30:00Z", "SystemAlertId": "A1", "ProviderName": "MDATP",
                        "AlertName": "Web shell", "Entities": json.dumps([
                            {"$id": "2", "Type": "host", "HostName": "web01"},
                            {"$id": "3", "Type": "file", "Name": "shell.aspx", "Directory": "C:\\inetpub\\wwwroot"}])})
    write_lines(root / "alerts" / "PT05M.json", [alert])
    land(spark, lake, "security_alert", str(root / "alerts"))
    for batch in range(3):
        lines = [_request(f"2026-11-0{day}T1{batch}:{i % 60:02d}:00Z", f"web0{i % 3}", f"203.0.113.{i % 7}",
                          "/shell.aspx" if i % 5 == 0 else f"/page{i}.aspx")
                 for day in (1, 2) for i in range(40)]
        write_lines(root / "iis" / f"b{batch}" / "PT05M.json", lines)
        land(spark, lake, "w3c_iis_log", str(root / "iis"))
        transform(spark, lake, CFG)
    H.hunt(spark, lake, CFG, H.resolve_windows(CFG, *WINDOWS))
    return lake.root


def _files_per_date(lake: Lake):
    return {r["d"]: r["n"] for r in lake.read(T.IIS_REQUEST.name)
            .groupBy(F.col("_event_date").cast("string").alias("d"))
            .agg(F.countDistinct("_metadata.file_path").alias("n")).collect()}


SHARED_NAMES = [T.IIS_REQUEST.name, T.bronze("w3c_iis_log").name, T.ATTACKER_SUMMARY.name, T.IIS_REQUEST_STATS.name]


@pytest.fixture(scope="module")
def maintained(spark, fragmented, tmp_path_factory):
    """A copy of the fragmented lake, its state before, one maintain run, and its state after. Two orphan files sit
    in silver: one written 8 days ago (an abandoned write), one just now (perhaps a write in progress)."""
    lake = Lake(spark, root=str(tmp_path_factory.mktemp("maintained") / "lake"))
    shutil.copytree(fragmented, lake.root)
    folder = os.path.join(lake.path(T.IIS_REQUEST.name), "_event_date=2026-11-01")
    orphans = {"old": os.path.join(folder, "orphan-old.parquet"), "new": os.path.join(folder, "orphan-new.parquet")}
    for p in orphans.values():
        with open(p, "wb") as fh:
            fh.write(b"not referenced by the log")
    eight_days_ago = time.time() - 8 * 24 * 3600
    os.utime(orphans["old"], (eight_days_ago, eight_days_ago))
    before = {"silver": lake.read(T.IIS_REQUEST.name).collect(), "files_per_date": _files_per_date(lake),
              "silver_version": lake.delta(T.IIS_REQUEST.name).history(1).first()["version"],
              "gold": lake.read(T.ATTACKER_SUMMARY.name).drop("HuntRunId", "PublishedAt").collect()}
    result = maintain(spark, lake, CFG)
    return lake, before, result, orphans


@pytest.fixture(scope="module")
def maintained_twice(spark, maintained):
    """The maintained lake's tables (files, OPTIMIZE count) before a second run, made by the command."""
    lake = maintained[0]
    state = {n: (lake.delta(n).detail().first()["numFiles"],
                 lake.delta(n).history().where("operation = 'OPTIMIZE'").count()) for n in SHARED_NAMES}
    code = cli.main(["maintain", "--lake", lake.root, "--set", "transform.rows_per_file=100000"])
    return lake, state, code


def _report(result, name):
    return next(t for t in result.tables if t.name == name)


def test_maintain_zorders_fragmented_dates_and_keeps_every_row(spark, maintained):
    lake, before, result, _ = maintained
    assert before["files_per_date"] == {"2026-11-01": 3, "2026-11-02": 3}
    assert _report(result, T.IIS_REQUEST.name).optimized.startswith("z-ordered 2 date(s)")
    assert _files_per_date(lake) == {"2026-11-01": 1, "2026-11-02": 1}
    silver = lake.read(T.IIS_REQUEST.name)
    assertDataFrameEqual(silver, spark.createDataFrame(before["silver"], silver.schema))
    op = lake.delta(T.IIS_REQUEST.name).history().where("operation = 'OPTIMIZE'").first()
    assert json.loads(op["operationParameters"]["zOrderBy"]) == ["FileName", "HostName"]


def test_small_tables_are_bin_packed(maintained):
    lake, _, result, _ = maintained
    stats = _report(result, T.IIS_REQUEST_STATS.name)       # one small file per transform run
    assert (stats.files_before, stats.files_after) == (3, 1) and stats.optimized == "bin-packed 3 -> 1 file(s)"


def test_the_hunt_gives_the_same_gold_after_maintain(spark, maintained):
    lake, before, _, _ = maintained
    again = H.hunt(spark, lake, CFG, H.resolve_windows(CFG, *WINDOWS))
    assert again.rows == len(before["gold"]) > 0
    gold = lake.read(T.ATTACKER_SUMMARY.name).drop("HuntRunId", "PublishedAt")
    assertDataFrameEqual(gold, spark.createDataFrame(before["gold"], gold.schema))


def test_a_snapshot_read_before_maintain_reads_the_same_rows_after_it(spark, maintained):
    """What a hunt that started before maintain sees: its snapshot's files are still there (VACUUM keeps 168 h)."""
    lake, before, _, _ = maintained
    assert lake.delta(T.IIS_REQUEST.name).history(1).first()["version"] > before["silver_version"]
    old = (spark.read.format("delta").option("versionAsOf", before["silver_version"])
           .load(lake.path(T.IIS_REQUEST.name)))
    assertDataFrameEqual(old, spark.createDataFrame(before["silver"], old.schema))


def test_vacuum_removes_only_orphan_files_older_than_the_retention(maintained):
    _, _, result, orphans = maintained
    assert not os.path.exists(orphans["old"]) and os.path.exists(orphans["new"])
    assert _report(result, T.IIS_REQUEST.name).vacuumed == 1


def test_a_second_maintain_changes_no_table(maintained_twice):
    lake, state, code = maintained_twice
    assert code == 0
    assert {n: (lake.delta(n).detail().first()["numFiles"],
                lake.delta(n).history().where("operation = 'OPTIMIZE'").count()) for n in SHARED_NAMES} == state


def test_maintain_command_reports_each_table(maintained_twice, capfd):
    lake = maintained_twice[0]
    code = cli.main(["maintain", "--lake", lake.root, "--no-vacuum"])
    out = capfd.readouterr()
    assert code == 0
    assert f"maintain {T.IIS_REQUEST.name}: files 2 -> 2, not fragmented" in out.err
    # the lake's 12 tables (_staging/attacker_summary exists only once the gate has stopped a run)
    assert "maintain: 12 table(s), 0 changed" in out.out


def test_a_retention_under_168_hours_is_refused(spark, fragmented):
    with pytest.raises(UserError, match="below 168"):
        maintain(spark, Lake(spark, root=fragmented), CFG, retain_hours=24)
