"""CloudWatch: where moto differs from AWS, and the shim that makes the local stack behave as AWS does.

Applied by browserjobs.emulator.shims.apply(); importing this module changes nothing.
"""

from __future__ import annotations

from moto.cloudwatch.responses import CloudWatchResponse

# --- CloudWatch: composite alarms ---------------------------------------------------------------------------
# moto stores an alarm's AlarmRule and DescribeAlarms lists such alarms as CompositeAlarms, but it has no
# PutCompositeAlarm ("not been implemented"). Its PutMetricAlarm handler reads AlarmRule, the actions and the
# description, which are PutCompositeAlarm's parameters too
# (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutCompositeAlarm.html), so it
# serves both. Like every alarm in moto, a composite alarm is stored, never evaluated.


def shim_put_composite_alarm() -> None:
    CloudWatchResponse.put_composite_alarm = CloudWatchResponse.put_metric_alarm
