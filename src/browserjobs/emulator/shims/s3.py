"""S3: where moto differs from AWS, and the shim that makes the local stack behave as AWS does.

Applied by browserjobs.emulator.shims.apply(); importing this module changes nothing.
"""

from __future__ import annotations

import json

from moto.s3 import notifications as s3_notifications

from browserjobs.emulator.shims import hooks

# --- S3: notifications invoke Lambda asynchronously -------------------------------------------------------
# moto invokes the function inside PutObject and waits for it; S3 invokes asynchronously.


def shim_s3_notifications_async() -> None:
    original = s3_notifications._invoke_awslambda

    def invoke_async(account_id, event_body, fn_arn, region_name):
        if hooks.current() is None:
            return original(account_id, event_body, fn_arn, region_name)
        from moto.awslambda.utils import get_backend

        function = get_backend(account_id, region_name).get_function(fn_arn)
        hooks.current().invoke_function(function, json.dumps(event_body).encode(), "Event")
        return None

    s3_notifications._invoke_awslambda = invoke_async
