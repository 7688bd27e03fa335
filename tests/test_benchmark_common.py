"""The benchmarks' shared working folder (benchmarks/common.workdir): a temporary one never outlives its run, a given
one is never removed."""
from __future__ import annotations

import pytest

from tests import benchmark_modules

C = benchmark_modules.load("common")


def test_a_temporary_benchmark_workdir_is_removed_even_when_the_run_fails():
    with pytest.raises(RuntimeError, match="run failed"):
        with C.workdir(None, "shelltrace-test-workdir-") as work:
            (work / "lake").mkdir()
            (work / "lake" / "part.parquet").write_bytes(b"x")
            raise RuntimeError("run failed")
    assert work.name.startswith("shelltrace-test-workdir-") and not work.exists()


def test_a_given_benchmark_workdir_is_created_and_kept(tmp_path):
    given = tmp_path / "bench" / "work"
    with C.workdir(str(given), "unused-") as work:
        (work / "result.json").write_text("{}")
    assert work == given and (given / "result.json").read_text() == "{}"
