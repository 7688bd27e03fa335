"""Environment configurations (YAML) shipped with the package."""
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent
