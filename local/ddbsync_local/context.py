"""A local stand-in for the Lambda context object.

Handlers (and Powertools, which reads ``function_name``, ``memory_limit_in_mb``,
``invoked_function_arn`` and ``aws_request_id``) get the same attributes as in
Lambda. ``get_remaining_time_in_millis()`` counts down in real time from the
moment the context is created, so timeout handling in the handler can be
exercised locally.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

__all__ = ["LocalContext"]

_DEFAULT_REGION = "us-east-1"
_DEFAULT_ACCOUNT = "123456789012"


@dataclass(slots=True)
class LocalContext:
    """Lambda context attributes for one local invocation.

    Create one per invocation: the deadline is ``timeout_ms`` after construction.
    """

    function_name: str = "StreamIndexerFunction"
    timeout_ms: int = 60_000
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    region: str = _DEFAULT_REGION
    account_id: str = _DEFAULT_ACCOUNT
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    tenant_id: str | None = None
    identity: object | None = None
    client_context: object | None = None
    _deadline: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.timeout_ms <= 0:
            raise ValueError(f"timeout_ms must be positive, got {self.timeout_ms}")
        self._deadline = time.monotonic() + self.timeout_ms / 1000.0

    @property
    def invoked_function_arn(self) -> str:
        """The function ARN, built from region, account and name as Lambda formats it."""
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        """The CloudWatch log group Lambda would use for this function."""
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        """A log stream name in Lambda's format (date/[version]id)."""
        return f"{time.strftime('%Y/%m/%d')}/[{self.function_version}]{self.aws_request_id[:32]}"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the deadline; never negative."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def timed_out(self) -> bool:
        """True once the deadline has passed (Lambda would have stopped the invocation)."""
        return time.monotonic() >= self._deadline
