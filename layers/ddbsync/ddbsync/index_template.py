"""INDEX_TEMPLATE as an ``s3://bucket/key`` object: read once, checked, kept as a local file.

The index template (settings + mappings, JSON) is the bundled ``templates/index.json``
unless INDEX_TEMPLATE names another. A path is used as it is; an ``s3://`` address is
read here with GetObject at cold start, checked to be a JSON object, and written under
the temporary directory (``/tmp`` in Lambda), so everything after it reads a local path
(:func:`ddbsync.opensearch.indices.load_template`). A template that cannot be read raises
:class:`ConfigError` with one line naming the object and AWS's answer: the function
fails at cold start and the stream waits, as with any other bad setting.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from ddbsync.aws import aws_error, s3_client
from ddbsync.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["S3_TEMPLATE_URI", "fetch_s3_template", "is_s3_uri"]

# s3://<bucket>/<key>: the bucket by S3's naming rules (see config.BUCKET_NAME), a key with
# no whitespace. template.yaml's IndexTemplate parameter uses the same pattern.
S3_TEMPLATE_URI = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>\S+)")
# An index template is a few KiB; refuse anything that is clearly not one.
_MAX_BYTES = 1024 * 1024


def is_s3_uri(value: str) -> bool:
    return value.lower().startswith("s3://")


def fetch_s3_template(uri: str, *, s3: S3Client | None = None, directory: Path | None = None) -> Path:
    """Read the template at ``uri`` and return the local file holding it; ConfigError if unusable."""
    match = S3_TEMPLATE_URI.fullmatch(uri)
    if match is None:
        raise ConfigError(
            [f"INDEX_TEMPLATE must be s3://<bucket>/<key> (a bucket name, then a key), got {uri!r}"]
        )
    bucket, key = match["bucket"], match["key"]
    try:
        response = (s3 or s3_client()).get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{_MAX_BYTES}")
        body = response["Body"].read()
    except (BotoCoreError, ClientError) as e:
        raise ConfigError(
            [
                f"INDEX_TEMPLATE {uri} cannot be read ({aws_error(e)}): the object must exist and the "
                f"function's role must be allowed s3:GetObject on it"
            ]
        ) from e
    if len(body) > _MAX_BYTES:
        raise ConfigError([f"INDEX_TEMPLATE {uri} is over {_MAX_BYTES} bytes: not an index template"])
    try:
        template = json.loads(body)
    except ValueError as e:
        raise ConfigError([f"INDEX_TEMPLATE {uri} is not JSON ({e})"]) from e
    if not isinstance(template, dict):
        raise ConfigError([f"INDEX_TEMPLATE {uri} must hold a JSON object (settings and mappings)"])
    name = hashlib.sha256(uri.encode()).hexdigest()[:16]
    path = (directory or Path(tempfile.gettempdir())) / f"ddbsync-index-template-{name}.json"
    path.write_bytes(body)
    return path
