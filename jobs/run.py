"""`shelltrace run`: land both sources, transform, hunt: the whole pipeline in one session."""
from __future__ import annotations

import argparse
import logging
import sys

from jobs import hunt as hunt_job
from jobs.common import add_common_arguments, module_main
from jobs.io import Lake, absolute
from jobs.land import FORMATS, land, land_options
from jobs.transform import transform

log = logging.getLogger("shelltrace")


def run_pipeline(spark, cfg: dict, alerts: str, iis: str, windows, alerts_format="auto", iis_format="auto"):
    lake = Lake.from_config(spark, cfg)
    opts = land_options(cfg)
    results = [land(spark, lake, "security_alert", absolute(alerts), alerts_format, **opts),
               land(spark, lake, "w3c_iis_log", absolute(iis), iis_format, **opts)]
    for r in results:
        print(r.summary())
    t = transform(spark, lake, cfg)
    print(t.summary())
    h = hunt_job.hunt(spark, lake, cfg, windows)
    return lake, results, t, h


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--alerts", required=True, metavar="PATH", help="SecurityAlert export (folder or file)")
    parser.add_argument("--iis", required=True, metavar="PATH", help="W3CIISLog export (folder or file)")
    parser.add_argument("--alerts-format", default="auto", choices=FORMATS)
    parser.add_argument("--iis-format", default="auto", choices=FORMATS)
    hunt_job.add_window_arguments(parser)
    add_common_arguments(parser)


def body(args, cfg, spark) -> int:
    windows = hunt_job.windows_from_args(cfg, args)
    lake, _, _, h = run_pipeline(spark, cfg, args.alerts, args.iis, windows, args.alerts_format, args.iis_format)
    return hunt_job.finish(lake, cfg, h)


def main(argv=None) -> int:
    return module_main("run", add_arguments, body, argv)


if __name__ == "__main__":
    sys.exit(main())
