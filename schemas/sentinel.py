"""Log Analytics tables as exported: every documented column with its Log Analytics type.

Log Analytics types map to Spark as: string -> string, datetime -> timestamp (UTC), int -> int, long -> long,
real -> double, bool -> boolean. `dynamic` columns (Entities, ExtendedProperties, ...) are kept as JSON text.
"""
from __future__ import annotations

from pyspark.sql.types import (BooleanType, DoubleType, IntegerType, LongType, StringType, StructField, StructType,
                               TimestampType)

_LA_TYPES = {"string": StringType(), "datetime": TimestampType(), "int": IntegerType(), "long": LongType(),
             "real": DoubleType(), "bool": BooleanType(), "dynamic": StringType()}


def _schema(columns: list[tuple[str, str, str]]) -> StructType:
    return StructType([
        StructField(name, _LA_TYPES[la_type], True, {"comment": comment, "la_type": la_type})
        for name, la_type, comment in columns
    ])


SECURITY_ALERT_COLUMNS = [
    ("TenantId", "string", "Log Analytics workspace id"),
    ("TimeGenerated", "datetime", "When the alert was generated (UTC)"),
    ("DisplayName", "string", "Display name of the alert"),
    ("AlertName", "string", "Name of the alert"),
    ("AlertSeverity", "string", "Severity of the alert"),
    ("Description", "string", "Description of the alert"),
    ("ProviderName", "string", "Name of the provider that raised the alert (MDATP for Defender for Endpoint)"),
    ("VendorName", "string", "Vendor of the alert"),
    ("VendorOriginalId", "string", "Alert id in the vendor's product"),
    ("SystemAlertId", "string", "Unique id of the alert"),
    ("ResourceId", "string", "Id of the resource the alert is about"),
    ("SourceComputerId", "string", "Id of the agent computer"),
    ("AlertType", "string", "Type of the alert"),
    ("ConfidenceLevel", "string", "Confidence level"),
    ("ConfidenceScore", "real", "Confidence score"),
    ("IsIncident", "bool", "Whether the alert is an incident"),
    ("StartTime", "datetime", "Start of the activity the alert is about"),
    ("EndTime", "datetime", "End of the activity the alert is about"),
    ("ProcessingEndTime", "datetime", "When the alert was published"),
    ("RemediationSteps", "dynamic", "Remediation steps"),
    ("ExtendedProperties", "dynamic", "Provider-specific properties (JSON)"),
    ("Entities", "dynamic", "Entities of the alert: a JSON array with $id/$ref references"),
    ("SourceSystem", "string", "Source system"),
    ("WorkspaceSubscriptionId", "string", "Workspace subscription"),
    ("WorkspaceResourceGroup", "string", "Workspace resource group"),
    ("ExtendedLinks", "dynamic", "Links related to the alert"),
    ("ProductName", "string", "Product that raised the alert"),
    ("ProductComponentName", "string", "Component of the product"),
    ("AlertLink", "string", "Link to the alert in its portal"),
    ("Status", "string", "Status of the alert (New, InProgress, Resolved, Dismissed)"),
    ("CompromisedEntity", "string", "Display name of the main entity"),
    ("Tactics", "string", "MITRE ATT&CK tactics"),
    ("Techniques", "string", "MITRE ATT&CK techniques"),
    ("SubTechniques", "string", "MITRE ATT&CK sub-techniques"),
    ("Type", "string", "Name of the table"),
    ("_ResourceId", "string", "Azure resource id of the record"),
]

W3C_IIS_LOG_COLUMNS = [
    ("TenantId", "string", "Log Analytics workspace id"),
    ("TimeGenerated", "datetime", "When the request was logged (UTC)"),
    ("Computer", "string", "Computer the agent collected the log from"),
    ("sSiteName", "string", "Site name (s-sitename)"),
    ("sComputerName", "string", "Server name (s-computername)"),
    ("sIP", "string", "Server IP address (s-ip)"),
    ("csMethod", "string", "HTTP method (cs-method)"),
    ("csUriStem", "string", "Requested path (cs-uri-stem)"),
    ("csUriQuery", "string", "Query string (cs-uri-query)"),
    ("sPort", "int", "Server port (s-port)"),
    ("csUserName", "string", "Authenticated user (cs-username)"),
    ("cIP", "string", "Client IP address (c-ip)"),
    ("csVersion", "string", "Protocol version (cs-version)"),
    ("csUserAgent", "string", "User agent (cs(User-Agent)), '+' for spaces as IIS logs it"),
    ("csCookie", "string", "Cookie (cs(Cookie))"),
    ("csReferer", "string", "Referer (cs(Referer))"),
    ("csHost", "string", "Host header (cs-host)"),
    ("scStatus", "string", "HTTP status (sc-status)"),
    ("scSubStatus", "string", "HTTP sub-status (sc-substatus)"),
    ("scWin32Status", "string", "Windows status (sc-win32-status)"),
    ("scBytes", "long", "Bytes sent (sc-bytes)"),
    ("csBytes", "long", "Bytes received (cs-bytes)"),
    ("TimeTaken", "long", "Time taken in milliseconds (time-taken)"),
    ("RemoteIPCountry", "string", "Country of the client IP"),
    ("RemoteIPLatitude", "real", "Latitude of the client IP"),
    ("RemoteIPLongitude", "real", "Longitude of the client IP"),
    ("AzureDeploymentID", "string", "Azure deployment id"),
    ("Role", "string", "Azure role"),
    ("RoleInstance", "string", "Azure role instance"),
    ("StorageAccount", "string", "Storage account the log was read from"),
    ("FileUri", "string", "URI of the log file"),
    ("FileOffset", "long", "Offset in the log file"),
    ("SourceSystem", "string", "Source system"),
    ("MG", "string", "Management group id"),
    ("ManagementGroupName", "string", "Management group name"),
    ("Type", "string", "Name of the table"),
    ("_ResourceId", "string", "Azure resource id of the record"),
]

SECURITY_ALERT = _schema(SECURITY_ALERT_COLUMNS)
W3C_IIS_LOG = _schema(W3C_IIS_LOG_COLUMNS)

SOURCES = {"security_alert": SECURITY_ALERT, "w3c_iis_log": W3C_IIS_LOG}
SOURCE_TABLE_NAMES = {"security_alert": "SecurityAlert", "w3c_iis_log": "W3CIISLog"}
