"""The one place that builds an OpenSearch client.

``es`` (managed domains) and ``aoss`` (Serverless) are signed with SigV4 through
requests-aws4auth, with credentials refreshed from the Lambda role; ``none`` is
for a local server on loopback.
"""

from __future__ import annotations

import gzip
from typing import Any

from botocore.credentials import Credentials, EnvProvider
from opensearchpy import OpenSearch, RequestsHttpConnection, Urllib3HttpConnection
from requests_aws4auth import AWS4Auth

from ddbsync.config import Settings
from ddbsync.errors import ConfigError

__all__ = ["GZIP_LEVEL", "FastGzipConnection", "build_client", "client_for"]

# opensearch-py gzips request bodies at level 9. At batch 1,000 that was about a third of the
# stream handler's own CPU; level 1 costs a fifth of it for bodies about a third larger
# (bench/README.md, "What to change"). Network inside AWS is cheap; Lambda CPU is the bill.
GZIP_LEVEL = 1


class FastGzipConnection(RequestsHttpConnection):
    """opensearch-py's requests connection, compressing request bodies at :data:`GZIP_LEVEL`."""

    def _gzip_compress(self, body: Any) -> bytes:
        return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)


def build_client(settings: Settings, *, timeout_s: float = 30.0) -> OpenSearch:
    """A client for ``settings.endpoint``; retries are ours (ddbsync.opensearch.bulk), not the client's."""
    return client_for(settings.endpoint, settings.service, settings.region, timeout_s=timeout_s)


def client_for(endpoint: str, service: str, region: str | None, *, timeout_s: float = 30.0) -> OpenSearch:
    """A client for ``endpoint`` signed for ``service`` (es|aoss) in ``region``, or unsigned (none).

    :func:`build_client` for the writers; ``ddbsync doctor`` calls it before any settings exist.
    """
    common: dict[str, Any] = {
        "hosts": [endpoint],
        "timeout": timeout_s,
        "max_retries": 0,
        "retry_on_timeout": False,
        "http_compress": service != "none",
    }
    if service == "none":
        return OpenSearch(connection_class=Urllib3HttpConnection, **common)
    credentials = _credentials()
    if credentials is None:
        raise ConfigError([f"no AWS credentials found to sign requests for {service}"])
    auth = AWS4Auth(
        region=region,
        service=service,
        refreshable_credentials=credentials,
    )
    return OpenSearch(
        http_auth=auth,
        use_ssl=True,
        verify_certs=True,
        connection_class=FastGzipConnection,
        pool_maxsize=4,
        **common,
    )


def _credentials() -> Credentials | None:
    """The credentials to sign with: botocore's chain, environment first.

    Lambda puts the function role's credentials in the environment, where botocore's
    chain (boto3's) finds them first anyway; reading them there directly spares the cold
    start a botocore Session (about 20 ms, bench/README.md). Anywhere else (a laptop with
    a profile, an instance role) the whole chain runs.
    """
    credentials = EnvProvider().load()
    if credentials is None:
        import botocore.session

        credentials = botocore.session.Session().get_credentials()
    return credentials
