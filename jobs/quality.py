"""`shelltrace quality`: the latest quality-gate verdict and the history of runs (time, verdict, failed checks),
read from `<lake>/_quality/<run_id>/results.json`. Needs no Spark."""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys

from jobs.common import UserError, add_common_arguments, module_main
from jobs.io import absolute

NEEDS_SPARK = False


def records_dir(cfg: dict) -> str:
    configured = cfg.get("quality", {}).get("records_dir")
    if configured:
        return configured
    root = cfg.get("lake", {}).get("root")
    if not root:
        raise UserError("no quality records: give --lake PATH or --set quality.records_dir=PATH")
    return os.path.join(absolute(str(root)), "_quality")


def load_history(folder: str) -> list[dict]:
    runs = []
    for path in glob.glob(os.path.join(folder, "*", "results.json")):
        with open(path) as fh:
            data = json.load(fh)
        data["path"] = path
        runs.append(data)
    return sorted(runs, key=lambda r: r.get("checked_at", ""))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--last", type=int, default=20, help="runs shown in the history (default 20)")
    add_common_arguments(parser)


def body(args, cfg, spark=None) -> int:
    folder = records_dir(cfg)
    runs = load_history(folder)
    if not runs:
        print(f"no quality records under {folder} (a hunt writes one per run)")
        return 0
    last = runs[-1]
    failed = [o for o in last["outcomes"] if not o["success"]]
    print(f"latest: {last['run_id']} at {last['checked_at']}: {last['verdict']}")
    for o in failed:
        column = f"({o['column']})" if o.get("column") else ""
        print(f"  [{o['severity']}] {o['suite']}: {o['expectation']}{column}: "
              f"unexpected {o.get('unexpected_count')}, observed {o.get('observed')}")
    print(f"  results: {last['path']}")
    docs = os.path.join(folder, "docs", "index.html")
    if os.path.exists(docs):
        print(f"  data docs: {docs}")
    print(f"\nhistory ({min(len(runs), args.last)} of {len(runs)} runs):")
    print(f"  {'checked at':<33} {'run':<30} {'verdict':<21} failed checks")
    for r in runs[-args.last:]:
        names = [f"{o['suite']}:{o['expectation']}" + (f"({o['column']})" if o.get("column") else "")
                 for o in r["outcomes"] if not o["success"]]
        print(f"  {r['checked_at']:<33} {r['run_id']:<30} {r['verdict']:<21} {', '.join(names) or '-'}")
    return 0


def main(argv=None) -> int:
    return module_main("quality", add_arguments, body, argv)


if __name__ == "__main__":
    sys.exit(main())
