"""Landing throughput (issue 2): `shelltrace land` of a generated W3CIISLog data-export tree (JSON lines, PT05M blobs)
beside a plain Spark JSON-to-Parquet copy of the same files in the same session. Target: land >= 60% of the copy.

    python benchmarks/land_throughput.py                    # 1,000,000 rows
    python benchmarks/land_throughput.py --rows 100000
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from common import machine, save, session, timed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="IIS rows to generate (one day; default 1,000,000)")
    ap.add_argument("--workdir", help="data and lakes go here (default: a temporary folder, removed at the end)")
    ap.add_argument("--master", help="Spark master (default local[*])")
    ap.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    args = ap.parse_args(argv)

    from jobs.generate import generate
    from jobs.io import Lake
    from jobs.land import land
    from schemas.sentinel import W3C_IIS_LOG

    work = Path(args.workdir or tempfile.mkdtemp(prefix="shelltrace-bench-land-"))
    figures: dict = {"rows_requested": args.rows}
    try:
        print(f"generating {args.rows} rows under {work}")
        with timed(figures, "generate_s"):
            m = generate(str(work / "exports"), days=1, requests_per_day=args.rows, layout="PT05M")
        spark, _ = session(args.master, args.overrides)
        # warm-up: JIT and Delta classes, so neither side pays the session's first-query costs
        warm = generate(str(work / "warm"), days=1, requests_per_day=2000)
        land(spark, Lake(spark, root=str(work / "warm-lake")), "w3c_iis_log", warm["iis_dir"])
        spark.read.schema(W3C_IIS_LOG).option("recursiveFileLookup", "true").json(warm["iis_dir"]) \
            .write.mode("overwrite").parquet(str(work / "warm-parquet"))

        with timed(figures, "plain_copy_s"):
            (spark.read.schema(W3C_IIS_LOG).option("recursiveFileLookup", "true").json(m["iis_dir"])
             .write.mode("overwrite").parquet(str(work / "parquet")))
        copied = spark.read.parquet(str(work / "parquet")).count()
        lake = Lake(spark, root=str(work / "lake"))
        with timed(figures, "land_s"):
            result = land(spark, lake, "w3c_iis_log", m["iis_dir"])
        print(result.summary())
        figures.update(rows_copied=copied, rows_landed=result.rows_landed, files=result.files_landed,
                       bronze_files=lake.delta("bronze/w3c_iis_log").detail().first()["numFiles"],
                       input_mb=round(sum(f.stat().st_size for f in Path(m["iis_dir"]).rglob("*") if f.is_file())
                                      / 1e6, 1))
        figures["plain_copy_rows_per_s"] = round(copied / figures["plain_copy_s"])
        figures["land_rows_per_s"] = round(result.rows_read / figures["land_s"])
        figures["land_vs_copy"] = round(figures["land_rows_per_s"] / figures["plain_copy_rows_per_s"], 3)
        print(f"plain Spark JSON->Parquet: {figures['plain_copy_rows_per_s']:,} rows/s; shelltrace land: "
              f"{figures['land_rows_per_s']:,} rows/s; land/copy = {figures['land_vs_copy']:.0%} (target >= 60%); "
              f"{figures['files']} blobs -> {figures['bronze_files']} bronze files")
        save("land_throughput", {"machine": machine(), **figures})
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
