"""What ``ddbsync status`` looks at: names and addresses, from a stack's outputs or from flags.

A flag given beside ``--stack`` wins over the output of the same thing. Anything left
unnamed is not checked (its section says which flag or output would name it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.type_defs import DescribeStacksOutputTypeDef

__all__ = ["OUTPUT_OF", "StackReader", "Targets"]


@dataclass(frozen=True, slots=True)
class Targets:
    """Everything status may read; None means not named."""

    stack: str | None = None
    table: str | None = None
    alias: str | None = None
    endpoint: str | None = None
    service: str | None = None
    indexer_mapping: str | None = None
    archiver_mapping: str | None = None
    indexer_function: str | None = None
    archiver_function: str | None = None
    record_dlq: str | None = None
    on_failure_queue: str | None = None
    archive_on_failure_queue: str | None = None
    state_machine: str | None = None
    archive_bucket: str | None = None

    def merged(self, overrides: Targets) -> Targets:
        """These targets with every field ``overrides`` names taken from it."""
        given = {f.name: getattr(overrides, f.name) for f in fields(overrides)}
        return replace(self, **{k: v for k, v in given.items() if v is not None})

    @classmethod
    def from_outputs(cls, stack: str, outputs: Mapping[str, str]) -> Targets:
        """The targets a deployed stack names in its outputs (template.yaml, Outputs)."""
        named = {attr: outputs.get(key) or None for attr, key in OUTPUT_OF.items()}
        return cls(stack=stack, **named)


# Targets field -> the stack output that holds it.
OUTPUT_OF: dict[str, str] = {
    "table": "TableName",
    "alias": "IndexAlias",
    "endpoint": "OpenSearchEndpoint",
    "service": "OpenSearchService",
    "indexer_mapping": "EventSourceMappingId",
    "archiver_mapping": "ArchiveEventSourceMappingId",
    "indexer_function": "StreamIndexerFunctionName",
    "archiver_function": "ArchiverFunctionName",
    "record_dlq": "RecordDlqUrl",
    "on_failure_queue": "OnFailureQueueUrl",
    "archive_on_failure_queue": "ArchiveOnFailureQueueUrl",
    "state_machine": "BackfillStateMachineArn",
    "archive_bucket": "ArchiveBucketName",
}


class StackReader(Protocol):
    """The one CloudFormation call status makes (a boto3 client, or a stand-in)."""

    def describe_stacks(self, *, StackName: str) -> DescribeStacksOutputTypeDef: ...
