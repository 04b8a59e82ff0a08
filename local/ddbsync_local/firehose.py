"""A local Firehose delivery stream that writes S3 objects the way the template's stream does.

moto's Firehose writes each ``PutRecordBatch`` straight to one S3 object: no processors,
no delimiter, no compression, no partitioning. The archive's reader (the rebuild, Athena)
depends on all of those, so the demo and the tests use this stand-in instead. It reads
the settings of ``ArchiveDeliveryStream`` from template.yaml (:func:`stream_config`) and
plays Amazon Data Firehose's documented behaviour for them:

* ``put_record_batch(DeliveryStreamName=..., Records=[{"Data": bytes}, ...])`` answers as
  the API does: ``FailedPutCount``, ``Encrypted`` and one ``RequestResponses`` entry per
  record, in order, with a ``RecordId`` or an ``ErrorCode`` and ``ErrorMessage``. A call
  over the API's quotas (500 records, 4 MiB, 1,000 KiB a record), with no records, or to
  an unknown stream raises botocore's ``ClientError``, as boto3 would.
* dynamic partitioning: each record's ``MetadataExtractionQuery`` runs with the PyPI
  ``jq`` package (the pinned 1.5.0 bundles jq 1.6, the engine the template names); its
  one output object gives the ``!{partitionKeyFromQuery:...}`` values of the ``Prefix``.
* the ``AppendDelimiterToRecord`` processor's delimiter (its escapes, ``\\n``, decoded)
  after every record, and ``CompressionFormat`` GZIP (``.gz``) per object.
* buffering per partition: an object is written when a partition's buffer reaches
  ``BufferingHints.SizeInMBs`` (the template parameter's Default unless overridden) and
  by :meth:`LocalFirehose.flush`, which stands for the buffer interval running out.
* object keys ``<evaluated prefix><stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>.gz``,
  the time being the arrival of the object's oldest record (UTC); ``!{timestamp:...}``
  expressions are evaluated at that instant (the documented rule).
* a record that is not JSON, whose query fails or whose query output lacks a key the
  prefix needs is written, never dropped, under the ``ErrorOutputPrefix`` with
  ``!{firehose:error-output-type}`` = ``processing-failed``, one JSON document a line in
  the documented shape of a failed record (``attemptsMade``, ``arrivalTimestamp``,
  ``errorCode``, ``errorMessage``, ``attemptEndingTimestamp``, ``rawData`` in base64).
* optional scripted failures (:meth:`LocalFirehose.fail_next`): the next entries get the
  given ``ErrorCode`` instead of being accepted, to test the sender's retries.

Not modelled: the buffer interval's timing (nothing is written by the clock; call
``flush``), multi-stage buffering, throttling and the account's quotas on throughput
and active partitions, the KMS encryption of the stream and of the objects, Firehose's
own retries of S3 writes and of partitioning (``RetryOptions``), CloudWatch logs and
metrics, ``CustomTimeZone`` (everything is UTC), and the exact naming: the version is
fixed at 1 and the uuid is Python's. The exact ``errorCode`` text Firehose puts in an
error record for a failed extraction (``DynamicPartitioning.MetadataExtractionFailed``
here) and whether error objects are compressed (here they are, like the data) were not
confirmed against AWS's documentation.
"""

from __future__ import annotations

import base64
import codecs
import gzip
import json
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jq
from botocore.exceptions import ClientError

from ddbsync.errors import ConfigError
from ddbsync_local.cfn import TEMPLATE, load_template, parameter_default

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "ERROR_CODE",
    "LocalFirehose",
    "StreamConfig",
    "evaluate_prefix",
    "java_datetime",
    "stream_config",
]

MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1_024_000
MIB = 1024 * 1024
ERROR_CODE = "DynamicPartitioning.MetadataExtractionFailed"
PROCESSING_FAILED = "processing-failed"
_EXPRESSION = re.compile(r"!\{([A-Za-z]+):([^}]*)\}")
_JAVA_FIELDS = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """What the local stream needs of an ``ExtendedS3DestinationConfiguration``."""

    prefix: str
    error_prefix: str
    query: str
    delimiter: bytes
    gzip: bool
    buffer_bytes: int
    encrypted: bool = False


def _processor_parameters(destination: Mapping[str, Any], kind: str) -> dict[str, str]:
    processors = destination.get("ProcessingConfiguration", {}).get("Processors", [])
    found = [p for p in processors if p.get("Type") == kind]
    if len(found) != 1:
        raise ConfigError([f"the delivery stream needs exactly one {kind} processor, found {len(found)}"])
    return {p["ParameterName"]: p["ParameterValue"] for p in found[0].get("Parameters", [])}


