"""The local stack's drift decision: what the template set against what a resource holds now.

AWS compares only the properties the template sets, reports a resource it cannot find as DELETED and one
of a type without drift support as NOT_CHECKED
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-stack-drift.html).
"""

from __future__ import annotations

import pytest

from browserjobs.emulator.shims.cloudformation_drift import resource_drift

pytestmark = pytest.mark.unit


def test_template_text_and_live_numbers_are_the_same_value():
    expected = {
        "VisibilityTimeout": "60",
        "RedrivePolicy": {"maxReceiveCount": 3, "deadLetterTargetArn": "a"},
    }
    live = {
        "VisibilityTimeout": 60,
        "RedrivePolicy": {"maxReceiveCount": "3", "deadLetterTargetArn": "a"},
        "DelaySeconds": 5,  # not in the template: not compared
    }
    assert resource_drift("AWS::SQS::Queue", expected, live) == {
        "StackResourceDriftStatus": "IN_SYNC",
        "PropertyDifferences": [],
    }


def test_a_changed_value_is_modified_with_its_path():
    drift = resource_drift("AWS::Logs::LogGroup", {"RetentionInDays": 30}, {"RetentionInDays": 1})
    assert drift["StackResourceDriftStatus"] == "MODIFIED"
    assert drift["PropertyDifferences"] == [
        {
            "PropertyPath": "/RetentionInDays",
            "ExpectedValue": "30",
            "ActualValue": "1",
            "DifferenceType": "NOT_EQUAL",
        }
    ]


def test_a_removed_setting_a_changed_list_and_a_flag():
    expected = {"AlarmActions": ["arn:topic"], "ActionsEnabled": "true", "Threshold": 1}
    live = {"AlarmActions": [], "ActionsEnabled": True, "Threshold": None}
    drift = resource_drift("AWS::CloudWatch::Alarm", expected, live)
    assert [(d["PropertyPath"], d["DifferenceType"]) for d in drift["PropertyDifferences"]] == [
        ("/AlarmActions", "NOT_EQUAL"),
        ("/Threshold", "REMOVE"),
    ]


def test_a_missing_resource_is_deleted_and_an_unknown_type_not_checked():
    assert (
        resource_drift("AWS::Lambda::Function", {"Timeout": 3}, None)["StackResourceDriftStatus"] == "DELETED"
    )
    assert resource_drift("AWS::IAM::Role", {"Path": "/"}, {})["StackResourceDriftStatus"] == "NOT_CHECKED"
