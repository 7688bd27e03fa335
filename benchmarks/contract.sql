-- The hunt contract (../shared/CONTRACT.md) as ONE DuckDB query over the raw Log Analytics export files: no lake, no
-- landing, no Python. tests/reference.py is the model: every macro below is one of its functions (same name where
-- possible), and tests/test_benchmark_scale.py checks this file against it on a generated set with every trap.
--
-- Placeholders, filled by benchmarks/scale.py (render_contract_sql); nothing else in this file is templated:
--   {alert_files}, {iis_files}    DuckDB lists of globs: ['<tree>/**/*.json', '<tree>/**/*.json.gz'] (those that match)
--   {alerts_from}, {alerts_to}    TIMESTAMP literals (UTC): the alert window [from, to)
--   {logs_from}, {logs_to}        TIMESTAMP literals (UTC): the log window [from, to)
--   {providers}                   list of ProviderName values, e.g. ['MDATP']
--   {extensions}                  list of script extensions, e.g. ['.asp', '.aspx', ...]
--   {max_set_size}                integer: the cap of the Request* set columns
--
-- Timestamps are DuckDB TIMESTAMP (no zone) holding UTC. The macros are the contract's "Normal forms"; the query at
-- the end is the single statement that computes the attacker summary (all contract columns but the run ones).

-- "trim": the characters Python's str.strip() removes for ASCII text (space, \t, \n, \r, \f, \v)
CREATE OR REPLACE TEMP MACRO st_trim(s) AS trim(s, chr(32) || chr(9) || chr(10) || chr(13) || chr(12) || chr(11));

-- empty value: a string that is null, empty or '-' after trimming is null; any other value is kept as logged
CREATE OR REPLACE TEMP MACRO empty(s) AS CASE WHEN st_trim(s) IN ('', '-') THEN NULL ELSE s END;

-- norm_host: trim, lowercase, cut at the first '.', empty becomes null
CREATE OR REPLACE TEMP MACRO norm_host(h) AS nullif(split_part(lower(st_trim(h)), '.', 1), '');

-- Percent-decoding once, as Python's urllib.parse.unquote(s, 'utf-8', 'replace'): '%XX' escapes become bytes, '+'
-- stays '+', a '%' without two hex digits stays as it is, and bytes that are not UTF-8 become U+FFFD, one per
-- maximal ill-formed subpart. DuckDB's url_decode does all of it but the last (it raises "decoded value is invalid
-- UTF8"), so only such strings take the slow path: split into tokens (a well-formed UTF-8 sequence of escapes, an
-- ill-formed subpart, a single escape, literal text, a lone '%') and decode each.
CREATE OR REPLACE TEMP MACRO pct_lenient(s) AS array_to_string(list_transform(
    regexp_extract_all(s,
        -- well-formed UTF-8 sequences (1 to 4 bytes)
        '%[0-7][0-9A-Fa-f]'
        || '|%(?:[Cc][2-9A-Fa-f]|[Dd][0-9A-Fa-f])%[89ABab][0-9A-Fa-f]'
        || '|%[Ee]0%[ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]'
        || '|%(?:[Ee][1-9A-Ca-c]|[Ee][EFef])%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]'
        || '|%[Ee][Dd]%[89][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]'
        || '|%[Ff]0%[9ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]'
        || '|%[Ff][1-3]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]'
        || '|%[Ff]4%8[0-9A-Fa-f]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]'
        -- truncated sequences (maximal subparts: one U+FFFD each)
        || '|%[Ee]0%[ABab][0-9A-Fa-f]|%(?:[Ee][1-9A-Ca-c]|[Ee][EFef])%[89ABab][0-9A-Fa-f]|%[Ee][Dd]%[89][0-9A-Fa-f]'
        || '|%[Ff]0%[9ABab][0-9A-Fa-f](?:%[89ABab][0-9A-Fa-f])?'
        || '|%[Ff][1-3]%[89ABab][0-9A-Fa-f](?:%[89ABab][0-9A-Fa-f])?'
        || '|%[Ff]4%8[0-9A-Fa-f](?:%[89ABab][0-9A-Fa-f])?'
        -- any other escape (an invalid byte), literal text, a lone '%'
        || '|%[0-9A-Fa-f]{2}|[^%]+|%'),
    lambda t: CASE WHEN NOT regexp_matches(t, '^%[0-9A-Fa-f]{2}') THEN t
                   ELSE coalesce(try(url_decode(t)), chr(65533)) END), '');

