"""`shelltrace demo`: generate a realistic export tree (several hosts and sites, days of benign traffic, planted web
shells with every trap of the contract), run the whole pipeline into a local lake, and print the attackers found
beside the ones that were planted."""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys

from jobs import hunt as hunt_job
from jobs.common import add_common_arguments, module_main
from jobs.generate import generate
from jobs.run import run_pipeline
from schemas import tables as T

log = logging.getLogger("shelltrace")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="./demo", metavar="DIR",
                        help="where the generated exports and the lake go (DIR/exports, DIR/lake); default ./demo")
    parser.add_argument("--days", type=int, default=3, help="days of IIS traffic (default 3)")
    parser.add_argument("--requests-per-day", type=int, default=5000, help="IIS requests per day (default 5000)")
    parser.add_argument("--keep", action="store_true", help="keep an existing DIR (default: start from scratch)")
    add_common_arguments(parser, lake=False)


def body(args, cfg, spark) -> int:
    out = os.path.abspath(args.out)
    if os.path.exists(out) and not args.keep:
        shutil.rmtree(out)
    exports = os.path.join(out, "exports")
    cfg.setdefault("lake", {})["root"] = os.path.join(out, "lake")
    manifest = generate(exports, days=args.days, requests_per_day=args.requests_per_day, malformed_lines=5,
                        layout="mixed", gzip_share=0.2)
    log.info("demo: generated %d alert rows and %d IIS rows under %s", manifest["counts"]["alert_rows"],
             manifest["counts"]["iis_rows"], exports)
    (a_from, a_to), (l_from, l_to) = manifest["alert_window"], manifest["log_window"]
    windows = hunt_job.resolve_windows(cfg, a_from, a_to, l_from, l_to)
    lake, _, _, h = run_pipeline(spark, cfg, manifest["alerts_dir"], manifest["iis_dir"], windows)
    print("\nAttackers published to gold (top 50):")
    cfg.setdefault("hunt", {})["show_top"] = 50
    code = hunt_job.finish(lake, cfg, h)
    if code:
        return code
    found = {(r.HostName, r.ShellLocation, r.AttackerIP) for r in
             lake.read(T.ATTACKER_SUMMARY.name).select("HostName", "ShellLocation", "AttackerIP").collect()}
    print("Planted shells and traps (expected = what the contract says; found = its attacker IPs in gold):")
    ok = True
    for p in manifest["planted"]:
        expected = p.get("expect") == "match"
        ips = [ip for ip in p["attacker_ips"] if ip]
        hits = [ip for ip in ips if (p["host"], p["shell_location"], ip) in found]
        good = hits == ips if expected else not hits
        ok &= good
        print(f"  {'match' if expected else 'none ':5}  {'found' if hits else '-    '}  {'ok ' if good else 'BAD'}  "
              f"{p['trap']:<32} {p['host']:<6} {p['shell_location']}  {', '.join(ips) or '(no client IP)'}")
    print(f"lake: {lake.root}   gold: {lake.path(T.ATTACKER_SUMMARY.name)}")
    print("demo verdict: " + ("every planted shell found, every trap avoided" if ok else "MISMATCH with the plan"))
    return 0 if ok else 1


def main(argv=None) -> int:
    return module_main("demo", add_arguments, body, argv)


if __name__ == "__main__":
    sys.exit(main())
