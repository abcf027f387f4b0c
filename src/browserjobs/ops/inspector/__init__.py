"""The execution inspector: a local web UI over a stack's executions, jobs, artifacts and DLQ."""
