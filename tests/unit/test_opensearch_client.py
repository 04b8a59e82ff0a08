"""The client factory signs es and aoss requests with SigV4 and leaves local ones unsigned."""

from __future__ import annotations

from pathlib import Path

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


def _signed_key(settings: Settings) -> str:
    endpoint = settings.endpoint
    connection = build_client(settings).transport.get_connection()
    request = requests.Request("POST", f"{endpoint}/_bulk", data=b"{}\n").prepare()
    authorization: str = connection.session.auth(request).headers["Authorization"]
    return authorization.split("Credential=", 1)[1].split("/", 1)[0]


def test_credentials_outside_the_environment_come_from_the_rest_of_the_chain(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Lambda's credentials are in the environment (read there directly); a laptop's may be
    # in a shared credentials file: botocore's whole chain still finds them.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    shared = tmp_path / "credentials"
    shared.write_text("[default]\naws_access_key_id = FROMFILE\naws_secret_access_key = s\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(shared))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(shared) + ".none")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    endpoint = "https://search-demo-abc.eu-west-1.es.amazonaws.com"
    settings = Settings.from_env({**ENV, "OPENSEARCH_ENDPOINT": endpoint})
    assert _signed_key(settings) == "FROMFILE"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "FROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    assert _signed_key(settings) == "FROMENV"


def test_bulk_bodies_are_gzipped_at_the_fast_level(monkeypatch: pytest.MonkeyPatch) -> None:
    # opensearch-py's default (level 9) was a third of the stream handler's CPU; the body a
    # managed domain receives is gzip at level 1, and decompresses to what was sent.
    import gzip
    import json

    from requests.adapters import BaseAdapter

    sent: list[requests.PreparedRequest] = []

    class Capture(BaseAdapter):
        def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:  # type: ignore[override]
            sent.append(request)
            response = requests.Response()
            response.status_code = 200
            response._content = json.dumps({"took": 1, "errors": False, "items": []}).encode()
            response.headers["content-type"] = "application/json"
            response.request = request
            return response

        def close(self) -> None:
            pass

    endpoint = "https://search-demo-abc.eu-west-1.es.amazonaws.com"
    client = build_client(Settings.from_env({**ENV, "OPENSEARCH_ENDPOINT": endpoint}))
    connection = client.transport.get_connection()
    connection.session.mount("https://", Capture())
    ndjson = b'{"index":{"_index":"products","_id":"a"}}\n' + b'{"name":"' + b"widget " * 500 + b'"}\n'
    client.bulk(body=ndjson)
    (request,) = sent
    assert request.headers["content-encoding"] == "gzip"
    body = request.body
    assert isinstance(body, bytes)
    assert body[8] == 4  # gzip header XFL: 4 = "fastest algorithm" (level 1); level 9 writes 2
    assert gzip.decompress(body) == ndjson
