"""Code shared by the browserjobs Lambda functions: job model, keys, settings, claim and cleanup."""
