"""`shelltrace`: one command, a subcommand per job."""
from __future__ import annotations

import argparse
import importlib
import sys

from jobs.common import run_job

# subcommand -> (module, one-line help)
COMMANDS = {
    "land": ("jobs.land", "land Sentinel exports (JSON lines, CSV) into bronze Delta tables, exactly once per file"),
}

DESCRIPTION = """\
shelltrace: hunt web shells named by Defender for Endpoint alerts in IIS logs, over a Delta lake.

  land       exports -> bronze (bad records -> quarantine with a reason)
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


if __name__ == "__main__":
    sys.exit(main())
