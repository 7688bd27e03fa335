"""Where landing's time goes (issue 2): the pieces of `shelltrace land`, each run alone over the same generated
W3CIISLog export (JSON lines, PT05M blobs), beside the plain Spark JSON-to-Parquet copy the issue compares with.

What each step shows (all over the same files, same session, alternating, medians of --repeat runs):

    copy            spark.read.json(schema) -> Parquet: the issue's baseline (the schema given, as the land has it)
    copy_inferred   spark.read.json() -> Parquet with the schema inferred (an extra pass over the files): the most
                    literal "plain copy", and the more lenient baseline
    text_read       the files read as text lines and counted per file: the read every design pays once
    key_count       text lines + the number of top-level keys per line (json_object_keys), summed per file: what an
                    exact check for keys the schema lacks costs when it is not fused with the parse
    text_parse      whole files -> numbered lines (the land's explode_lines) -> from_json(schema) + each line's key
                    count -> Parquet: no check, no filter, no quarantine, no Delta, no bookkeeping. The floor of any
                    land that keeps line numbers and can see keys the schema lacks
    reader_delta    spark.read.json(schema) + the lineage columns (_source_file, _ingested_at, _run_id) appended to a
                    bronze Delta table: the floor of a land built on Spark's JSON reader, which silently drops keys
                    the schema lacks and cannot give line numbers
    land            `shelltrace land` (a scheduled run's: new files, tables that exist)

A land on Spark's JSON reader that stays exact needs at least reader_delta + key_count (+ the run's Delta
bookkeeping); the ratios printed at the end say how far each is from the 60% target.

    python benchmarks/land_floor.py                        # 1,000,000 rows, 3 runs each
    python benchmarks/land_floor.py --rows 100000 --repeat 1
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from common import add_run_arguments, machine, save, session, timed, workdir

STEPS = ("copy", "copy_inferred", "text_read", "key_count", "text_parse", "reader_delta", "land")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="IIS rows to generate (one day; default 1,000,000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each step, alternating; medians reported")
    add_run_arguments(ap, "data and lakes")
    args = ap.parse_args(argv)

    from pyspark.sql import functions as F

    from jobs.generate import generate
    from jobs.io import Lake, session_settings
    from jobs.land import land
    from pipelines.land import explode_lines
    from schemas import tables as T
    from schemas.sentinel import W3C_IIS_LOG

    figures: dict = {"rows_requested": args.rows}
    with workdir(args.workdir, "shelltrace-bench-floor-") as work:
        print(f"generating {args.rows} rows under {work}")
        m = generate(str(work / "exports"), days=1, requests_per_day=args.rows, layout="PT05M")
        src = m["iis_dir"]
        spark, _ = session(args.master, args.overrides)
        lakes = iter(range(10_000))

        def new_lake() -> Lake:
            lake = Lake(spark, root=str(work / f"lake-{next(lakes)}"))
            for tdef in (T.LANDED_FILES, T.bronze("w3c_iis_log"), T.quarantine("w3c_iis_log")):
                lake.ensure(tdef)
            return lake

        def reader():
            return spark.read.schema(W3C_IIS_LOG).option("recursiveFileLookup", "true").json(src)

        def text():
            return spark.read.format("text").option("recursiveFileLookup", "true").option("lineSep", "\n").load(src)

        def step(name: str):
            """The step's work as a callable; a lake it needs is made before, outside the timing."""
            if name == "copy":
                return lambda: reader().write.mode("overwrite").parquet(str(work / "parquet"))
            if name == "copy_inferred":
                return lambda: (spark.read.option("recursiveFileLookup", "true").json(src)
                                .write.mode("overwrite").parquet(str(work / "parquet-inferred")))
            if name == "text_parse":
                def parse():
                    whole = (spark.read.format("text").option("recursiveFileLookup", "true")
                             .option("wholetext", "true").load(src)
                             .select("value", F.col("_metadata.file_path").alias("_source_file")))
                    (whole.transform(explode_lines)
                     .select("_source_file", "_line", F.from_json("_text", W3C_IIS_LOG).alias("r"),
                             F.size(F.json_object_keys("_text")).alias("_keys"))
                     .select("r.*", "_source_file", "_line", "_keys")
                     .write.mode("overwrite").parquet(str(work / "parquet-text")))
                return parse
            if name in ("text_read", "key_count"):
                keys = F.coalesce(F.size(F.json_object_keys("value")), F.lit(0)) if name == "key_count" \
                    else F.length("value")
                return lambda: (text().groupBy(F.col("_metadata.file_path")).agg(F.sum(keys).alias("n"))
                                .write.format("noop").mode("overwrite").save())
            lake = new_lake()
            if name == "reader_delta":
                rows = reader().select("*", F.col("_metadata.file_path").alias("_source_file"),
                                       F.lit(None).cast("long").alias("_line"),
                                       F.lit(None).cast("map<string,string>").alias("_extra"),
                                       F.current_timestamp().alias("_ingested_at"), F.lit("floor").alias("_run_id"))

                def write():
                    with session_settings(spark, {"spark.sql.maxConcurrentOutputFileWriters": 64}):
                        lake.append(rows, "bronze/w3c_iis_log", optimize_write=False)
                return write
            return lambda: land(spark, lake, "w3c_iis_log", src)

        for name in STEPS:                               # warm-up: JIT, classes, the file listing cache
            step(name)()
        runs: dict = {name: [] for name in STEPS}
        for i in range(max(1, args.repeat)):
            for name in STEPS:
                work_fn = step(name)
                run: dict = {}
                with timed(run, f"{name}[{i}]"):
                    work_fn()
                runs[name].append(run[f"{name}[{i}]"])
        med = {name: statistics.median(ts) for name, ts in runs.items()}
        rows = spark.read.parquet(str(work / "parquet")).count()
        figures.update(rows=rows, runs_s=runs, median_s=med,
                       rows_per_s={k: round(rows / v) for k, v in med.items()},
                       vs_copy={k: round(med["copy"] / v, 3) for k, v in med.items()},
                       exact_reader_floor_s=round(med["reader_delta"] + med["key_count"], 2))
        figures["exact_reader_floor_vs_copy"] = round(med["copy"] / figures["exact_reader_floor_s"], 3)
        for name in STEPS:
            print(f"{name:>13}: {med[name]:6.2f} s  {figures['rows_per_s'][name]:>9,} rows/s  "
                  f"{figures['vs_copy'][name]:.0%} of the copy's rate")
        print(f"an exact land on Spark's JSON reader needs >= reader_delta + key_count = "
              f"{figures['exact_reader_floor_s']:.2f} s = {figures['exact_reader_floor_vs_copy']:.0%} of the copy's "
              f"rate, before its Delta bookkeeping (target: land >= 60%)")
        print(f"the lenient baseline, a copy inferring its schema, is {med['copy_inferred']:.2f} s: the land is "
              f"{med['copy_inferred'] / med['land']:.0%} of its rate; the bare text parse is "
              f"{med['copy'] / med['text_parse']:.0%} of the strict copy's")
        save("land_floor", {"machine": machine(), **figures})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
