"""Where a land's CPU time goes (issue 2): one warm `shelltrace land` of a generated W3CIISLog export, recorded with
Java Flight Recorder on the driver JVM (local mode: the executors run in it), then each CPU sample is put in the
bucket of the innermost frame that names a known cost (Parquet writing, the JSON parse, row copies between plan
nodes, ...). Prints the buckets and the hottest methods; keeps the recording for `jfr` or JDK Mission Control.

    python benchmarks/profile_land.py                       # 1,000,000 rows
    python benchmarks/profile_land.py --rows 200000 --top 30 --keep /tmp/land.jfr

Needs the JDK's `jcmd` and `jfr` (Java 17 has both). Run it alone on the machine: it measures, it does not assert.
The recorded land runs about twice as slow as an unrecorded one here (stack sampling of deep Spark frames): read the
shares, not the wall time; `land_throughput.py` gives the speed.
"""
from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from common import session

# (bucket, substrings of a frame's class.method); a sample goes to the bucket matched by its innermost frame
BUCKETS = [
    ("Parquet write", ["ParquetWriteSupport", "ColumnWriterBase", "InternalParquetRecordWriter", "ParquetOutputWriter",
                       "ColumnChunkPageWriteStore", "CodecFactory", "Snappy", "DictionaryValuesWriter"]),
    ("Delta statistics", ["DeltaTaskStatisticsTracker", "DeltaJobStatisticsTracker"]),
    ("json_object_keys", ["jsonObjectKeys"]),
    ("from_json (Jackson)", ["JacksonParser", "JsonToStructs", "JsonExpressionEvalUtils", "fasterxml"]),
    ("split lines", ["UTF8String.split", "StringSplit", "String.split"]),
    ("read files", ["HadoopFileWholeTextReader", "WholeTextFileRecordReader", "LineRecordReader", "FileScanRDD"]),
    ("timestamp parse", ["stringToTimestamp", "TimestampFormatter", "ToTimestamp"]),
    ("trim / cast", ["StringTrim", "UTF8String.trim", "UTF8String.toLong", "UTF8String.toInt"]),
    ("ANSI add", ["addExact"]),
    ("hash aggregate", ["hashAgg"]),
    ("row copies between nodes", ["UnsafeWriter", "UnsafeRowWriter", "copyMemory", "BufferHolder"]),
    ("projection code", ["SpecificUnsafeProjection"]),
    ("whole-stage code", ["GeneratedIteratorForCodegenStage"]),
]


def _frame(fr: dict) -> str:
    m = fr["method"]
    return m["type"]["name"].split("/")[-1] + "." + m["name"]


def summarise(recording: Path, top: int) -> dict:
    out = subprocess.run(["jfr", "print", "--json", "--stack-depth", "96", "--events", "jdk.ExecutionSample",
                          str(recording)], capture_output=True, text=True, check=True).stdout
    events = json.loads(out)["recording"]["events"]
    buckets, hot = collections.Counter(), collections.Counter()
    for e in events:
        st = e["values"].get("stackTrace")
        if not st or not st["frames"]:
            buckets["(no stack)"] += 1
            continue
        frames = [_frame(f) for f in st["frames"]]
        hot[frames[0]] += 1
        best, best_i = "other", len(frames)
        for label, keys in BUCKETS:
            i = next((i for i, n in enumerate(frames) if any(k in n for k in keys)), None)
            if i is not None and i < best_i:
                best, best_i = label, i
        buckets[best] += 1
    total = max(1, len(events))
    return {"samples": len(events),
            "buckets": {k: round(v / total, 3) for k, v in buckets.most_common()},
            "hottest_methods": {k: round(v / total, 3) for k, v in hot.most_common(top)}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="IIS rows to generate (default 1,000,000)")
    ap.add_argument("--top", type=int, default=25, help="hottest methods to print (default 25)")
    ap.add_argument("--keep", metavar="FILE", help="keep the JFR recording here")
    ap.add_argument("--no-full-warmup", dest="full_warmup", action="store_false",
                    help="profile the JVM's first land of the full size (JIT compilation included); by default a copy "
                         "of the export is landed once first, unrecorded, as a scheduled run's JVM would have done")
    ap.add_argument("--master", help="Spark master (default local[*])")
    ap.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    for tool in ("jcmd", "jfr"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: it comes with the JDK (Java 17)")

    from jobs.generate import generate
    from jobs.io import Lake
    from jobs.land import land

    work = Path(tempfile.mkdtemp(prefix="shelltrace-profile-land-"))
    recording = Path(args.keep) if args.keep else work / "land.jfr"
    try:
        m = generate(str(work / "exports"), days=1, requests_per_day=args.rows, layout="PT05M")
        spark, _ = session(args.master, args.overrides)
        pid = str(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
        lake = Lake(spark, root=str(work / "lake"))
        # warm-up: tables created, classes loaded, the land's code compiled once
        land(spark, lake, "w3c_iis_log", generate(str(work / "warm"), days=1, requests_per_day=2000)["iis_dir"])
        if args.full_warmup:
            t0 = time.perf_counter()
            land(spark, lake, "w3c_iis_log", shutil.copytree(m["iis_dir"], str(work / "exports-warm")))
            print(f"warm-up land of the same size (not recorded): {time.perf_counter() - t0:.1f} s")
        subprocess.run(["jcmd", pid, "JFR.start", "name=shelltrace-land", "settings=default",
                        f"filename={recording}"], check=True, capture_output=True)
        t0 = time.perf_counter()
        result = land(spark, lake, "w3c_iis_log", m["iis_dir"])
        wall = time.perf_counter() - t0
        subprocess.run(["jcmd", pid, "JFR.stop", "name=shelltrace-land"], check=True, capture_output=True)
        figures = summarise(recording, args.top)
        print(f"recorded land of {result.rows_read:,} rows: {wall:.1f} s (recording on: read the shares, not this time); "
              f"{figures['samples']} CPU samples")
        print("by cost (innermost matching frame):")
        for k, v in figures["buckets"].items():
            print(f"  {v:6.1%}  {k}")
        print("hottest methods (self time):")
        for k, v in figures["hottest_methods"].items():
            print(f"  {v:6.1%}  {k}")
        if args.keep:
            print(f"recording kept: {recording}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
