"""One SparkSession for the whole suite: local, UTC, few shuffle partitions, no UI, Delta enabled."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _find_shared() -> Path:
    """`../shared` beside the checkout; else $SHELLTRACE_SHARED; else beside the checkout's origin when that is a
    local clone (a fresh clone in a temporary folder, as the before-stop check makes)."""
    candidates = [REPO.parent / "shared"]
    if os.environ.get("SHELLTRACE_SHARED"):
        candidates.insert(0, Path(os.environ["SHELLTRACE_SHARED"]))
    try:
        origin = subprocess.run(["git", "-C", str(REPO), "config", "--get", "remote.origin.url"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        origin = ""
    if origin and "://" not in origin and Path(origin).is_dir():
        candidates.append(Path(origin).resolve().parent / "shared")
    return next((c for c in candidates if (c / "samples").is_dir()), candidates[0])


SHARED = _find_shared()
SAMPLES = SHARED / "samples" / "real"


@pytest.fixture(scope="session")
def spark():
    from jobs.config import load_config
    from jobs.session import get_spark

    cfg = load_config(None, ["spark.shuffle_partitions=2", "spark.conf.spark.ui.enabled=false",
                             "spark.conf.spark.sql.adaptive.coalescePartitions.initialPartitionNum=2",
                             "spark.conf.spark.default.parallelism=2"])
    session = get_spark(cfg, master="local[2]", app_name="shelltrace-tests")
    yield session
    session.stop()


@pytest.fixture
def lake(spark, tmp_path):
    from jobs.io import Lake

    return Lake(spark, root=str(tmp_path / "lake"))


@pytest.fixture
def samples() -> Path:
    if not SAMPLES.exists():
        pytest.fail(f"shared samples not found at {SAMPLES}")
    return SAMPLES


def write_lines(path: Path, lines, gz: bool = False) -> Path:
    import gzip

    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line + "\n" for line in lines).encode()
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    return path


def export_blob(root: Path, ts: str, minute_layout: bool = True) -> Path:
    """Folder of a Log Analytics data-export blob for a 'YYYY-MM-DDTHH:MM' time."""
    y, mo, d = ts[0:4], ts[5:7], ts[8:10]
    h, mi = ts[11:13], ts[14:16]
    base = root / "WorkspaceResourceId=" / "subscriptions" / "0000-sub" / "resourcegroups" / "rg" / "providers" / \
        "microsoft.operationalinsights" / "workspaces" / "ws" / f"y={y}" / f"m={mo}" / f"d={d}" / f"h={h}"
    return base / (f"m={mi}" if minute_layout else "m=00") / ("PT05M.json" if minute_layout else "PT1H.json")


os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)