def stream_config(
    template_path: Path = TEMPLATE,
    resource: str = "ArchiveDeliveryStream",
    *,
    buffer_bytes: int | None = None,
) -> StreamConfig:
    """The delivery stream ``resource`` of a template; ``buffer_bytes`` overrides its buffer size."""
    try:
        template = load_template(template_path)
        properties = template["Resources"][resource]["Properties"]
        destination = properties["ExtendedS3DestinationConfiguration"]
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise ConfigError([f"cannot read {resource} from {template_path}: {e!r}"]) from e
    extraction = _processor_parameters(destination, "MetadataExtraction")
    engine = extraction.get("JsonParsingEngine")
    if engine != "JQ-1.6":
        raise ConfigError([f"JsonParsingEngine {engine!r}: only JQ-1.6 is played locally"])
    delimiter = _processor_parameters(destination, "AppendDelimiterToRecord").get("Delimiter", "\\n")
    compression = destination.get("CompressionFormat", "UNCOMPRESSED")
    if compression not in ("GZIP", "UNCOMPRESSED"):
        raise ConfigError([f"CompressionFormat {compression!r} is not played locally (GZIP, UNCOMPRESSED)"])
    size_mib = parameter_default(template, destination.get("BufferingHints", {}).get("SizeInMBs", 5))
    return StreamConfig(
        prefix=destination["Prefix"],
        error_prefix=destination["ErrorOutputPrefix"],
        query=extraction["MetadataExtractionQuery"],
        delimiter=codecs.decode(delimiter, "unicode_escape").encode(),
        gzip=compression == "GZIP",
        buffer_bytes=buffer_bytes if buffer_bytes is not None else int(str(size_mib)) * MIB,
        encrypted="DeliveryStreamEncryptionConfigurationInput" in properties,
    )


def java_datetime(pattern: str, when: datetime) -> str:
    """A Java DateTimeFormatter pattern with the fields prefixes use (yyyy MM dd HH mm ss, 'text')."""
    parts: list[str] = []
    for match in re.finditer(r"'([^']*)'|([A-Za-z])\2*|[^A-Za-z']+", pattern):
        text = match.group(0)
        if match.group(1) is not None:
            parts.append(match.group(1))
        elif match.group(2):
            if text not in _JAVA_FIELDS:
                raise ConfigError([f"timestamp pattern field {text!r} is not played locally"])
            parts.append(when.strftime(_JAVA_FIELDS[text]))
        else:
            parts.append(text)
    return "".join(parts)


def evaluate_prefix(prefix: str, keys: Mapping[str, str], when: datetime, error_type: str = "") -> str:
    """A prefix with its ``!{namespace:value}`` expressions evaluated; KeyError for a missing key."""

    def value(match: re.Match[str]) -> str:
        namespace, name = match.group(1), match.group(2)
        if namespace == "partitionKeyFromQuery":
            return keys[name]
        if namespace == "timestamp":
            return java_datetime(name, when)
        if namespace == "firehose" and name == "error-output-type":
            return error_type
        if namespace == "firehose" and name == "random-string":
            return uuid.uuid4().hex[:11]
        raise ConfigError([f"prefix expression !{{{namespace}:{name}}} is not played locally"])

    return _EXPRESSION.sub(value, prefix)


@dataclass(slots=True)
class _Buffer:
    data: bytearray = field(default_factory=bytearray)
    oldest: float = 0.0
    records: int = 0


def _client_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "PutRecordBatch")


