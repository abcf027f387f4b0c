"""The stack's default trace policy (docs/CONTRACTS.md, "Job"): a parameter of its own group, given to
intake, which fills the job record with it; and the artifacts' lifecycle rule covers the evidence."""

from __future__ import annotations

import pytest

from browserjobs.core.config import Settings
from browserjobs.core.contract import TRACE_POLICIES
from browserjobs.core.model import with_defaults
from tests.conftest import template

pytestmark = pytest.mark.unit

TEMPLATE = template()


def test_default_trace_offers_the_contracts_policies_and_defaults_to_on_failure():
    parameter = TEMPLATE["Parameters"]["DefaultTrace"]
    assert parameter["Type"] == "String" and parameter["Description"]
    assert [str(v) for v in parameter["AllowedValues"]] == list(TRACE_POLICIES)  # "off", not YAML's False
    assert parameter["Default"] == "on-failure"
    groups = TEMPLATE["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    assert [g["Parameters"] for g in groups if "DefaultTrace" in g["Parameters"]] == [["DefaultTrace"]]


def test_intake_gets_the_default_and_writes_it_into_job_records():
    variables = TEMPLATE["Resources"]["IntakeFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["DEFAULT_TRACE"] == {"Ref": "DefaultTrace"}
    settings = Settings.from_env({"DEFAULT_TRACE": "always"})
    job = {"lockKey": "l", "action": "browse"}
    assert with_defaults(job, settings)["trace"] == "always"
    assert with_defaults({**job, "trace": "off"}, settings)["trace"] == "off"


def test_the_artifact_lifecycle_rule_covers_every_jobs_evidence():
    rules = TEMPLATE["Resources"]["ArtifactsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    [rule] = [r for r in rules if r["Id"] == "ExpireJobArtifacts"]
    assert rule["Prefix"] == "jobs/" and rule["ExpirationInDays"] == {"Ref": "ArtifactRetentionDays"}
