"""``ddbsync status``: the pipeline's health on one screen, with the command that fixes each problem.

* :mod:`~ddbsync.status.targets`: what to look at, from a stack's outputs or flags;
* :mod:`~ddbsync.status.sources`: one small reader per source (Lambda, CloudWatch, SQS,
  OpenSearch, DynamoDB, Step Functions, S3), each over an injected client;
* :mod:`~ddbsync.status.gather`: every source into :class:`Facts`, a failure as ``Unknown``;
* :mod:`~ddbsync.status.judge`: facts to findings (pure), each with its fix command;
* :mod:`~ddbsync.status.render`: the screen, or ``--json``.
"""

from ddbsync.status.facts import Facts, Skipped, Unknown
from ddbsync.status.gather import Clients, gather
from ddbsync.status.judge import NOTICE, PROBLEM, Finding, Thresholds, judge
from ddbsync.status.render import as_json, as_text
from ddbsync.status.targets import Targets

__all__ = [
    "NOTICE",
    "PROBLEM",
    "Clients",
    "Facts",
    "Finding",
    "Skipped",
    "Targets",
    "Thresholds",
    "Unknown",
    "as_json",
    "as_text",
    "gather",
    "judge",
]