class LocalFirehose:
    """A Firehose client with DirectPut streams that write to an S3 bucket (moto's or real)."""

    def __init__(
        self, s3: S3Client, bucket: str, *, clock: Callable[[], float] = time.time, version: int = 1
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.clock = clock
        self.version = version
        self.streams: dict[str, tuple[StreamConfig, Any]] = {}
        self._buffers: dict[tuple[str, str, str], _Buffer] = {}  # (stream, kind, prefix) -> buffer
        self._failures: deque[str | None] = deque()
        self.objects: list[str] = []  # every key written, in order

    def create_stream(self, name: str, config: StreamConfig) -> None:
        """Add a delivery stream (its query compiled now: a query jq 1.6 rejects is a ConfigError)."""
        try:
            program = jq.compile(config.query)
        except ValueError as e:
            raise ConfigError([f"MetadataExtractionQuery does not compile with jq 1.6: {e}"]) from e
        self.streams[name] = (config, program)

    def fail_next(self, *codes: str | None) -> None:
        """The next entries put get these ErrorCodes (None: accepted), one code an entry."""
        self._failures.extend(codes)

    def put_record_batch(
        self, *, DeliveryStreamName: str, Records: list[dict[str, bytes]]
    ) -> dict[str, Any]:
        name, records = DeliveryStreamName, Records
        if name not in self.streams:
            raise _client_error("ResourceNotFoundException", f"Firehose {name} not found.")
        config, program = self.streams[name]
        sizes = [len(r["Data"]) for r in records]
        if not records or len(records) > MAX_BATCH_RECORDS or sum(sizes) > MAX_BATCH_BYTES:
            raise _client_error("InvalidArgumentException", f"{len(records)} records of {sum(sizes)} bytes")
        if max(sizes) > MAX_RECORD_BYTES:
            raise _client_error("InvalidArgumentException", f"a record of {max(sizes)} bytes")
        now = self.clock()
        answers: list[dict[str, str]] = []
        for record in records:
            code = self._failures.popleft() if self._failures else None
            if code:
                answers.append({"ErrorCode": code, "ErrorMessage": f"scripted failure: {code}"})
                continue
            self._accept(name, config, program, record["Data"], now)
            answers.append({"RecordId": uuid.uuid4().hex + uuid.uuid4().hex})
        failed = sum(1 for a in answers if "ErrorCode" in a)
        return {"FailedPutCount": failed, "Encrypted": config.encrypted, "RequestResponses": answers}

    def _accept(self, name: str, config: StreamConfig, program: Any, data: bytes, now: float) -> None:
        try:
            keys = _partition_keys(program, data)
            prefix = evaluate_prefix(config.prefix, keys, datetime.fromtimestamp(now, UTC))
        except (ValueError, KeyError) as e:
            message = f"missing partition key {e}" if isinstance(e, KeyError) else str(e)
            error = _error_line(data, message, now)
            self._append(name, config, (PROCESSING_FAILED, config.error_prefix), error, now)
            return
        self._append(name, config, ("data", prefix), data + config.delimiter, now)

    def _append(
        self, name: str, config: StreamConfig, where: tuple[str, str], data: bytes, now: float
    ) -> None:
        key = (name, *where)
        buffer = self._buffers.setdefault(key, _Buffer(oldest=now))
        buffer.data += data
        buffer.records += 1
        if len(buffer.data) >= config.buffer_bytes:
            self._write(key)

    def flush(self) -> list[str]:
        """Write every partition's buffer (what the buffer interval would do); the keys written."""
        return [self._write(key) for key in list(self._buffers)]

    def _write(self, key: tuple[str, str, str]) -> str:
        name, kind, prefix = key
        config, _ = self.streams[name]
        buffer = self._buffers.pop(key)
        oldest = datetime.fromtimestamp(buffer.oldest, UTC)
        if kind != "data":  # the error prefix: its timestamp and error type, at the oldest record
            prefix = evaluate_prefix(prefix, {}, oldest, error_type=kind)
        suffix = f"{name}-{self.version}-{oldest:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}"
        body = bytes(buffer.data)
        if config.gzip:
            suffix, body = suffix + ".gz", gzip.compress(body)
        self.s3.put_object(Bucket=self.bucket, Key=prefix + suffix, Body=body)
        self.objects.append(prefix + suffix)
        return prefix + suffix


def _partition_keys(program: Any, data: bytes) -> dict[str, str]:
    """The query's one output object, its values as text; ValueError when there is none."""
    try:
        outputs = program.input_text(data.decode("utf-8")).all()
    except UnicodeDecodeError as e:
        raise ValueError(f"record is not UTF-8: {e}") from e
    if len(outputs) != 1 or not isinstance(outputs[0], dict):
        raise ValueError(f"the query gave {len(outputs)} outputs, not one object")
    keys: dict[str, str] = {}
    for name, value in outputs[0].items():
        if isinstance(value, str):
            keys[name] = value
        elif isinstance(value, bool | int | float):
            keys[name] = json.dumps(value)
        else:  # null, an array or an object cannot name a partition
            raise ValueError(f"partition key {name!r} is {type(value).__name__}, not a scalar")
    return keys


def _error_line(data: bytes, message: str, arrived: float) -> bytes:
    """One failed record as Firehose documents it, and a newline."""
    millis = int(arrived * 1000)
    document = {
        "attemptsMade": 1,
        "arrivalTimestamp": millis,
        "errorCode": ERROR_CODE,
        "errorMessage": message,
        "attemptEndingTimestamp": millis,
        "rawData": base64.b64encode(data).decode("ascii"),
    }
    return json.dumps(document).encode() + b"\n"
