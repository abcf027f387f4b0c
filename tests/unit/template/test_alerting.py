"""Alerting as the template wires it: AlertMode, the composite alarm, OK actions, the intake partial-failure
alarm on the metrics intake emits, and the saved Logs Insights queries."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.conftest import template

RESOURCES = template()["Resources"]
TOPIC = {"Ref": "AlertsTopic"}
ONLY_IN_ALL_MODE = {"Fn::If": ["AlertOnEveryAlarm", [TOPIC], {"Ref": "AWS::NoValue"}]}
NAMESPACE = template()["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
METRIC_ALARMS = sorted(name for name, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm")


def test_alert_mode_is_composite_by_default_or_all():
    parameter = template()["Parameters"]["AlertMode"]

    assert parameter["Default"] == "composite"
    assert set(parameter["AllowedValues"]) == {"composite", "all"}
    assert template()["Conditions"]["AlertOnEveryAlarm"] == {"Fn::Equals": [{"Ref": "AlertMode"}, "all"]}


@pytest.mark.parametrize("name", METRIC_ALARMS)
def test_every_metric_alarm_notifies_only_in_all_mode(name: str):
    properties = RESOURCES[name]["Properties"]

    assert properties["AlarmActions"] == ONLY_IN_ALL_MODE
    assert properties.get("OKActions", ONLY_IN_ALL_MODE) == ONLY_IN_ALL_MODE


@pytest.mark.parametrize("name", ["JobDeadLetterQueueNotEmptyAlarm", "IntakeDeadLetterQueueNotEmptyAlarm"])
def test_a_drained_dlq_closes_the_loop(name: str):
    assert RESOURCES[name]["Properties"]["OKActions"] == ONLY_IN_ALL_MODE


def _rule_alarms(rule: Any) -> set[str]:
    text, _ = (rule["Fn::Sub"], None) if isinstance(rule["Fn::Sub"], str) else rule["Fn::Sub"]
    return set(re.findall(r'ALARM\("\$\{(\w+)\}"\)', text))


def test_the_composite_alarm_pages_for_a_dlq_or_failing_intake_with_a_backlog():
    composite = RESOURCES["OperationsAlarm"]
    properties = composite["Properties"]
    rule = properties["AlarmRule"]["Fn::Sub"]

    assert composite["Type"] == "AWS::CloudWatch::CompositeAlarm"
    assert properties["AlarmActions"] == [TOPIC] and properties["OKActions"] == [TOPIC]
    assert _rule_alarms(properties["AlarmRule"]) == {
        "JobDeadLetterQueueNotEmptyAlarm",
        "IntakeDeadLetterQueueNotEmptyAlarm",
        "JobEventsDeadLetterQueueNotEmptyAlarm",
        "IntakeErrorsAlarm",
        "IntakePartialFailureAlarm",
        "IntakeBacklogAgeAlarm",
    }
    assert re.search(
        r"OR \(\(ALARM\(\"\$\{IntakeErrorsAlarm\}\"\) OR .*\)\s+AND ALARM\(\"\$\{IntakeBacklogAge", rule
    )
    assert all(
        RESOURCES[name]["Type"] == "AWS::CloudWatch::Alarm" for name in _rule_alarms(properties["AlarmRule"])
    )


def test_the_partial_failure_alarm_reads_the_metrics_intake_emits(app, event, lambda_context, capsys, stack):
    metrics = RESOURCES["IntakePartialFailureAlarm"]["Properties"]["Metrics"]
    alarmed = {
        m["MetricStat"]["Metric"]["MetricName"]: m["MetricStat"]["Metric"]
        for m in metrics
        if "MetricStat" in m
    }
    intake = app("intake")

    intake.lambda_handler(event("intake-sqs"), lambda_context)

    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {
        metric["Name"]: document
        for document in emitted
        for directive in document["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }
    for name, metric in alarmed.items():
        document = names[name]
        assert metric["Namespace"] == NAMESPACE  # what the functions emit on AWS (the tests use their own)
        dimensions = {d["Name"] for d in metric["Dimensions"]}
        assert dimensions == set(document["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0])
        assert document["Stage"] == "dev" and document["service"] == "browserjobs"
    assert names["IntakeRecords"]["IntakeRecords"] == [len(event("intake-sqs")["Records"])]
    assert names["IntakeRecordsFailed"]["IntakeRecordsFailed"] == [0]


def test_every_saved_query_reads_log_groups_of_the_stack():
    queries = {
        name: r["Properties"] for name, r in RESOURCES.items() if r["Type"] == "AWS::Logs::QueryDefinition"
    }

    assert {q["Name"]["Fn::Sub"].split("/", 1)[1] for q in queries.values()} == {
        "errors-by-reason",
        "one-job-by-jobid",
        "slow-jobs",
        "rejected-inputs",
    }
    for properties in queries.values():
        groups = [group["Ref"] for group in properties["LogGroupNames"]]
        assert groups and all(RESOURCES[g]["Type"] == "AWS::Logs::LogGroup" for g in groups)
        assert properties["QueryString"].strip()