-- norm_path: percent-decode once (UTF-8; '+' stays '+'), then '\' becomes '/'
CREATE OR REPLACE TEMP MACRO norm_path(s) AS replace(coalesce(try(url_decode(s)), pct_lenient(s)), '\', '/');

-- norm_uri: norm_path, runs of '/' collapsed to one, trimmed, lowercased, with a leading '/'
CREATE OR REPLACE TEMP MACRO norm_uri_of(p) AS CASE WHEN p IS NULL THEN NULL WHEN starts_with(p, '/') THEN p
                                                    ELSE '/' || p END;
CREATE OR REPLACE TEMP MACRO norm_uri(s) AS
    norm_uri_of(lower(st_trim(regexp_replace(norm_path(s), '/{2,}', '/', 'g'))));

-- the last '/'-segment of a normalised URI; norm_file(s) = last_segment(norm_uri(s))
CREATE OR REPLACE TEMP MACRO last_segment(u) AS string_split(u, '/')[-1];
CREATE OR REPLACE TEMP MACRO norm_file(s) AS last_segment(norm_uri(s));

-- a script: norm_file(name) ends with one of the configured extensions (so notes.aspx.txt is not one)
CREATE OR REPLACE TEMP MACRO is_script(name) AS
    len(list_filter({extensions}, lambda x: suffix(norm_file(name), lower(x)))) > 0;

-- an alert's Directory as PathMatched compares it: '\' as '/', lowercased, trailing '/' removed
CREATE OR REPLACE TEMP MACRO norm_directory(d) AS rtrim(lower(replace(d, '\', '/')), '/');

-- scStatus as an integer; anything but an optionally signed run of digits is null
CREATE OR REPLACE TEMP MACRO status_code(s) AS
    CASE WHEN regexp_full_match(st_trim(s), '[+-]?[0-9]+') THEN try_cast(st_trim(s) AS INTEGER) END;

-- TimeGenerated -> UTC TIMESTAMP truncated to microseconds, or null: ISO-8601 with any number of fraction digits,
-- 'T' or a space, 'Z', an offset, or no zone (naive means UTC). iso_parts splits it, time_of builds the value.
CREATE OR REPLACE TEMP MACRO iso_parts(s) AS regexp_extract(st_trim(s),
    '^([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.]([0-9]+))?'
    || '[ \t\n\r\f\v]*(Z|z|[+-][0-9]{2}:?[0-9]{2})?$',
    ['y', 'mo', 'd', 'h', 'mi', 's', 'f', 'z']);
CREATE OR REPLACE TEMP MACRO zone_offset(z) AS CASE WHEN z IN ('', 'Z', 'z') THEN INTERVAL 0 SECOND
    ELSE (CASE WHEN z[1] = '+' THEN 1 ELSE -1 END)
         * (to_hours(TRY_CAST(replace(z, ':', '')[2:3] AS INTEGER))
            + to_minutes(TRY_CAST(replace(z, ':', '')[4:5] AS INTEGER)))
    END;
CREATE OR REPLACE TEMP MACRO time_of(p) AS CASE WHEN p.y <> '' AND TRY_CAST(p.h AS INTEGER) < 24 THEN
    try_cast(p.y || '-' || p.mo || '-' || p.d || ' ' || p.h || ':' || p.mi || ':' || p.s || '.'
             || rpad(left(p.f, 6), 6, '0') AS TIMESTAMP) - zone_offset(p.z) END;

-- string-typed JSON values only (Python's isinstance(v, str))
CREATE OR REPLACE TEMP MACRO json_str(e, path) AS CASE WHEN json_type(e, path) = 'VARCHAR' THEN e ->> path END;

-- sorted distinct non-null values, the first max_set_size of them
CREATE OR REPLACE TEMP MACRO capped(x) AS list_slice(list_sort(list_distinct(list(x))), 1, {max_set_size});


WITH
alert_rows AS (
    SELECT row_number() OVER () AS rid, SystemAlertId, ProviderName, iso_parts(TimeGenerated) AS tp, Entities
    FROM read_json({alert_files}, format = 'newline_delimited', hive_partitioning = false, ignore_errors = true,
                   columns = {'TimeGenerated': 'VARCHAR', 'SystemAlertId': 'VARCHAR', 'ProviderName': 'VARCHAR',
                              'Entities': 'JSON'})
),
-- alert rows of the configured providers inside the alert window
alerts AS (
    SELECT rid, SystemAlertId, time_of(tp) AS t, Entities FROM alert_rows
    WHERE list_contains({providers}, ProviderName)
      AND time_of(tp) >= {alerts_from} AND time_of(tp) < {alerts_to}
),
-- an alert landed several times is one alert: its time is its first row's in the window
alert_time AS (
    SELECT SystemAlertId, min(t) AS AlertTime FROM alerts GROUP BY SystemAlertId
),
-- Entities as a JSON array: a JSON string is parsed (not JSON: no array), an already-parsed value is taken as is
entity_arrays AS (
    SELECT rid, SystemAlertId, arr FROM (
        SELECT rid, SystemAlertId,
               CASE WHEN json_type(Entities) = 'VARCHAR'
                    THEN CASE WHEN json_valid(Entities ->> '$') THEN json(Entities ->> '$') END
                    ELSE Entities END AS arr
        FROM alerts)
    WHERE json_type(arr) = 'ARRAY'
),
-- every object anywhere in the row's tree that has "$id", indexed by it; the first occurrence (pre-order) wins
id_index AS (
    SELECT a.rid, n.value ->> '$."$id"' AS id, arg_min(n.value, n.id) AS obj
    FROM entity_arrays a, json_tree(a.arr) n
    WHERE n.type = 'OBJECT' AND json_exists(n.value, '$."$id"')
    GROUP BY a.rid, n.value ->> '$."$id"'
),
top_level AS (
    SELECT a.rid, a.SystemAlertId, e.value AS e,
           json_type(e.value) = 'OBJECT' AND json_exists(e.value, '$."$ref"') AND NOT json_exists(e.value, '$.Type')
               AS is_ref
    FROM entity_arrays a, json_each(a.arr) e
),
-- a top-level {"$ref": id} without Type is replaced by the indexed object; unresolvable ones are dropped
resolved AS (
    SELECT t.rid, t.SystemAlertId, CASE WHEN t.is_ref THEN i.obj ELSE t.e END AS e
    FROM top_level t LEFT JOIN id_index i ON t.is_ref AND i.rid = t.rid AND i.id = t.e ->> '$."$ref"'
    WHERE NOT t.is_ref OR i.obj IS NOT NULL
),
typed AS (
    SELECT rid, SystemAlertId, lower(json_str(e, '$.Type')) AS etype, json_str(e, '$.Name') AS name,
           json_str(e, '$.Directory') AS directory,
           coalesce(norm_host(json_str(e, '$.HostName')), norm_host(json_str(e, '$.NetBiosName'))) AS host
    FROM resolved WHERE json_type(e) = 'OBJECT'
),
-- candidates: each (script file entity, host entity) pair of the same alert row; distinct per alert
candidates AS (
    SELECT c.*, a.AlertTime FROM (
        SELECT DISTINCT f.SystemAlertId, norm_file(f.name) AS FileName, h.host AS HostName, f.directory AS Directory
        FROM typed f JOIN typed h ON f.rid = h.rid
        WHERE f.etype = 'file' AND is_script(f.name) AND h.etype = 'host' AND h.host IS NOT NULL) c
    JOIN alert_time a ON c.SystemAlertId IS NOT DISTINCT FROM a.SystemAlertId
),
candidate_keys AS (
    SELECT FileName, HostName, list_sort(list_distinct(list(SystemAlertId))) AS AlertIds,
           min(AlertTime) AS FirstAlertTime, list_distinct(list(norm_directory(Directory))) AS dirs
    FROM candidates GROUP BY FileName, HostName
),
iis_rows AS (
    SELECT iso_parts(TimeGenerated) AS tp, empty(Computer) AS Computer, empty(sSiteName) AS sSiteName,
           empty(sComputerName) AS sComputerName, empty(csMethod) AS csMethod, empty(csUriStem) AS csUriStem,
           empty(csUriQuery) AS csUriQuery, empty(cIP) AS cIP, empty(csUserAgent) AS csUserAgent,
           empty(csCookie) AS csCookie, empty(csReferer) AS csReferer, empty(scStatus) AS scStatus
    FROM read_json({iis_files}, format = 'newline_delimited', hive_partitioning = false, ignore_errors = true,
                   columns = {'TimeGenerated': 'VARCHAR', 'Computer': 'VARCHAR', 'sSiteName': 'VARCHAR',
                              'sComputerName': 'VARCHAR', 'csMethod': 'VARCHAR', 'csUriStem': 'VARCHAR',
                              'csUriQuery': 'VARCHAR', 'cIP': 'VARCHAR', 'csUserAgent': 'VARCHAR',
                              'csCookie': 'VARCHAR', 'csReferer': 'VARCHAR', 'scStatus': 'VARCHAR'})
),
-- requests in the log window with a client IP and a stem, in the contract's normal forms
requests AS (
    SELECT *, last_segment(ShellLocation) AS FileName FROM (
        SELECT time_of(tp) AS t, st_trim(cIP) AS AttackerIP,
               coalesce(norm_host(sComputerName), norm_host(Computer)) AS HostName, sSiteName AS SiteName,
               norm_uri(csUriStem) AS ShellLocation, csUriStem, csUserAgent, csMethod,
               status_code(scStatus) AS StatusCode, csCookie, csReferer, csUriQuery
        FROM iis_rows
        WHERE cIP IS NOT NULL AND csUriStem IS NOT NULL
          AND time_of(tp) >= {logs_from} AND time_of(tp) < {logs_to})
),
-- a request matches when some candidate has the same (FileName, HostName)
matched AS (
    SELECT r.*, k.AlertIds, k.FirstAlertTime, k.dirs
    FROM requests r JOIN candidate_keys k ON r.FileName = k.FileName AND r.HostName = k.HostName
),
summary AS (
    SELECT AttackerIP, HostName, SiteName, ShellLocation, any_value(FileName) AS FileName,
           count(*) AS RequestCount, min(t) AS StartTime, max(t) AS EndTime,
           capped(csUserAgent) AS RequestUserAgents, capped(csMethod) AS RequestMethods,
           capped(StatusCode) AS RequestStatusCodes, capped(csCookie) AS RequestCookies,
           capped(csReferer) AS RequestReferers, capped(csUriQuery) AS RequestQueryStrings,
           list_sort(list_distinct(list(csUriStem))) AS RawUriStems,
           any_value(AlertIds) AS AlertIds, any_value(FirstAlertTime) AS FirstAlertTime, any_value(dirs) AS dirs
    FROM matched GROUP BY AttackerIP, HostName, SiteName, ShellLocation
)
SELECT AttackerIP, HostName, SiteName, ShellLocation, FileName, RequestCount, StartTime, EndTime,
       RequestUserAgents, RequestMethods, RequestStatusCodes, RequestCookies, RequestReferers, RequestQueryStrings,
       RawUriStems, AlertIds, FirstAlertTime,
       -- the directory part of ShellLocation (all before its last '/') is a suffix of some candidate's Directory
       len(list_filter(dirs, lambda d: suffix(d, left(ShellLocation, length(ShellLocation) - length(FileName) - 1))))
           > 0 AS PathMatched,
       StartTime AS "timestamp", AttackerIP AS IPCustomEntity, HostName AS HostCustomEntity
FROM summary
ORDER BY AttackerIP, HostName, SiteName NULLS LAST, ShellLocation;
