"""Refuses stack names that make the intake bucket's name invalid, before `sam deploy` creates anything.

IntakeBucket is named `${AWS::StackName}-intake-${AWS::AccountId}-${AWS::Region}` (template.yaml says
why). CloudFormation accepts stack names S3 refuses as bucket names (capitals, too long), and the template's
Rules cannot test them: rule functions compare whole strings, with no length or pattern test. Left alone,
the deploy fails at IntakeBucket, after the retained tables and artifacts bucket were created (and are kept
by the rollback). Bucket naming rules: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html

`python -m browserjobs.core.stack_names [NAME ...]` checks the names given, else every stack_name in
samconfig.toml.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from browserjobs.core.project import project_dir

DEFAULT_STACK = "browserjobs"
INTAKE_BUCKET_NAME = "${AWS::StackName}-intake-${AWS::AccountId}-${AWS::Region}"
ACCOUNT_ID_LENGTH = 12
# The longest Region code (ap-southeast-1, ap-northeast-3, cn-northwest-1, ...): one name fits every Region.
LONGEST_REGION = "ap-southeast-1"
MAX_BUCKET_NAME = 63
BUCKET_CHARACTERS = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
MAX_STACK_NAME = MAX_BUCKET_NAME - len(
    INTAKE_BUCKET_NAME.replace("${AWS::StackName}", "")
    .replace("${AWS::AccountId}", "0" * ACCOUNT_ID_LENGTH)
    .replace("${AWS::Region}", LONGEST_REGION)
)


def intake_bucket_name(
    stack_name: str, account_id: str = "0" * ACCOUNT_ID_LENGTH, region: str = LONGEST_REGION
) -> str:
    return (
        INTAKE_BUCKET_NAME.replace("${AWS::StackName}", stack_name)
        .replace("${AWS::AccountId}", account_id)
        .replace("${AWS::Region}", region)
    )


def problems(stack_name: str) -> list[str]:
    """Why this stack name cannot deploy the template (empty when it can), in any Region."""
    found = []
    if not BUCKET_CHARACTERS.match(stack_name) or ".." in stack_name:
        found.append("use lowercase letters, digits and hyphens only (it names an S3 bucket)")
    if len(stack_name) > MAX_STACK_NAME:
        found.append(f"use at most {MAX_STACK_NAME} characters (the intake bucket's name may have 63)")
    found += [
        f"do not start it with {p!r} (reserved by S3)" for p in RESERVED_PREFIXES if stack_name.startswith(p)
    ]
    return found


def default_stack_name(samconfig: Path | None = None) -> str:
    """The stack name `sam deploy` uses by default, so the CLI finds what was deployed."""
    config = _samconfig(samconfig)
    default_env = config.get("default", {})
    for command in ("deploy", "global"):
        name = default_env.get(command, {}).get("parameters", {}).get("stack_name")
        if name:
            return str(name)
    return DEFAULT_STACK


def _samconfig(samconfig: Path | None) -> dict[str, Any]:
    samconfig = samconfig or project_dir() / "samconfig.toml"
    return tomllib.loads(samconfig.read_text(encoding="utf-8")) if samconfig.is_file() else {}


def configured_stack_names(samconfig: Path | None = None) -> dict[str, str]:
    """Environment -> stack_name for every environment of samconfig.toml that names one."""
    config = _samconfig(samconfig)
    names = {}
    for environment, commands in config.items():
        if isinstance(commands, dict):
            for command in ("deploy", "global"):
                name = commands.get(command, {}).get("parameters", {}).get("stack_name")
                if name:
                    names[environment] = str(name)
                    break
    return names


def main(argv: list[str]) -> int:
    names = {name: name for name in argv} or configured_stack_names()
    failed = False
    for where, name in names.items():
        for problem in problems(name):
            failed = True
            label = name if where == name else f"{name} (samconfig.toml [{where}])"
            print(f"stack name {label}: {problem}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
