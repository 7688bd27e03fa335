"""Landing throughput (issue 2): `shelltrace land` of a generated W3CIISLog data-export tree (JSON lines, PT05M blobs)
beside a plain Spark JSON-to-Parquet copy of the same files in the same session. Target: land >= 60% of the copy.

Both run --repeat times (default 3), alternating, and the medians are compared: on a small shared machine one run of
either varies by a third. Each land is a scheduled run's: it lands new files (a copy of the tree under its own path)
into a lake whose tables exist (created by the warm-up); creating the tables, once in a lake's life, is timed apart
(`create_tables_s`).

    python benchmarks/land_throughput.py                    # 1,000,000 rows
    python benchmarks/land_throughput.py --rows 100000 --repeat 1
"""
from __future__ import annotations

import argparse
import shutil
import statistics
from pathlib import Path

from common import add_run_arguments, machine, save, session, timed, workdir


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="IIS rows to generate (one day; default 1,000,000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side, alternating; medians compared")
    add_run_arguments(ap, "data and lakes")
    args = ap.parse_args(argv)

    from jobs.generate import generate
    from jobs.io import Lake
    from jobs.land import land
    from schemas import tables as T
    from schemas.sentinel import W3C_IIS_LOG

    figures: dict = {"rows_requested": args.rows}
    with workdir(args.workdir, "shelltrace-bench-land-") as work:
        print(f"generating {args.rows} rows under {work}")
        with timed(figures, "generate_s"):
            m = generate(str(work / "exports"), days=1, requests_per_day=args.rows, layout="PT05M")
        spark, _ = session(args.master, args.overrides)
        lake = Lake(spark, root=str(work / "lake"))
        # warm-up: JIT and Delta classes, so neither side pays the session's first-query costs; the lake's tables
        # are created here (timed apart)
        warm = generate(str(work / "warm"), days=1, requests_per_day=2000)
        with timed(figures, "create_tables_s"):
            for tdef in (T.LANDED_FILES, T.bronze("w3c_iis_log"), T.quarantine("w3c_iis_log")):
                lake.ensure(tdef)
        land(spark, lake, "w3c_iis_log", warm["iis_dir"])
        spark.read.schema(W3C_IIS_LOG).option("recursiveFileLookup", "true").json(warm["iis_dir"]) \
            .write.mode("overwrite").parquet(str(work / "warm-parquet"))

        copies, lands, results = [], [], []
        for i in range(max(1, args.repeat)):
            src = m["iis_dir"] if i == 0 else shutil.copytree(m["iis_dir"], str(work / f"exports-{i}"))
            run: dict = {}
            with timed(run, f"plain_copy_s[{i}]"):
                (spark.read.schema(W3C_IIS_LOG).option("recursiveFileLookup", "true").json(src)
                 .write.mode("overwrite").parquet(str(work / "parquet")))
            copies.append(run[f"plain_copy_s[{i}]"])
            with timed(run, f"land_s[{i}]"):
                results.append(land(spark, lake, "w3c_iis_log", src))
            lands.append(run[f"land_s[{i}]"])
            print(results[-1].summary())
        result = results[0]
        copied = spark.read.parquet(str(work / "parquet")).count()
        figures.update(plain_copy_runs_s=copies, land_runs_s=lands, plain_copy_s=statistics.median(copies),
                       land_s=statistics.median(lands))
        bronze = lake.read("bronze/w3c_iis_log")
        figures.update(rows_copied=copied, rows_landed=result.rows_landed, files=result.files_landed,
                       bronze_files=len(bronze.where(bronze["_run_id"] == result.run_id).inputFiles()),
                       input_mb=round(sum(f.stat().st_size for f in Path(m["iis_dir"]).rglob("*") if f.is_file())
                                      / 1e6, 1))
        if any(r.rows_read != result.rows_read for r in results):
            raise SystemExit(f"the runs read different row counts: {[r.rows_read for r in results]}")
        figures["plain_copy_rows_per_s"] = round(copied / figures["plain_copy_s"])
        figures["land_rows_per_s"] = round(result.rows_read / figures["land_s"])
        figures["land_vs_copy"] = round(figures["land_rows_per_s"] / figures["plain_copy_rows_per_s"], 3)
        print(f"plain Spark JSON->Parquet: {figures['plain_copy_rows_per_s']:,} rows/s; shelltrace land: "
              f"{figures['land_rows_per_s']:,} rows/s; land/copy = {figures['land_vs_copy']:.0%} (target >= 60%); "
              f"{figures['files']} blobs -> {figures['bronze_files']} bronze files (medians of {len(lands)} runs)")
        save("land_throughput", {"machine": machine(), **figures})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
