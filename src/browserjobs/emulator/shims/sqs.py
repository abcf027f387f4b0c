"""SQS: where moto differs from AWS, and the shim that makes the local stack behave as AWS does.

Applied by browserjobs.emulator.shims.apply(); importing this module changes nothing.
"""

from __future__ import annotations

from moto.sqs.models import Queue

# --- SQS: event source mappings poll, they are not called from SendMessage --------------------------------
# moto invokes the function inside SendMessage with one message, ignores batch size, batching windows and
# ReportBatchItemFailures, and never retries. The local stack polls the queue like Lambda's pollers do.


def shim_sqs_inline_event_source_mapping() -> None:
    # moto writes the mapping into this dict at CreateEventSourceMapping and reads it in SendMessage; an
    # always-empty view stops the inline call. The mappings themselves live in the Lambda backend.
    Queue.lambda_event_source_mappings = property(lambda self: {}, lambda self, value: None)
