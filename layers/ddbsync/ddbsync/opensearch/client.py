"""The one place that builds an OpenSearch client.

``es`` (managed domains) and ``aoss`` (Serverless) are signed with SigV4 through
requests-aws4auth, with credentials refreshed from the Lambda role; ``none`` is
for a local server on loopback.
"""

from __future__ import annotations

from typing import Any

import botocore.session
from opensearchpy import OpenSearch, RequestsHttpConnection, Urllib3HttpConnection
from requests_aws4auth import AWS4Auth

from ddbsync.config import Settings
from ddbsync.errors import ConfigError

__all__ = ["build_client"]


def build_client(settings: Settings, *, timeout_s: float = 30.0) -> OpenSearch:
    """A client for ``settings.endpoint``; retries are ours (ddbsync.opensearch.bulk), not the client's."""
    common: dict[str, Any] = {
        "hosts": [settings.endpoint],
        "timeout": timeout_s,
        "max_retries": 0,
        "retry_on_timeout": False,
        "http_compress": settings.service != "none",
    }
    if settings.service == "none":
        return OpenSearch(connection_class=Urllib3HttpConnection, **common)
    # botocore's credential chain (boto3.Session's), without importing boto3 at cold start.
    credentials = botocore.session.Session().get_credentials()
    if credentials is None:
        raise ConfigError([f"no AWS credentials found to sign requests for {settings.service}"])
    auth = AWS4Auth(
        region=settings.region,
        service=settings.service,
        refreshable_credentials=credentials,
    )
    return OpenSearch(
        http_auth=auth,
        use_ssl=True,
        verify_certs=True,
        connection_class=RequestsHttpConnection,
        pool_maxsize=4,
        **common,
    )
