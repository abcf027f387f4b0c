"""Service Quotas: the Fargate quota moto does not know, so that launch checks read it as on AWS.

Applied by browserjobs.emulator.shims.apply(); importing this module changes nothing.

moto knows only VPC quotas (GetServiceQuota for any other service: NoSuchResourceException). The local
account gets Fargate's On-Demand vCPU quota ("Fargate On-Demand vCPU resource count", L-3032A538) at 6 vCPU,
a small account's value: AWS sets each account's value itself, starts new accounts low and raises it with
use (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-quotas.html), so a deployed
stack's doctor reads its own. RequestServiceQuotaIncrease raises it at once (AWS
reviews the request first: its status is PENDING, then APPROVED or DENIED), and like AWS refuses a value
that is not above the current one.
"""

from __future__ import annotations

import datetime
import json
import threading
import uuid
from typing import Any

from moto.servicequotas.models import ServiceQuotasBackend
from moto.servicequotas.responses import ServiceQuotasResponse

FARGATE_ON_DEMAND_VCPU = ("fargate", "L-3032A538", "Fargate On-Demand vCPU resource count", 6.0)

_applied: dict[tuple[str, str], float] = {}  # (account, region) -> the Fargate vCPU quota granted
_lock = threading.Lock()


def _fargate_quota(account: str, region: str, value: float) -> dict[str, Any]:
    service, code, name, _ = FARGATE_ON_DEMAND_VCPU
    return {
        "ServiceCode": service,
        "ServiceName": "AWS Fargate",
        "QuotaArn": f"arn:aws:servicequotas:{region}:{account}:{service}/{code}",
        "QuotaCode": code,
        "QuotaName": name,
        "Value": value,
        "Unit": "None",
        "Adjustable": True,
        "GlobalQuota": False,
    }


def _current(account: str, region: str) -> float:
    with _lock:
        return _applied.get((account, region), FARGATE_ON_DEMAND_VCPU[3])


def _is_fargate(service_code: str, quota_code: str) -> bool:
    return (service_code, quota_code) == FARGATE_ON_DEMAND_VCPU[:2]


def shim_fargate_quota() -> None:
    original_get = ServiceQuotasBackend.get_service_quota

    def get_service_quota(self, service_code: str, quota_code: str) -> dict[str, Any]:
        if _is_fargate(service_code, quota_code):
            return _fargate_quota(
                self.account_id, self.region_name, _current(self.account_id, self.region_name)
            )
        return original_get(self, service_code, quota_code)

    def request_service_quota_increase(self: ServiceQuotasResponse) -> Any:
        service, code = self._get_param("ServiceCode"), self._get_param("QuotaCode")
        desired = float(self._get_param("DesiredValue"))
        if not _is_fargate(service, code):
            return 400, {}, json.dumps({"__type": "NoSuchResourceException", "message": "no such quota"})
        key = (self.current_account, self.region)
        with _lock:
            current = _applied.get(key, FARGATE_ON_DEMAND_VCPU[3])
            if desired <= current:
                message = f"DesiredValue {desired:g} must be greater than the current value {current:g}"
                return 400, {}, json.dumps({"__type": "IllegalArgumentException", "message": message})
            _applied[key] = desired
        now = datetime.datetime.now(datetime.UTC).timestamp()
        request = {
            "Id": uuid.uuid4().hex,
            "ServiceCode": service,
            "QuotaCode": code,
            "QuotaName": FARGATE_ON_DEMAND_VCPU[2],
            "DesiredValue": desired,
            "Status": "APPROVED",
            "Created": now,
            "LastUpdated": now,
            "Unit": "None",
            "GlobalQuota": False,
        }
        return json.dumps({"RequestedQuota": request})

    ServiceQuotasBackend.get_service_quota = get_service_quota
    ServiceQuotasResponse.request_service_quota_increase = request_service_quota_increase
