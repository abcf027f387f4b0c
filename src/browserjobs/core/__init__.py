"""Code shared by the Lambda functions (their layer), the worker image and the operator CLI: job model,
keys, settings, claim, cleanup, schemas and the contract."""
