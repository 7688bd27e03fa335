"""Launcher for spark-submit: `spark-submit [options] --py-files shelltrace-<ver>-py3-none-any.whl submit.py <command>
[options]` runs `shelltrace <command> [options]` (land, transform, hunt, run, quality, demo) in the submitted driver.

A module inside jobs/ cannot be spark-submit's main file: Python puts the main file's folder first on sys.path, and
jobs/io.py would then shadow the standard library's `io`. This file lives outside the package and imports it from the
wheel given with --py-files (or from an installed shelltrace). It depends on nothing else in the repository: copy it
anywhere. The Spark master is spark-submit's --master (see jobs/session.py).
"""
import os
import sys


def main() -> int:
    import jobs
    from jobs.cli import main as shelltrace

    print(f"submit.py: shelltrace from {os.path.dirname(jobs.__file__)}", file=sys.stderr, flush=True)
    return shelltrace(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
