"""The operator CLI and the execution inspector: the same against AWS and against any endpoint."""
