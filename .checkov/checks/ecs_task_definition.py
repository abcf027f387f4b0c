"""Custom checkov checks for ECS task definitions' containers, which checkov's CloudFormation checks omit.

Chromium runs without its sandbox on Fargate (no custom seccomp profile there), so the container itself
must be hardened: read-only root filesystem, a non-root user, an init process that reaps Chromium's
children, and no Linux capabilities. Every container of a task definition must pass; a task definition
whose containers cannot be read (none, or built by an intrinsic function) fails, as nothing is proven.
Loaded with `checkov --external-checks-dir`.
"""

from __future__ import annotations

from typing import Any

from cfn_values import as_dict, is_true
from checkov.cloudformation.checks.resource.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult

TASK_DEFINITION = ("AWS::ECS::TaskDefinition",)
ROOT_USERS = frozenset({"root", "0"})


class EveryContainerCheck(BaseResourceCheck):
    """Passes when the task definition lists containers and every one of them satisfies `passes`."""

    def __init__(self, name: str, check_id: str) -> None:
        super().__init__(
            name=name,
            id=check_id,
            categories=(CheckCategories.GENERAL_SECURITY,),
            supported_resources=TASK_DEFINITION,
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = ["Properties/ContainerDefinitions"]
        containers = as_dict(conf.get("Properties")).get("ContainerDefinitions")
        if not isinstance(containers, list) or not containers:
            return CheckResult.FAILED
        return CheckResult.PASSED if all(self.passes(as_dict(c)) for c in containers) else CheckResult.FAILED

    def passes(self, container: dict[str, Any]) -> bool:
        raise NotImplementedError


class ReadonlyRootFilesystem(EveryContainerCheck):
    def __init__(self) -> None:
        super().__init__("Ensure every ECS container has a read-only root filesystem", "CKV_BJ_3")

    def passes(self, container: dict[str, Any]) -> bool:
        return is_true(container.get("ReadonlyRootFilesystem"))


class NonRootUser(EveryContainerCheck):
    def __init__(self) -> None:
        super().__init__("Ensure every ECS container runs as a non-root user", "CKV_BJ_4")

    def passes(self, container: dict[str, Any]) -> bool:
        # User is "user", "uid", "user:group" or "uid:gid"; absent means the image's user, often root.
        user = container.get("User")
        if isinstance(user, int) and not isinstance(user, bool):
            user = str(user)
        if not isinstance(user, str) or not user.strip():
            return False
        return user.split(":", 1)[0].strip() not in ROOT_USERS


class InitProcessEnabled(EveryContainerCheck):
    def __init__(self) -> None:
        super().__init__("Ensure every ECS container runs an init process (InitProcessEnabled)", "CKV_BJ_5")

    def passes(self, container: dict[str, Any]) -> bool:
        return is_true(as_dict(container.get("LinuxParameters")).get("InitProcessEnabled"))


class AllCapabilitiesDropped(EveryContainerCheck):
    def __init__(self) -> None:
        super().__init__("Ensure every ECS container drops all Linux capabilities and adds none", "CKV_BJ_6")

    def passes(self, container: dict[str, Any]) -> bool:
        capabilities = as_dict(as_dict(container.get("LinuxParameters")).get("Capabilities"))
        dropped = capabilities.get("Drop")
        return isinstance(dropped, list) and "ALL" in dropped and not capabilities.get("Add")


readonly_root = ReadonlyRootFilesystem()
non_root = NonRootUser()
init_process = InitProcessEnabled()
capabilities_dropped = AllCapabilitiesDropped()
