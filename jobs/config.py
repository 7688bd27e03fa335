"""Configuration: conf/default.yaml, then an environment file (--conf), then --set key=value overrides."""
from __future__ import annotations

import copy
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable

import yaml

from conf import CONF_DIR


class ConfigError(ValueError):
    """A configuration file or override that cannot be used."""


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _resolve_conf_file(name: str) -> Path:
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (CONF_DIR / name, CONF_DIR / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"config file {name!r} not found (give a path, or one of: "
                      f"{', '.join(sorted(p.stem for p in CONF_DIR.glob('*.yaml')))})")


def _load_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def set_key(cfg: dict, dotted: str, value: Any) -> None:
    """Set `a.b.c` in a nested dict, creating levels as needed."""
    parts = dotted.split(".")
    node = cfg
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    if key.startswith("spark.conf."):
        # Spark settings contain dots themselves: everything after spark.conf. is one key.
        return key, raw
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def load_config(conf: str | None = None, overrides: Iterable[str] = ()) -> dict:
    cfg = _load_yaml(CONF_DIR / "default.yaml")
    if conf:
        cfg = _merge(cfg, _load_yaml(_resolve_conf_file(conf)))
    for text in overrides or ():
        key, value = parse_override(text)
        if key.startswith("spark.conf."):
            cfg.setdefault("spark", {}).setdefault("conf", {})[key[len("spark.conf."):]] = value
        else:
            set_key(cfg, key, value)
    return cfg


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")


def parse_duration(text: Any) -> timedelta:
    """'1h', '7d', '30m', '2w', '45s' -> timedelta."""
    if isinstance(text, timedelta):
        return text
    match = _DURATION.match(str(text))
    if not match:
        raise ConfigError(f"not a duration: {text!r} (use e.g. 30m, 1h, 7d, 2w)")
    amount, unit = float(match.group(1)), match.group(2)
    return {"s": timedelta(seconds=amount), "m": timedelta(minutes=amount), "h": timedelta(hours=amount),
            "d": timedelta(days=amount), "w": timedelta(weeks=amount)}[unit]
