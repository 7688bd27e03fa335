"""The README's first command: `shelltrace demo` runs end to end and finds exactly what was planted."""
from __future__ import annotations


def test_demo_finds_every_planted_shell_and_avoids_every_trap(spark, tmp_path, capsys):
    from jobs.cli import main

    code = main(["demo", "--out", str(tmp_path / "demo"), "--days", "2", "--requests-per-day", "400"])
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    assert "demo verdict: every planted shell found, every trap avoided" in out
    assert "quality gate: passed" in out
    assert " BAD " not in out
