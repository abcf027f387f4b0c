"""The demo, scenarios, sample site and test harness, on top of the operator code and the local stack."""
