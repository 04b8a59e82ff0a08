"""The client factory signs es and aoss requests with SigV4 and leaves local ones unsigned."""

from __future__ import annotations

import pytest
import requests

from ddbsync.config import Settings
from ddbsync.opensearch.client import build_client

ENV = {
    "OPENSEARCH_SERVICE": "es",
    "INDEX_ALIAS": "products",
    "PARTITION_KEY": "pk",
    "RECORD_DLQ_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/dlq",
    "AWS_REGION": "eu-west-1",
}


@pytest.mark.parametrize(
    ("service", "endpoint"),
    [
        ("es", "https://search-demo-abc.eu-west-1.es.amazonaws.com"),
        ("aoss", "https://abc123.eu-west-1.aoss.amazonaws.com"),
    ],
)
def test_managed_endpoints_get_sigv4_signatures_for_their_service(service: str, endpoint: str) -> None:
    settings = Settings.from_env({**ENV, "OPENSEARCH_SERVICE": service, "OPENSEARCH_ENDPOINT": endpoint})
    client = build_client(settings)
    connection = client.transport.get_connection()
    request = requests.Request("POST", f"{endpoint}/_bulk", data=b'{"index":{}}\n{}\n').prepare()
    signed = connection.session.auth(request)
    authorization = signed.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert f"/eu-west-1/{service}/aws4_request" in authorization
    assert "x-amz-content-sha256" in {h.lower() for h in signed.headers}
    assert signed.headers["x-amz-security-token"] == "testing"


def test_a_local_server_gets_no_auth() -> None:
    settings = Settings.from_env(
        {**ENV, "OPENSEARCH_SERVICE": "none", "OPENSEARCH_ENDPOINT": "http://127.0.0.1:9200"}
    )
    client = build_client(settings)
    connection = client.transport.get_connection()
    assert "authorization" not in {h.lower() for h in connection.headers}
