"""Environment configurations (YAML) and Spark's log4j2 settings, shipped with the package.

CONF_DIR is always a real folder. When the package is imported from a zip (the wheel given to spark-submit
--py-files is put on the driver's PYTHONPATH as it is), the files are copied out to a temporary folder once per
process, so they are read like any file and handed to the JVM by path (-Dlog4j2.configurationFile).
"""
from pathlib import Path


def _conf_dir() -> Path:
    here = Path(__file__).resolve().parent
    if here.is_dir():
        return here
    import atexit
    import shutil
    import tempfile
    from importlib.resources import files

    out = Path(tempfile.mkdtemp(prefix="shelltrace-conf-"))
    for entry in files(__name__).iterdir():
        if entry.name.endswith((".yaml", ".properties")):
            (out / entry.name).write_bytes(entry.read_bytes())
    atexit.register(shutil.rmtree, out, True)
    return out


CONF_DIR = _conf_dir()
