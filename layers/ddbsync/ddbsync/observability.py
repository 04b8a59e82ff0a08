"""Powertools Logger, Metrics (EMF) and Tracer, shared by every handler.

No item data is logged at INFO: only counts, ids of failed records at WARNING
without their images, and reasons.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from aws_lambda_powertools import Logger, Metrics, Tracer

__all__ = ["logger", "metrics", "quiet_logs", "tracer"]

logger = Logger(service="ddbsync")
metrics = Metrics(namespace="ddbsync", service="ddbsync")
tracer = Tracer(service="ddbsync")


@contextlib.contextmanager
def quiet_logs(verbose: bool, level: int = logging.WARNING) -> Iterator[None]:
    """Keep the indexer's JSON logs below ``level`` out of a CLI's output unless ``verbose``.

    Powertools' Logger logs through the stdlib logger named after its service and sets
    that logger's level when created, so use this after the indexer is imported.
    """
    stdlib_logger = logging.getLogger("ddbsync")
    before = stdlib_logger.level
    if not verbose:
        stdlib_logger.setLevel(level)
    try:
        yield
    finally:
        stdlib_logger.setLevel(before)
