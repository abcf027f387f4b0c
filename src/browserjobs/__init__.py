"""browserjobs: browser automation jobs on AWS Step Functions and ECS Fargate.

Subpackages, by where their code runs:
    core      the Lambda layer, the worker image and the operator CLI (job model, keys, schemas, contract)
    worker    the Fargate worker image only (Playwright)
    ops       the operator CLI and the execution inspector, against AWS or any endpoint
    emulator  the local stack on moto (laptop and CI only: browserjobs[local])
    testing   the demo, scenarios, sample site and test harness on top of ops and the emulator
"""
