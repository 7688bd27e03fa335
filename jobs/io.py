"""The lake's edge: where tables live, how they are created, read and written. Pipelines never touch this."""
from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from schemas.tables import TableDef

log = logging.getLogger("shelltrace")

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def absolute(path: str) -> str:
    """Local paths become absolute; URIs (abfss://, s3a://, dbfs:/, file:/) stay as given."""
    return path if _SCHEME.match(path) else os.path.abspath(os.path.expanduser(path))


@contextmanager
def session_settings(spark: SparkSession, settings: dict):
    """Within the block, each Spark session setting in `settings` has its value (a value of None: left as it is);
    the session's own settings, if any, are restored afterwards."""
    chosen = {k: str(v) for k, v in settings.items() if v is not None}
    before = {k: spark.conf.get(k, None) for k in chosen}
    for k, v in chosen.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            spark.conf.unset(k) if v is None else spark.conf.set(k, v)


def session_setting(spark: SparkSession, key: str, value: str | None):
    """`session_settings` for one key."""
    return session_settings(spark, {key: value})


def listing(spark: SparkSession, paths: list[str]):
    """Wrap the creation of a reader over `paths` (files already listed): on a local disk Spark lists them on the
    driver (a listing job for 290 files costs ~1.5 s there, the driver's own listing 0.05 s); any other storage keeps
    Spark's parallel listing, which is what makes thousands of files on cloud storage quick."""
    key = "spark.sql.sources.parallelPartitionDiscovery.threshold"
    local = bool(paths) and all(p.startswith("file:") or not _SCHEME.match(p) for p in paths)
    return session_setting(spark, key, len(paths) if local and len(paths) > int(spark.conf.get(key, "32")) else None)


@dataclass
class Lake:
    spark: SparkSession
    root: str | None = None
    catalog: str | None = None
    schema: str | None = None

    @classmethod
    def from_config(cls, spark: SparkSession, cfg: dict) -> "Lake":
        lake = cfg.get("lake", {}) or {}
        if lake.get("root"):
            return cls(spark, root=absolute(str(lake["root"])).rstrip("/"))
        if lake.get("schema"):
            return cls(spark, catalog=lake.get("catalog"), schema=lake["schema"])
        raise ValueError("no lake: give --lake PATH, or lake.catalog and lake.schema")

    def __post_init__(self):
        if not self.root and not self.schema:
            raise ValueError("a lake needs a root path or a schema")

    @property
    def by_path(self) -> bool:
        return bool(self.root)

    def describe(self) -> str:
        return self.root if self.by_path else f"{self.catalog + '.' if self.catalog else ''}{self.schema}"

    def path(self, name: str) -> str:
        """Storage path of a lake-relative name (path lakes), e.g. bronze/w3c_iis_log."""
        if not self.by_path:
            raise ValueError(f"{name}: a catalog lake has no paths")
        return f"{self.root}/{name}"

    def ident(self, name: str) -> str:
        """SQL identifier of a table."""
        if self.by_path:
            return f"delta.`{self.path(name)}`"
        table = name.replace("/", "_").lstrip("_")
        parts = [p for p in (self.catalog, self.schema, table) if p]
        return ".".join(f"`{p}`" for p in parts)

    def exists(self, name: str) -> bool:
        from delta.tables import DeltaTable

        if self.by_path:
            return DeltaTable.isDeltaTable(self.spark, self.path(name))
        return self.spark.catalog.tableExists(self.ident(name).replace("`", ""))

    def delta(self, name: str):
        from delta.tables import DeltaTable

        if self.by_path:
            return DeltaTable.forPath(self.spark, self.path(name))
        return DeltaTable.forName(self.spark, self.ident(name).replace("`", ""))

    def read(self, name: str) -> DataFrame:
        if self.by_path:
            return self.spark.read.format("delta").load(self.path(name))
        return self.spark.read.table(self.ident(name))

    def ensure(self, tdef: TableDef) -> None:
        """Create the table from its definition (columns, comments, partitioning, generated columns, properties,
        CHECK constraints) if it does not exist. An existing table is left as it is."""
        from delta.tables import DeltaTable

        if not self.exists(tdef.name):
            builder = DeltaTable.createIfNotExists(self.spark)
            builder = builder.location(self.path(tdef.name)) if self.by_path else builder.tableName(
                self.ident(tdef.name).replace("`", ""))
            for fld in tdef.schema.fields:
                builder = builder.addColumn(fld.name, fld.dataType, nullable=fld.nullable,
                                            comment=fld.metadata.get("comment"))
            for name, dtype, expr, comment in tdef.generated:
                builder = builder.addColumn(name, dtype, generatedAlwaysAs=expr, comment=comment)
            if tdef.partitioned_by:
                builder = builder.partitionedBy(*tdef.partitioned_by)
            for key, value in tdef.all_properties.items():
                builder = builder.property(key, value)
            builder = builder.comment(tdef.comment)
            builder.execute()
            for cname, expr in tdef.constraints.items():
                self.spark.sql(f"ALTER TABLE {self.ident(tdef.name)} ADD CONSTRAINT {cname} CHECK ({expr})")
            log.info("created table %s", self.ident(tdef.name))

    def properties(self, name: str) -> dict:
        row = self.spark.sql(f"DESCRIBE DETAIL {self.ident(name)}").select("properties").first()
        return dict(row["properties"] or {})

    def session_setting(self, key: str, value: str | None):
        """Within the block, the Spark session setting `key` is `value` (None: left as it is); the session's own
        setting, if any, is restored afterwards."""
        return session_setting(self.spark, key, value)

    def optimized_writes(self, enabled: bool | None):
        """Within the block, Delta's optimized writes are on/off whatever the tables' `delta.autoOptimize.optimizeWrite`
        (the session setting takes precedence over the table property); None keeps each table's choice. The session's
        own setting, if any, is restored afterwards."""
        return self.session_setting("spark.databricks.delta.optimizeWrite.enabled",
                                    None if enabled is None else str(bool(enabled)).lower())

    def append(self, df: DataFrame, name: str, optimize_write: bool | None = None) -> None:
        """Append `df`; `optimize_write` as in `optimized_writes`."""
        writer = df.write.format("delta").mode("append")
        with self.optimized_writes(optimize_write):
            if self.by_path:
                writer.save(self.path(name))
            else:
                writer.saveAsTable(self.ident(name).replace("`", ""))

    def last_operation_metrics(self, name: str) -> dict:
        row = self.delta(name).history(1).select("operation", "operationMetrics").first()
        return dict(row["operationMetrics"] or {}) if row else {}


def delta_conflicts() -> tuple:
    """Delta's commit-conflict exceptions (optimistic concurrency: another writer committed first). In delta-spark's
    Python API they do not share a base class, so callers catch this tuple."""
    from delta import exceptions as E

    return (E.ConcurrentAppendException, E.ConcurrentDeleteReadException, E.ConcurrentDeleteDeleteException,
            E.ConcurrentTransactionException, E.ConcurrentWriteException, E.MetadataChangedException,
            E.ProtocolChangedException)


def list_files(spark: SparkSession, path: str) -> DataFrame:
    """Every file under `path` (recursively) with size and modification time, without reading contents.

    Uses the binaryFile source without its content column: works on local disks, cloud storage and Databricks alike,
    and never infers partitions from the export's `m=`/`WorkspaceResourceId=` path segments.
    """
    return (spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(absolute(path))
            .select(F.col("path"), F.col("length").alias("size"), F.col("modificationTime").alias("modification_time")))
