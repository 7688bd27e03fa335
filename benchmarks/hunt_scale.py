"""Transform and hunt at scale (issues 3 and 4): a generated 7-day W3CIISLog export (default 750,000 requests a day,
5.25 million) with planted shells is landed, transformed and hunted; prints each stage's time, the share of
silver/iis_request files the hunt read, and the quality gate's time as a share of the hunt's.

    python benchmarks/hunt_scale.py                          # 7 days x 750,000
    python benchmarks/hunt_scale.py --days 2 --per-day 20000 # a quick run
"""
from __future__ import annotations

import argparse

from common import add_run_arguments, driver_jvm_peak_mb, machine, save, session, timed, workdir


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--per-day", type=int, default=750_000, help="IIS requests per day (default 750,000)")
    add_run_arguments(ap, "data and lake")
    args = ap.parse_args(argv)

    from jobs import hunt as H
    from jobs.generate import generate
    from jobs.io import Lake
    from jobs.land import land
    from jobs.transform import transform
    from schemas import tables as T

    f: dict = {"days": args.days, "requests_per_day": args.per_day}
    with workdir(args.workdir, "shelltrace-bench-hunt-") as work:
        print(f"generating {args.days} days x {args.per_day} requests under {work}")
        with timed(f, "generate_s"):
            m = generate(str(work / "exports"), days=args.days, requests_per_day=args.per_day)
        spark, cfg = session(args.master, args.overrides)
        lake = Lake(spark, root=str(work / "lake"))
        with timed(f, "land_alerts_s"):
            land(spark, lake, "security_alert", m["alerts_dir"])
        with timed(f, "land_iis_s"):
            r = land(spark, lake, "w3c_iis_log", m["iis_dir"])
        f["rows"] = r.rows_landed
        with timed(f, "transform_s"):
            t = transform(spark, lake, cfg)
        print(t.summary())
        (a_from, a_to), (l_from, l_to) = m["alert_window"], m["log_window"]
        w = H.resolve_windows(cfg, a_from, a_to, l_from, l_to)
        with timed(f, "hunt_s"):
            h = H.hunt(spark, lake, cfg, w)
        print(h.summary())
        f.update(candidates=h.candidates, matched_requests=h.matched_requests, gold_rows=h.rows,
                 silver_files_read=h.files_read, silver_files_total=h.files_total,
                 silver_files_read_share=round(h.files_read / max(h.files_total, 1), 3),
                 gate_s=round(h.gate.seconds, 2), gate_verdict=h.gate.verdict,
                 gate_share_of_hunt=round(h.gate.seconds / f["hunt_s"], 3),
                 hunt_without_gate_s=round(f["hunt_s"] - h.gate.seconds, 2),
                 land_rows_per_s=round(r.rows_read / f["land_iis_s"]),
                 transform_rows_per_s=round(f["rows"] / f["transform_s"]),
                 driver_jvm_peak_heap_mb=driver_jvm_peak_mb(spark))
        found = {(x.HostName, x.ShellLocation) for x in lake.read(T.ATTACKER_SUMMARY.name).collect()}
        f["planted_found"] = sum((p["host"], p["shell_location"]) in found for p in m["planted"]
                                 if p["expect"] == "match")
        f["planted_expected"] = sum(p["expect"] == "match" for p in m["planted"])
        print(f"rows {f['rows']:,}: land {f['land_iis_s']}s, transform {f['transform_s']}s, hunt {f['hunt_s']}s "
              f"(gate {f['gate_s']}s = {f['gate_share_of_hunt']:.0%} of the hunt); silver files read "
              f"{h.files_read}/{h.files_total} ({f['silver_files_read_share']:.0%}); planted found "
              f"{f['planted_found']}/{f['planted_expected']}")
        save("hunt_scale", {"machine": machine(), **f})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
