"""The functions' custom metrics: Powertools' EMF metrics with the stack's Stage as a dimension."""

from __future__ import annotations

import os

from aws_lambda_powertools import Metrics

DEFAULT_STAGE = "dev"  # the stack parameter Stage's default


def stage_metrics() -> Metrics:
    """Metrics whose every data point carries Stage (the STAGE variable the template sets from Stage).

    Alarms and dashboard widgets on custom metrics name the same dimensions: service and Stage.
    """
    metrics = Metrics()
    metrics.set_default_dimensions(Stage=os.environ.get("STAGE") or DEFAULT_STAGE)
    return metrics
