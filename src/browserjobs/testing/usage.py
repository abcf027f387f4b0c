"""What `make local` prints: where the endpoint is, the stack's Outputs, and how to use it."""

from __future__ import annotations

import json

from browserjobs.emulator.stack import LocalStack


def describe(stack: LocalStack, site_url: str) -> str:
    env = stack.environment()
    url, name = stack.endpoint_url, stack.stack_name
    timings = stack.timings
    assert timings is not None  # the stack is up
    width = max(len(key) for key in stack.outputs)
    outputs = "\n".join(f"  {key:<{width}}  {value}" for key, value in sorted(stack.outputs.items()))
    queue, machine = stack.outputs["IntakeQueueUrl"], stack.outputs["StateMachineArn"]
    job = {"lockKey": "demo#1", "action": "browse", "params": {"steps": [{"goto": {"url": f"{site_url}/"}}]}}
    return f"""
Local stack {name!r} is up at {url} (started in {timings.total_seconds:.1f}s)
Logs of functions and workers: {stack.logs.folder}/ (and CloudWatch Logs at the endpoint)
A sample site to point jobs at: {site_url}/ (also /slow?seconds=N, /hang, /status/503)

Stack outputs:
{outputs}

Use it with any AWS client:
  export AWS_ENDPOINT_URL={url} AWS_REGION={env["AWS_REGION"]} \\
         AWS_ACCESS_KEY_ID={env["AWS_ACCESS_KEY_ID"]} AWS_SECRET_ACCESS_KEY={env["AWS_SECRET_ACCESS_KEY"]}
  aws --endpoint-url {url} cloudformation describe-stacks --stack-name {name}
  aws --endpoint-url {url} sqs send-message --queue-url {queue} \\
      --message-body '{json.dumps(job)}'
  aws --endpoint-url {url} stepfunctions list-executions --state-machine-arn {machine}
  browserjobs --local status <jobId>        # the project's CLI (inspector: browserjobs --local inspect)

Ctrl-C stops the stack and every process it started.
"""
