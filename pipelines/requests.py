"""W3CIISLog rows -> requests in the contract's normal forms (silver)."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructType

from pipelines.normalize import empty_to_null, norm_host, norm_uri


def normalize_requests(schema: StructType):
    """Empty values (null, '' or '-' after trimming) become null in every string column; then
    HostName = norm_host(sComputerName) else norm_host(Computer), FileName = norm_file(csUriStem),
    ShellLocation = norm_uri(csUriStem), beside the original columns."""
    strings = [f.name for f in schema.fields if isinstance(f.dataType, StringType)]

    def apply(df: DataFrame) -> DataFrame:
        out = df.select(*[empty_to_null(F.col(c)).alias(c) if c in strings else F.col(c) for c in df.columns])
        uri = norm_uri(F.col("csUriStem"))
        return (out.withColumn("HostName", F.coalesce(norm_host(F.col("sComputerName")), norm_host(F.col("Computer"))))
                   .withColumn("ShellLocation", uri)
                   .withColumn("FileName", F.substring_index(uri, "/", -1)))
    return apply

