"""`shelltrace`: one command, a subcommand per job."""
from __future__ import annotations

import argparse
import importlib
import sys

from jobs.common import run_job

# subcommand -> (module, one-line help)
COMMANDS = {
    "land": ("jobs.land", "land Sentinel exports (JSON lines, CSV) or native IIS logs into bronze Delta tables, exactly once per file"),
    "transform": ("jobs.transform", "bronze -> silver: alert entities, web-shell candidates, normalised requests"),
    "hunt": ("jobs.hunt", "candidates x requests -> attacker summary, checked and published to gold"),
    "run": ("jobs.run", "land both sources, transform and hunt in one go"),
    "maintain": ("jobs.maintain", "compact (OPTIMIZE, Z-order on silver requests), VACUUM with a safe retention, checkpoint"),
    "quality": ("jobs.quality", "the latest quality-gate verdict and the history of checked runs"),
    "demo": ("jobs.demo", "generate realistic exports with planted web shells and run everything on a local lake"),
}

DESCRIPTION = """\
shelltrace: hunt web shells named by Defender for Endpoint alerts in IIS logs, over a Delta lake.

  land       exports -> bronze (bad records -> quarantine with a reason)
  transform  bronze -> silver (entities with $ref resolved, candidates, normalised requests), incrementally
  hunt       silver -> gold attacker summary for alert and log windows
  run        land + transform + hunt
  maintain   OPTIMIZE (Z-order where the hunt looks), VACUUM (>= 168 h), checkpoints; idempotent
  quality    latest quality verdict and history
  demo       generated exports with planted shells -> local lake -> attacker table
Run `shelltrace <command> --help` for a command's options.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shelltrace", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_module=mod, _name=name)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_job(args._name, args._module.body, args)


def task() -> None:
    """Entry point for schedulers that call a function and ignore what it returns (Databricks python_wheel_task):
    the job's status becomes the process's exit status, so a failed quality gate (3) fails the task."""
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
