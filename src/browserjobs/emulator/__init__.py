"""The local stack: moto's endpoint and Step Functions interpreter as strict as AWS (laptop and CI only)."""
