"""Write the CloudFormation template that AWS deploys from template.yaml, for checkov to scan.

SAM is a transform: the functions' roles, event rules and permissions and the state machine's role exist
only after it, so checkov scans its output rather than the SAM template. The translation is the local
stack's own (browserjobs.emulator.deploy.translate), so the scan covers what the local stack deploys as
well. Code folders are uploaded by `sam deploy`: here they become placeholder S3 locations, and the state
machine definition is inlined. Run with .venv's Python (samtranslator):
`python .checkov/translate.py template.yaml out.json`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import boto3
from samtranslator.yaml_helper import yaml_parse

from browserjobs.emulator.deploy import translate
from browserjobs.emulator.settings import REGION

CODE_LOCATIONS = ("CodeUri", "ContentUri")


def packaged(template: dict[str, Any], base: Path) -> dict[str, Any]:
    """The template as `sam package` leaves it: code in S3, the state machine definition readable."""
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        for location in CODE_LOCATIONS:
            if isinstance(properties.get(location), str):
                properties[location] = f"s3://uploaded-by-sam-deploy/{properties[location].strip('/')}"
        if isinstance(properties.get("DefinitionUri"), str):
            properties["Definition"] = json.loads((base / properties.pop("DefinitionUri")).read_text())
    return template


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    template = packaged(yaml_parse(args.template.read_text()), args.template.parent)
    deployed = translate(template, {}, boto3.Session(region_name=REGION))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(deployed, indent=1) + "\n")


if __name__ == "__main__":
    main()
