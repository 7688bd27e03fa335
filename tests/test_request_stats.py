"""The quality gate's per-host request counts (rows, rows without cIP, rows without a server name) in the log window:
read from silver/iis_request_stats for whole minutes plus the window's partial edge minutes from the requests, they
equal a count over the requests themselves, for a window that starts and ends inside a minute."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from pyspark.testing import assertDataFrameEqual

from jobs import hunt as HJ
from jobs.land import land
from jobs.transform import transform
from pipelines import quality as Q
from tests.conftest import write_lines

CFG = {"transform": {"rows_per_file": 1000, "entity_max_depth": 8}}
WINDOW = HJ.Windows(datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc), datetime(2026, 11, 2, 10, 0, tzinfo=timezone.utc),
                    datetime(2026, 11, 2, 10, 0, 20, tzinfo=timezone.utc),
                    datetime(2026, 11, 2, 10, 5, 15, tzinfo=timezone.utc))


def _request(time: str, host: str | None, ip: str | None = "203.0.113.5") -> str:
    row = {"TimeGenerated": f"2026-11-02T{time}Z", "csUriStem": "/default.aspx", "csMethod": "GET", "scStatus": "200"}
    if host:
        row.update(Computer=host, sComputerName=host)
    if ip:
        row["cIP"] = ip
    return json.dumps(row)


@pytest.fixture(scope="module")
def transformed(spark, tmp_path_factory):
    from jobs.io import Lake

    root = tmp_path_factory.mktemp("stats")
    lake = Lake(spark, root=str(root / "lake"))
    write_lines(root / "iis" / "PT05M.json", [
        _request("10:00:10", "web01"),             # before the window (same minute as its start)
        _request("10:00:30", "web01"),             # in the partial first minute
        _request("10:02:00", "web01", ip=None),    # whole minute, no client IP
        _request("10:03:59", "web02"),
        _request("10:04:00", None),                # no server name
        _request("10:05:10", "web02"),             # in the partial last minute
        _request("10:05:20", "web01"),             # after the window (same minute as its end)
    ])
    land(spark, lake, "w3c_iis_log", str(root / "iis"))
    transform(spark, lake, CFG)
    return lake


def _expected(spark, like):
    return spark.createDataFrame([("web01", 2, 1, 0), ("web02", 2, 0, 0), (None, 1, 0, 1)], like.schema)


def test_host_counts_from_the_minute_table_and_edge_minutes_are_exact(spark, transformed):
    actual = HJ.host_request_stats(transformed, WINDOW).select("HostName", "rows", "no_cip", "no_host")
    assertDataFrameEqual(actual, _expected(spark, actual))


def test_host_counts_from_a_scan_of_the_requests_agree(spark, transformed):
    scan = Q.host_request_stats(HJ._requests_between(transformed, WINDOW.logs_from, WINDOW.logs_to))
    assertDataFrameEqual(scan, _expected(spark, scan))
