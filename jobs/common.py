"""What every job shares: the common command-line options, logging, run ids, and the job harness."""
from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from datetime import datetime, timezone

from jobs.config import ConfigError, load_config

log = logging.getLogger("shelltrace")


class UserError(Exception):
    """A problem the user can fix (bad argument, missing input): printed as one line, exit status 2."""


EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_QUALITY = 0, 1, 2, 3


def add_common_arguments(parser: argparse.ArgumentParser, lake: bool = True) -> None:
    g = parser.add_argument_group("common options")
    g.add_argument("--conf", metavar="FILE", help="environment config: local, databricks, or a YAML path "
                   "(merged over conf/default.yaml)")
    g.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides",
                   help="override any config key, e.g. --set hunt.max_set_size=50 (repeatable; "
                        "spark.conf.<spark key>=value passes Spark settings)")
    if lake:
        g.add_argument("--lake", metavar="PATH", help="lake root folder or URI (tables at <lake>/bronze/..., "
                       "<lake>/silver/..., <lake>/gold/...); default: lake.root from config")
    g.add_argument("--master", metavar="URL", help="Spark master, e.g. spark://host:7077 (default local[*]; "
                   "ignored on Databricks, which uses the running session)")
    g.add_argument("--verbose", action="store_true", help="show Spark's own logging")


def config_from_args(args) -> dict:
    overrides = list(getattr(args, "overrides", []) or [])
    if getattr(args, "lake", None):
        overrides.append(f"lake.root={args.lake}")
    cfg = load_config(getattr(args, "conf", None), overrides)
    if getattr(args, "master", None):
        cfg.setdefault("spark", {})["master"] = args.master
    return cfg


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record is emitted (not the stream of the first call), so a job run
    after another in one process (tests, notebooks) never logs into a closed stream."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def setup_logging(verbose: bool = False) -> None:
    root = logging.getLogger("shelltrace")
    if not root.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
    if not verbose:
        logging.getLogger("py4j").setLevel(logging.ERROR)


def new_run_id(kind: str) -> str:
    """Short and unique: fits Delta's 32-character string statistics, so `_run_id` filters skip files."""
    return f"{kind}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def parse_ts(text: str | None) -> datetime | None:
    """ISO-8601 -> aware UTC datetime ('Z' or an offset; a naive value is UTC)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise UserError(f"not an ISO-8601 timestamp: {text!r}") from exc
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def run_job(name: str, body, args, spark=None) -> int:
    """Config, session, body(args, cfg, spark), exit code. `spark` may be passed in (tests, `run`)."""
    from jobs.session import get_spark

    setup_logging(getattr(args, "verbose", False))
    started = time.monotonic()
    try:
        cfg = config_from_args(args)
        needs_spark = getattr(sys.modules.get(getattr(body, "__module__", ""), None), "NEEDS_SPARK", True)
        session = spark or (get_spark(cfg, verbose=getattr(args, "verbose", False)) if needs_spark else None)
        code = body(args, cfg, session)
    except (UserError, ConfigError) as exc:
        print(f"shelltrace {name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    log.info("%s finished in %.1fs (exit %d)", name, time.monotonic() - started, code or 0)
    return code or 0


def module_main(name: str, add_arguments, body, argv=None) -> int:
    """`python -m jobs.<name>`: the same arguments as `shelltrace <name>`."""
    parser = argparse.ArgumentParser(prog=f"python -m jobs.{name}")
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_job(name, body, args)
