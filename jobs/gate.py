"""The quality gate: Great Expectations suites defined in code, run on the hunt result and on the run's
inputs before anything is published (write-audit-publish).

Every expectation carries a severity: `critical` blocks publishing (the hunt exits 3 and gold stays as it was),
`warning` is reported and publishes. Each run writes `<lake>/_quality/<run_id>/results.json` (the verdict and every
expectation's outcome with a few offending rows) beside GX's own validation results, and rebuilds GX Data Docs under
`<lake>/_quality/docs/`.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines import quality as Q
from pipelines.normalize import script_regex

log = logging.getLogger("shelltrace")

CRITICAL, WARNING = "critical", "warning"
PASSED, PASSED_WITH_WARNINGS, FAILED = "passed", "passed with warnings", "failed"

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = rf"{_OCTET}(\.{_OCTET}){{3}}"
_H = "[0-9a-fA-F]{1,4}"
IPV6 = ("(" + "|".join([
    rf"({_H}:){{7}}{_H}", rf"({_H}:){{1,7}}:", rf"({_H}:){{1,6}}:{_H}", rf"({_H}:){{1,5}}(:{_H}){{1,2}}",
    rf"({_H}:){{1,4}}(:{_H}){{1,3}}", rf"({_H}:){{1,3}}(:{_H}){{1,4}}", rf"({_H}:){{1,2}}(:{_H}){{1,5}}",
    rf"{_H}:(:{_H}){{1,6}}", rf":((:{_H}){{1,7}}|:)", rf"::(ffff(:0{{1,4}})?:)?{IPV4}", rf"({_H}:){{1,4}}:{IPV4}",
]) + r")(%[0-9A-Za-z._-]+)?")
IP_REGEX = rf"^({IPV4}|{IPV6})$"
GOLD_INDEX = ["AttackerIP", "HostName", "SiteName", "ShellLocation"]


@dataclass
class Outcome:
    suite: str
    expectation: str
    column: str | None
    severity: str
    success: bool
    observed: Any = None
    unexpected_count: int | None = None
    examples: list = field(default_factory=list)

    def line(self) -> str:
        what = f"{self.expectation}({self.column})" if self.column else self.expectation
        obs = f"unexpected {self.unexpected_count}" if self.unexpected_count is not None else f"observed {self.observed}"
        ex = f"; e.g. {json.dumps(self.examples[:3], default=str)}" if self.examples else ""
        return f"[{self.severity}] {self.suite}: {what}: {obs}{ex}"


@dataclass
class GateResult:
    run_id: str
    verdict: str
    outcomes: list
    results_path: str | None = None
    docs_path: str | None = None
    seconds: float = 0.0

    @property
    def failed_critical(self) -> list:
        return [o for o in self.outcomes if not o.success and o.severity == CRITICAL]

    @property
    def warnings(self) -> list:
        return [o for o in self.outcomes if not o.success and o.severity != CRITICAL]


def gold_expectations(cfg: dict, logs_from: datetime, logs_to: datetime) -> list:
    """Critical checks of the attacker summary (the rows about to be published)."""
    import great_expectations as gx

    E = gx.expectations
    hunt, quality = cfg.get("hunt", {}), cfg.get("quality", {})
    max_set = int(hunt.get("max_set_size", 100))
    c = CRITICAL
    checks = [E.ExpectColumnValuesToNotBeNull(column=col, severity=c)
              for col in ("AttackerIP", "HostName", "ShellLocation", "FileName")]
    checks += [
        E.ExpectCompoundColumnsToBeUnique(column_list=GOLD_INDEX, ignore_row_if="never", severity=c),
        E.ExpectColumnValuesToMatchRegex(column="AttackerIP", regex=IP_REGEX, severity=c),
        E.ExpectColumnValuesToBeBetween(column="RequestCount", min_value=1, severity=c),
        E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="EndTime", column_B="StartTime", or_equal=True,
                                                  ignore_row_if="either_value_is_missing", severity=c),
        E.ExpectColumnValuesToBeBetween(column="StartTime", min_value=_naive(logs_from), max_value=_naive(logs_to),
                                        strict_max=True, severity=c),
        E.ExpectColumnValuesToBeBetween(column="EndTime", min_value=_naive(logs_from), max_value=_naive(logs_to),
                                        strict_max=True, severity=c),
        E.ExpectColumnValuesToMatchRegex(column="ShellLocation", regex=script_regex(hunt.get("script_extensions", [])),
                                         severity=c),
        E.ExpectColumnPairValuesToBeEqual(column_A="FileName", column_B="_last_segment", severity=c),
        E.ExpectColumnValuesToBeBetween(column="_n_AlertIds", min_value=1, severity=c),
        E.ExpectTableRowCountToBeBetween(min_value=0, max_value=int(quality.get("max_gold_rows", 100000)),
                                         severity=c),
    ]
    checks += [E.ExpectColumnValuesToBeBetween(column=f"_n_{col}", min_value=0, max_value=max_set, severity=c)
               for col in Q.SET_COLUMNS]
    return checks


def input_expectations(cfg: dict) -> dict[str, list]:
    """Warning-level checks of the run's inputs: frame name -> expectations."""
    import great_expectations as gx

    E = gx.expectations
    w = WARNING
    max_share = float(cfg.get("quality", {}).get("max_quarantine_share", 0.0))
    return {
        "quarantine_share": [E.ExpectColumnValuesToBeBetween(column="share", max_value=max_share, severity=w)],
        "entity_findings": [E.ExpectTableRowCountToEqual(value=0, severity=w)],
        "file_without_host": [E.ExpectTableRowCountToEqual(value=0, severity=w)],
        "candidate_host_logs": [E.ExpectColumnValuesToBeInSet(column="has_logs", value_set=[True], severity=w)],
        "iis_gaps": [E.ExpectColumnValuesToBeBetween(column="no_cip", max_value=0, severity=w),
                     E.ExpectColumnValuesToBeBetween(column="no_host", max_value=0, severity=w)],
    }


