"""databricks.yml (the Databricks Asset Bundle) against the package: every task calls a console script setup.py
declares, with a real `shelltrace` subcommand and arguments its parser accepts; the tasks run land -> transform ->
hunt every hour; the lake is the catalog and schema the bundle passes. Read with PyYAML; nothing starts Spark."""
from __future__ import annotations

import ast
import importlib
import re
import sys
from pathlib import Path

import pytest
import yaml

from jobs.cli import COMMANDS, build_parser
from jobs.common import config_from_args

REPO = Path(__file__).resolve().parents[1]
BUNDLE = yaml.safe_load((REPO / "databricks.yml").read_text())
JOB = BUNDLE["resources"]["jobs"]["shelltrace_hourly"]
TASKS = {t["task_key"]: t for t in JOB["tasks"]}
SAMPLE = {"catalog": "sample_catalog", "schema": "sample_schema", "alerts_path": "/Volumes/c/s/v/SecurityAlert",
          "iis_path": "/Volumes/c/s/v/W3CIISLog"}


def _setup_kwargs() -> dict:
    """The literal keyword arguments of setup(...) in setup.py."""
    tree = ast.parse((REPO / "setup.py").read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    out = {}
    for kw in call.keywords:
        try:
            out[kw.arg] = ast.literal_eval(kw.value)
        except ValueError:
            pass
    return out


def _parameters(task: dict) -> list[str]:
    """The task's parameters with ${var.name} replaced by sample values (every variable must be declared)."""
    def sub(match):
        name = match.group(1)
        assert name in BUNDLE["variables"], f"{task['task_key']}: undeclared variable {name}"
        return SAMPLE.get(name, f"sample-{name}")
    return [re.sub(r"\$\{var\.([A-Za-z0-9_]+)\}", sub, str(p)) for p in task["python_wheel_task"]["parameters"]]


def _parse(task: dict):
    params = _parameters(task)
    try:
        return build_parser().parse_args(params)
    except SystemExit as exc:
        pytest.fail(f"{task['task_key']}: `shelltrace {' '.join(params)}` rejected by its parser (exit {exc.code})")


def _upstream(key: str) -> set[str]:
    direct = {d["task_key"] for d in TASKS[key].get("depends_on", [])}
    return direct.union(*(_upstream(d) for d in direct)) if direct else set()


def test_every_task_calls_a_console_script_of_the_package_in_setup_py():
    kwargs = _setup_kwargs()
    scripts = dict(s.replace(" ", "").split("=", 1) for s in kwargs["entry_points"]["console_scripts"])
    for key, task in TASKS.items():
        wheel_task = task["python_wheel_task"]
        assert wheel_task["package_name"] == kwargs["name"], key
        assert wheel_task["entry_point"] in scripts, (key, scripts)
        module, func = scripts[wheel_task["entry_point"]].split(":")
        assert getattr(importlib.import_module(module), func) is importlib.import_module("jobs.cli").task


def test_every_task_runs_a_real_shelltrace_subcommand():
    for key, task in TASKS.items():
        assert task["python_wheel_task"]["parameters"][0] in COMMANDS, key


def test_every_tasks_parameters_are_accepted_by_its_subcommands_parser():
    for key, task in TASKS.items():
        args = _parse(task)
        assert args._name == task["python_wheel_task"]["parameters"][0], key


def test_every_task_works_on_the_catalog_and_schema_the_bundle_passes():
    for key, task in TASKS.items():
        cfg = config_from_args(_parse(task))
        assert (cfg["lake"]["root"], cfg["lake"]["catalog"], cfg["lake"]["schema"]) == \
            (None, SAMPLE["catalog"], SAMPLE["schema"]), key
        assert cfg["spark"]["master"] is None, key        # the running Databricks session, never local[*]


def test_land_tasks_read_the_export_paths_of_the_bundles_variables():
    sources = {_parse(t).source: _parse(t).input for t in TASKS.values() if _parse(t)._name == "land"}
    assert sources == {"security_alert": SAMPLE["alerts_path"], "w3c_iis_log": SAMPLE["iis_path"]}


def test_tasks_run_land_then_transform_then_hunt():
    command = {key: t["python_wheel_task"]["parameters"][0] for key, t in TASKS.items()}
    lands = {k for k, c in command.items() if c == "land"}
    (transform,) = [k for k, c in command.items() if c == "transform"]
    (hunt,) = [k for k, c in command.items() if c == "hunt"]
    assert len(lands) == 2 and len(TASKS) == 4
    assert _upstream(transform) == lands
    assert _upstream(hunt) == lands | {transform}
    assert {d["task_key"] for d in TASKS[hunt]["depends_on"]} == {transform}


def test_the_scheduled_hunt_is_incremental():
    (hunt,) = [t for t in TASKS.values() if t["python_wheel_task"]["parameters"][0] == "hunt"]
    args = _parse(hunt)
    assert args.incremental is True
    assert (args.alerts_from, args.alerts_to, args.logs_from, args.logs_to) == (None, None, None, None)


def test_the_job_runs_every_hour_on_the_hour_in_utc():
    schedule = JOB["schedule"]
    assert schedule["quartz_cron_expression"].split() == ["0", "0", "*", "*", "*", "?"]
    assert schedule["timezone_id"] == "UTC"
    assert schedule.get("pause_status", "UNPAUSED") == "UNPAUSED"


def test_every_task_installs_the_wheel_the_bundle_builds():
    artifact = BUNDLE["artifacts"]["default"]
    assert artifact["type"] == "whl" and artifact["path"] == "."
    assert "-w dist" in artifact["build"] and "wheel" in artifact["build"]
    for key, task in TASKS.items():
        assert {"whl": "./dist/*.whl"} in task["libraries"], key


def test_dev_and_prod_targets_write_to_different_schemas():
    dev, prod = BUNDLE["targets"]["dev"], BUNDLE["targets"]["prod"]
    assert (dev["mode"], prod["mode"]) == ("development", "production")
    assert dev["variables"]["schema"] != prod["variables"]["schema"]


def test_the_bundle_holds_no_workspace_host_or_credentials():
    text = (REPO / "databricks.yml").read_text()
    keys = set()

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                keys.add(str(k).lower())
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(BUNDLE)
    assert not keys & {"host", "token", "password", "client_secret", "client_id", "azure_client_secret",
                       "profile"}, keys
    assert not re.search(r"https?://|dapi[0-9a-f]{8,}", text)


def test_task_entry_point_exits_with_the_jobs_status(monkeypatch, tmp_path, capsys):
    # python_wheel_task ignores a function's return value: the status must leave through SystemExit
    from jobs.cli import task

    monkeypatch.setattr(sys, "argv", ["shelltrace-task", "quality", "--lake", str(tmp_path),
                                      "--conf", str(tmp_path / "missing.yaml")])
    with pytest.raises(SystemExit) as exited:
        task()
    assert exited.value.code == 2
    assert "missing.yaml" in capsys.readouterr().err
