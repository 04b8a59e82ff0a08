"""Powertools Logger, Metrics (EMF) and Tracer, shared by every handler.

No item data is logged at INFO: only counts, ids of failed records at WARNING
without their images, and reasons.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

__all__ = ["logger", "metrics", "tracer"]

logger = Logger(service="ddbsync")
metrics = Metrics(namespace="ddbsync", service="ddbsync")
tracer = Tracer(service="ddbsync")