INPUT_INDEX = {"quarantine_share": ["source", "rows_read", "rows_quarantined"],
               "entity_findings": ["SystemAlertId", "Reason", "Detail"],
               "file_without_host": ["SystemAlertId", "FileName"],
               "candidate_host_logs": ["HostName", "AlertIds", "requests_in_window"],
               "iis_gaps": ["rows", "no_cip", "no_host"]}


def _naive(t: datetime) -> datetime:
    return t.astimezone(timezone.utc).replace(tzinfo=None) if t.tzinfo else t


def _context(docs_dir: str | None):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs_dir:
        ctx.add_data_docs_site(site_name="shelltrace", site_config={
            "class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": docs_dir}})
    return ctx


def _outcomes(suite: str, result) -> list[Outcome]:
    out = []
    for r in result.results:
        cfg = r.expectation_config
        res = r.result or {}
        column = cfg.kwargs.get("column") or cfg.kwargs.get("column_list") or (
            f"{cfg.kwargs.get('column_A')},{cfg.kwargs.get('column_B')}" if cfg.kwargs.get("column_A") else None)
        sev = getattr(cfg.severity, "value", cfg.severity) or CRITICAL
        examples = res.get("partial_unexpected_index_list") or res.get("partial_unexpected_list") or []
        if r.exception_info and r.exception_info.get("raised_exception"):
            examples = [r.exception_info.get("exception_message")]
        out.append(Outcome(suite, cfg.type, str(column) if column else None, str(sev).lower(), bool(r.success),
                           res.get("observed_value"), res.get("unexpected_count"), examples[:5]))
    return out


def _blocking(expectations) -> bool:
    return any(str(getattr(e.severity, "value", e.severity) or CRITICAL).lower() == CRITICAL for e in expectations)


def _checkpoint(ctx, gx, name: str, batch, suite, result_format: dict):
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    return ctx.checkpoints.add(gx.Checkpoint(name=name, validation_definitions=[vd], result_format=result_format))


