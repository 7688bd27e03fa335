"""SecurityAlert.Entities -> entities, with `$id`/`$ref` resolution, in Spark built-ins (VARIANT, Spark 4).

Entities is a JSON array; an object written once carries "$id", later occurrences are {"$ref": id}, and an entity
first written nested (a process's ImageFile) appears at the top level only as a bare $ref. Every object anywhere in
the tree with "$id" is indexed (breadth-first down to `max_depth` levels); a top-level element with "$ref" and no
"Type" is replaced by the indexed object. Ids are unique only within one alert row, so the index is per row.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipelines.normalize import is_script, norm_file, norm_host

REASON_MISSING = "Entities is empty"
REASON_NOT_JSON = "Entities is not JSON"
REASON_NOT_ARRAY = "Entities is not a JSON array"
REASON_UNRESOLVED = "unresolvable $ref"
REASON_TOO_DEEP = "Entities nested deeper than the resolver follows"

_ALERT_COLS = ["SystemAlertId", "TimeGenerated", "ProviderName", "AlertName"]


def _get(v: Column, path: str, dtype: str = "string") -> Column:
    return F.try_variant_get(v, path, dtype)


def parse_entities(df: DataFrame) -> DataFrame:
    """Alert rows -> `_alert_key` (one alert row's Entities), `_ents` (array<variant>) and `_entities_reason`."""
    text = F.col("Entities")
    parsed = F.try_parse_json(text)
    arr = F.try_variant_get(parsed, "$", "array<variant>")
    reason = (F.when(text.isNull() | (F.trim(text) == ""), F.lit(REASON_MISSING))
              .when(parsed.isNull(), F.lit(REASON_NOT_JSON))
              .when(arr.isNull(), F.lit(REASON_NOT_ARRAY)))
    return (df.select(*_ALERT_COLS, "Entities")
              .withColumn("_alert_key", F.xxhash64("SystemAlertId", "Entities"))
              .withColumn("_ents", arr)
              .withColumn("_entities_reason", reason))


def _children(node: Column) -> Column:
    """Objects and arrays directly inside a node (object values or array elements)."""
    values = F.coalesce(F.map_values(F.try_variant_get(node, "$", "map<string,variant>")),
                        F.try_variant_get(node, "$", "array<variant>"))
    return F.filter(values, lambda c: F.try_variant_get(c, "$", "map<string,variant>").isNotNull()
                    | F.try_variant_get(c, "$", "array<variant>").isNotNull())


def with_id_index(max_depth: int = 8):
    """Per alert row, every node of the Entities tree down to `max_depth` levels, breadth first, in two parallel
    arrays: `_ids` ("$id" or null) and `_nodes`. All in one projection (no explode, no join), so the cost is one pass
    over the row. `array_position(_ids, id)` then finds the first occurrence (shallowest, earliest) of an id.
    `_too_deep` is true when the tree goes deeper than the resolver follows."""
    def apply(parsed: DataFrame) -> DataFrame:
        level = F.col("_ents")
        out = parsed.withColumn("_lvl0", F.coalesce(level, F.array().cast("array<variant>")))
        names = ["_lvl0"]
        for depth in range(1, max_depth + 1):
            name = f"_lvl{depth}"
            out = out.withColumn(name, F.flatten(F.transform(F.col(names[-1]), _children)))
            names.append(name)
        nodes = F.concat(*[F.col(n) for n in names])
        return (out.withColumn("_nodes", nodes)
                .withColumn("_ids", F.transform("_nodes", lambda n: _get(n, '$["$id"]')))
                .withColumn("_too_deep", F.exists(F.col(names[-1]), lambda n: F.size(_children(n)) > 0))
                .drop(*names))
    return apply


def resolved_entities(parsed: DataFrame, max_depth: int = 8) -> DataFrame:
    """Top-level entities after `$ref` resolution: alert columns, `_alert_key`, `EntityIndex`, `_entity` (variant,
    null when unresolvable), `_ref` (the id of an unresolvable reference, else null)."""
    def resolve(e: Column) -> Column:
        ref = _get(e, '$["$ref"]')
        is_ref = ref.isNotNull() & _get(e, "$.Type").isNull()
        pos = F.array_position(F.col("_ids"), ref)
        target = F.when(pos > 0, F.element_at(F.col("_nodes"), pos.cast("int")))
        return F.struct(F.when(is_ref, target).otherwise(e).alias("entity"),
                        F.when(is_ref & (pos == 0), ref).alias("ref"))

    indexed = parsed.where(F.col("_ents").isNotNull()).transform(with_id_index(max_depth))
    return (indexed.select(*_ALERT_COLS, "_alert_key", F.posexplode(F.transform("_ents", resolve))
                           .alias("EntityIndex", "_r"))
            .select(*_ALERT_COLS, "_alert_key", "EntityIndex", F.col("_r.entity").alias("_entity"),
                    F.col("_r.ref").alias("_ref")))


def entity_columns(df: DataFrame) -> DataFrame:
    """Typed fields of resolved entities: type, JSON, file (name, directory, hashes) and host fields."""
    e = F.col("_entity")
    etype = _get(e, "$.Type")
    lower_type = F.lower(etype)
    hashes = F.try_variant_get(e, "$.FileHashes", "array<struct<Algorithm:string,Value:string>>")

    def digest(alg: str) -> Column:
        return F.try_element_at(F.transform(F.filter(hashes, lambda h: F.lower(h["Algorithm"]) == alg),
                                        lambda h: h["Value"]), F.lit(1))

    is_file = lower_type == "file"
    is_host = lower_type == "host"
    return df.select(
        *_ALERT_COLS, "_alert_key", "EntityIndex",
        etype.alias("EntityType"), F.to_json(e).alias("Entity"),
        F.when(is_file, _get(e, "$.Name")).alias("FileNameRaw"),
        F.when(is_file, norm_file(_get(e, "$.Name"))).alias("FileName"),
        F.when(is_file, _get(e, "$.Directory")).alias("Directory"),
        F.when(is_file, digest("sha1")).alias("Sha1"),
        F.when(is_file, digest("sha256")).alias("Sha256"),
        F.when(is_file, digest("md5")).alias("Md5"),
        F.when(is_host, _get(e, "$.HostName")).alias("HostNameRaw"),
        F.when(is_host, _get(e, "$.NetBiosName")).alias("NetBiosName"),
        F.when(is_host, _get(e, "$.FQDN")).alias("FQDN"),
        F.when(is_host, F.coalesce(norm_host(_get(e, "$.HostName")), norm_host(_get(e, "$.NetBiosName"))))
        .alias("HostName"),
    )


def alert_entities(max_depth: int = 8):
    """Alert rows -> one row per top-level entity after `$ref` resolution (unresolvable references dropped)."""
    def apply(df: DataFrame) -> DataFrame:
        parsed = df.transform(parse_entities)
        return (resolved_entities(parsed, max_depth).where(F.col("_entity").isNotNull())
                .transform(entity_columns))
    return apply


def entity_findings(max_depth: int = 8):
    """Alert rows -> data-quality findings: Entities unusable (with the reason), each unresolvable $ref, trees
    deeper than the resolver follows. Columns: SystemAlertId, TimeGenerated, ProviderName, Reason, Detail."""
    def apply(df: DataFrame) -> DataFrame:
        parsed = df.transform(parse_entities)
        unusable = parsed.where(F.col("_entities_reason").isNotNull()).select(
            "SystemAlertId", "TimeGenerated", "ProviderName", F.col("_entities_reason").alias("Reason"),
            F.substring(F.col("Entities"), 1, 200).alias("Detail"))
        unresolved = resolved_entities(parsed, max_depth).where(F.col("_ref").isNotNull()).select(
            "SystemAlertId", "TimeGenerated", "ProviderName", F.lit(REASON_UNRESOLVED).alias("Reason"),
            F.concat(F.lit('{"$ref":"'), F.col("_ref"), F.lit('"}')).alias("Detail"))
        too_deep = (parsed.where(F.col("_ents").isNotNull()).transform(with_id_index(max_depth))
                    .where("_too_deep").select(
                        "SystemAlertId", "TimeGenerated", "ProviderName", F.lit(REASON_TOO_DEEP).alias("Reason"),
                        F.lit(f"deeper than {max_depth} levels").alias("Detail")))
        return unusable.unionByName(unresolved).unionByName(too_deep)
    return apply


def webshell_candidates(providers, extensions):
    """Resolved entity rows -> the contract's candidates: each (script file entity, host entity) pair of the same
    alert row from the configured providers: FileName, HostName, Directory, SystemAlertId, TimeGenerated."""
    providers = list(providers)

    def apply(entities: DataFrame) -> DataFrame:
        mine = entities.where(F.col("ProviderName").isin(providers))
        files = (mine.where((F.lower("EntityType") == "file") & is_script(F.col("FileName"), extensions))
                 .select("_alert_key", "SystemAlertId", "TimeGenerated", "FileName", "Directory"))
        hosts = (mine.where((F.lower("EntityType") == "host") & F.col("HostName").isNotNull())
                 .select("_alert_key", "HostName"))
        return (files.join(hosts, "_alert_key")
                .select("FileName", "HostName", "Directory", "SystemAlertId", "TimeGenerated").distinct())
    return apply


def candidate_rows(providers, extensions):
    """Resolved entity rows -> silver candidates: one row per (FileName, HostName, Directory, SystemAlertId) with the
    TimeGenerated of every landed row of the alert that names the pair (`AlertTimes`, sorted): an alert landed
    several times is one alert, and the hunt can still pick its earliest row inside any alert window."""
    def apply(entities: DataFrame) -> DataFrame:
        return (entities.transform(webshell_candidates(providers, extensions))
                .groupBy("FileName", "HostName", "Directory", "SystemAlertId")
                .agg(F.array_sort(F.collect_set("TimeGenerated")).alias("AlertTimes")))
    return apply
