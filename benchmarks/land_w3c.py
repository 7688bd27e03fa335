"""Landing throughput: native IIS W3C logs (u_ex*.log) vs the Log Analytics JSON-lines export of the same requests.

Generates the same requests twice with one seed (jobs.generate: `iis_format="w3c"` and `"jsonl"`), lands each into
a fresh lake in one Spark session, and prints rows/second for each and the ratio. A small warm-up landing of both
formats runs first (JIT, Delta classes), so neither format pays the session's start-up costs.

    python benchmarks/land_w3c.py                       # 1 day x 1,000,000 requests
    python benchmarks/land_w3c.py --requests 200000 --master 'local[4]'
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import workdir  # noqa: E402
from jobs.common import setup_logging  # noqa: E402
from jobs.config import load_config  # noqa: E402
from jobs.generate import generate  # noqa: E402
from jobs.io import Lake  # noqa: E402
from jobs.land import land  # noqa: E402
from jobs.session import get_spark  # noqa: E402

FORMATS = ("w3c", "jsonl")


def _size(path: str) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def _land_once(spark, work: Path, name: str, iis_dir: str, pattern: str | None) -> dict:
    lake = Lake(spark, root=str(work / f"lake-{name}"))
    t0 = time.perf_counter()
    result = land(spark, lake, "w3c_iis_log", iis_dir, w3c_path_pattern=pattern)
    seconds = time.perf_counter() - t0
    return {"result": result, "seconds": seconds}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1_000_000, help="requests per day (default 1,000,000)")
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=5_000, help="requests of the warm-up landing (0: none)")
    ap.add_argument("--workdir", help="where data and lakes go (default: a temporary folder, removed at the end)")
    ap.add_argument("--master", help="Spark master (default from config: local[*])")
    ap.add_argument("--conf", help="environment config (local, databricks, a YAML path)")
    ap.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)

    setup_logging(args.verbose)
    if not args.verbose:
        logging.getLogger("shelltrace").setLevel(logging.WARNING)
    cfg = load_config(args.conf, args.overrides)
    pattern = (cfg.get("land") or {}).get("w3c_path_pattern")
    with workdir(args.workdir, "shelltrace-bench-") as work:
        data = {}
        for fmt in FORMATS:
            t0 = time.perf_counter()
            manifest = generate(str(work / f"data-{fmt}"), days=args.days, requests_per_day=args.requests,
                                seed=args.seed, iis_format=fmt)
            data[fmt] = manifest
            print(f"generated {fmt:5}: {manifest['counts']['iis_rows']:,} rows in {manifest['counts']['iis_files']:,} "
                  f"files, {_size(manifest['iis_dir']) / 1e6:,.1f} MB ({time.perf_counter() - t0:.1f}s)", flush=True)
        if data["w3c"]["counts"]["iis_rows"] != data["jsonl"]["counts"]["iis_rows"]:
            raise SystemExit("the two formats hold different request counts: not comparable")

        spark = get_spark(cfg, master=args.master, verbose=args.verbose, app_name="shelltrace-bench-land-w3c")
        print(f"spark {spark.version}, master {spark.sparkContext.master}, "
              f"shuffle partitions {spark.conf.get('spark.sql.shuffle.partitions')}, cores {os.cpu_count()}",
              flush=True)
        if args.warmup:
            for fmt in FORMATS:
                wm = generate(str(work / f"warm-{fmt}"), days=1, requests_per_day=args.warmup, seed=args.seed + 1,
                              iis_format=fmt)
                _land_once(spark, work, f"warm-{fmt}", wm["iis_dir"], pattern)

        runs = {}
        for fmt in FORMATS:
            runs[fmt] = run = _land_once(spark, work, fmt, data[fmt]["iis_dir"], pattern)
            r = run["result"]
            if r.rows_read != r.rows_landed + r.rows_quarantined:
                raise SystemExit(f"{fmt}: rows read {r.rows_read} != landed {r.rows_landed} + quarantined "
                                 f"{r.rows_quarantined}")

        print()
        print(f"{'format':8}{'files':>8}{'MB':>9}{'rows read':>12}{'landed':>12}{'quarant.':>10}{'seconds':>10}"
              f"{'rows/s':>12}")
        rate = {}
        for fmt in FORMATS:
            r, s = runs[fmt]["result"], runs[fmt]["seconds"]
            rate[fmt] = r.rows_read / s if s else float("nan")
            print(f"{fmt:8}{r.files_landed:>8,}{_size(data[fmt]['iis_dir']) / 1e6:>9,.1f}{r.rows_read:>12,}"
                  f"{r.rows_landed:>12,}{r.rows_quarantined:>10,}{s:>10.1f}{rate[fmt]:>12,.0f}")
        print(f"\nw3c / jsonl rows per second: {rate['w3c'] / rate['jsonl']:.2f}")
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