def run_gate(run_id: str, frames: dict[str, tuple[DataFrame, list, list]], quality_dir: str | None) -> GateResult:
    """Validate each frame with its expectations. `frames`: name -> (DataFrame, expectations, index columns for
    offending-row examples). Records go to `quality_dir/<run_id>/` and Data Docs to `quality_dir/docs/`."""
    import great_expectations as gx

    started = time.monotonic()
    docs_dir = os.path.join(quality_dir, "docs") if quality_dir else None
    ctx = _context(docs_dir)
    source = ctx.data_sources.add_spark(name="shelltrace")
    # GX makes several passes per frame: the frames are small (the result about to be published, per-host and
    # per-source aggregates), so each is computed once and kept in memory for the checks
    cached = {name: df.persist() for name, (df, _, _) in frames.items()}
    try:
        outcomes, raw = [], {}
        for name, (_, expectations, index_cols) in frames.items():
            t0 = time.monotonic()
            df = cached[name]
            batch = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe(f"{name}_all")
            suite = ctx.suites.add(gx.ExpectationSuite(name=f"shelltrace_{name}", expectations=expectations))
            detail = {"result_format": "SUMMARY", "partial_unexpected_count": 5,
                      "unexpected_index_column_names": [c for c in index_cols if c in df.columns]}
            result = None
            if _blocking(expectations):
                # A frame with critical checks (the result about to be published), which normally passes: first
                # verdicts only, which GX bundles into a few aggregate queries (examples cost several more Spark
                # jobs per expectation); validated again, with a few offending rows per expectation, if it failed.
                result = _checkpoint(ctx, gx, f"{run_id}_{name}", batch, suite, {"result_format": "BOOLEAN_ONLY"}).run(
                    batch_parameters={"dataframe": df}, run_id=None)
            # Warnings only (small per-run aggregates of the inputs, whose findings are common): one pass with
            # examples, rather than a verdict pass and a second pass when something is found.
            if result is None or not result.success:
                result = _checkpoint(ctx, gx, f"{run_id}_{name}_detail", batch, suite, detail).run(
                    batch_parameters={"dataframe": df}, run_id=None)
            for vr in result.run_results.values():
                outcomes += _outcomes(name, vr)
                raw[name] = vr.to_json_dict()
            log.debug("quality gate: %s validated in %.1fs (%s)", name, time.monotonic() - t0,
                      "passed" if result.success else "with findings")
        if docs_dir:
            ctx.build_data_docs(site_names=["shelltrace"])
    finally:
        for df in cached.values():
            df.unpersist()
    failed = [o for o in outcomes if not o.success and o.severity == CRITICAL]
    warned = [o for o in outcomes if not o.success and o.severity != CRITICAL]
    verdict = FAILED if failed else PASSED_WITH_WARNINGS if warned else PASSED
    gate = GateResult(run_id, verdict, outcomes, docs_path=os.path.join(docs_dir, "index.html") if docs_dir else None,
                      seconds=time.monotonic() - started)
    if quality_dir:
        run_dir = os.path.join(quality_dir, run_id)
        os.makedirs(run_dir, exist_ok=True)
        gate.results_path = os.path.join(run_dir, "results.json")
        with open(gate.results_path, "w") as fh:
            json.dump({"run_id": run_id, "checked_at": datetime.now(timezone.utc).isoformat(), "verdict": verdict,
                       "seconds": round(gate.seconds, 2), "outcomes": [asdict(o) for o in outcomes]},
                      fh, indent=2, default=str)
        with open(os.path.join(run_dir, "gx_validation_results.json"), "w") as fh:
            json.dump(raw, fh, indent=2, default=str)
    return gate


def hunt_frames(cfg: dict, result: DataFrame, ledger: DataFrame | None, findings: DataFrame | None,
                entities: DataFrame | None, cands: DataFrame, host_stats: DataFrame, w) -> dict:
    """The frames a hunt validates, with their expectations and example columns."""
    frames = {"gold": (Q.gold_check_frame(result), gold_expectations(cfg, w.logs_from, w.logs_to), GOLD_INDEX)}
    inputs = input_expectations(cfg)
    exts = script_regex(cfg.get("hunt", {}).get("script_extensions", []))
    derived = {
        "quarantine_share": Q.quarantine_share(ledger) if ledger is not None else None,
        "entity_findings": findings.where((F.col("TimeGenerated") >= F.lit(w.alerts_from))
                                          & (F.col("TimeGenerated") < F.lit(w.alerts_to)))
        if findings is not None else None,
        "file_without_host": Q.files_without_host(entities, w.alerts_from, w.alerts_to, exts)
        if entities is not None else None,
    }
    derived["candidate_host_logs"] = Q.candidate_host_logs(cands, host_stats)
    derived["iis_gaps"] = Q.iis_gaps(host_stats)
    for name, df in derived.items():
        if df is not None:
            frames[name] = (df, inputs[name], INPUT_INDEX[name])
    return frames


def report(gate: GateResult) -> list[str]:
    lines = [o.line() for o in gate.failed_critical] + [o.line() for o in gate.warnings]
    lines.append(f"quality gate: {gate.verdict} ({len(gate.outcomes)} checks, {len(gate.failed_critical)} critical "
                 f"failed, {len(gate.warnings)} warnings, {gate.seconds:.1f}s)")
    if gate.results_path:
        lines.append(f"quality results: {gate.results_path}")
    if gate.docs_path:
        lines.append(f"quality data docs: {gate.docs_path}")
    return lines
