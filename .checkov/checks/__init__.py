"""Custom checkov checks (checkov loads a directory's checks only when it has an __init__.py)."""
