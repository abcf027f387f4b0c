"""The embedded local stack, the operator CLI and the execution inspector (not deployed)."""
