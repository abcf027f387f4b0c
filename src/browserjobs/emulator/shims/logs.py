"""CloudWatch Logs: where moto differs from AWS, and the shim that makes the local stack behave as AWS does.

Applied by browserjobs.emulator.shims.apply(); importing this module changes nothing.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from moto.logs.models import LogGroup
from moto.logs.responses import LogsResponse

# --- CloudWatch Logs: saved Logs Insights queries --------------------------------------------------------
# moto has no query definitions (PutQueryDefinition "not been implemented"), so AWS::Logs::QueryDefinition
# cannot be created. Kept per account and Region: PutQueryDefinition (a new id, or an update of the given
# one), DescribeQueryDefinitions (optionally by name prefix) and DeleteQueryDefinition, with the fields of
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_QueryDefinition.html.

_definitions: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
_definitions_lock = threading.Lock()


def _stored(response: LogsResponse) -> dict[str, dict[str, Any]]:
    return _definitions.setdefault((response.current_account, response.region), {})


def _put_query_definition(self: LogsResponse) -> str:
    with _definitions_lock:
        stored = _stored(self)
        definition_id = self._get_param("queryDefinitionId") or str(uuid.uuid4())
        stored[definition_id] = {
            "queryDefinitionId": definition_id,
            "name": self._get_param("name"),
            "queryString": self._get_param("queryString"),
            "logGroupNames": self._get_param("logGroupNames") or [],
            "lastModified": int(time.time() * 1000),
        }
    return json.dumps({"queryDefinitionId": definition_id})


def _describe_query_definitions(self: LogsResponse) -> str:
    prefix = self._get_param("queryDefinitionNamePrefix") or ""
    with _definitions_lock:
        found = [dict(d) for d in _stored(self).values() if d["name"].startswith(prefix)]
    return json.dumps({"queryDefinitions": sorted(found, key=lambda d: d["name"])})


def _delete_query_definition(self: LogsResponse) -> str:
    with _definitions_lock:
        removed = _stored(self).pop(self._get_param("queryDefinitionId"), None)
    return json.dumps({"success": removed is not None})


def shim_query_definitions() -> None:
    LogsResponse.put_query_definition = _put_query_definition
    LogsResponse.describe_query_definitions = _describe_query_definitions
    LogsResponse.delete_query_definition = _delete_query_definition


# --- CloudWatch Logs: a CloudFormation log group's KMS key ------------------------------------------------
# moto's CloudFormation passes the template's properties to CreateLogGroup as they are, which reads the key
# as `kmsKeyId` (the API's spelling): a group created from a template with KmsKeyId is left unencrypted.


def shim_cloudformation_log_group_kms_key() -> None:
    original = LogGroup.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls, name, cloudformation_json, account_id, region_name, **kw):
        group = original(cls, name, cloudformation_json, account_id, region_name, **kw)
        group.kms_key_id = cloudformation_json["Properties"].get("KmsKeyId", group.kms_key_id)
        return group

    LogGroup.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)
