"""Bad input and broken dependencies: a clear error, a metric, and nothing lost.

Each case checks three things: the reason is stated (DLQ message or log), a
metric counts it, and every record is either handled (indexed, or whole in the
record DLQ) or reported back to Lambda as a batch item failure.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from opensearchpy import OpenSearch

from ddbsync.config import DEFAULT_INDEX_TEMPLATE, Settings
from ddbsync.handler import make_handler
from tests.conftest import OPENSEARCH_URL, base_env, dlq_messages
from tests.support import FakeContext, RecordFactory, event, load_event

pytestmark = pytest.mark.integration


def emitted_metrics(out: str) -> dict[str, float]:
    """Sum the EMF metrics the handler printed."""
    totals: dict[str, float] = {}
    for line in out.splitlines():
        if '"_aws"' not in line:
            continue
        doc = json.loads(line)
        for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            totals[m["Name"]] = totals.get(m["Name"], 0) + sum(doc[m["Name"]])
    return totals


def docs(client: OpenSearch, alias: str) -> dict[str, Any]:
    client.indices.refresh(index=alias)
    hits = client.search(index=alias, body={"size": 100})["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def test_unknown_type_tag_goes_to_the_dlq_and_the_rest_is_indexed(
    os_client: OpenSearch, alias: str, dlq_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    poison_event = load_event("poison.json")
    handler = make_handler(Settings.from_env(base_env(alias, dlq_url)))
    result = handler(poison_event, FakeContext())
    assert result == {"batchItemFailures": []}
    letters = dlq_messages(dlq_url)
    assert len(letters) == 1
    assert letters[0]["error_type"] == "UnknownTypeTagError"
    assert "unknown DynamoDB type tag" in letters[0]["reason"]
    # The whole record travels, so a replay after the fix needs nothing else.
    seq = letters[0]["sequence_number"]
    bad = [r for r in poison_event["Records"] if r["dynamodb"]["SequenceNumber"] == seq]
    assert letters[0]["record"] == bad[0]
    def doc_id(r: dict[str, Any]) -> str:
        return f'{r["dynamodb"]["Keys"]["pk"]["S"]}|{r["dynamodb"]["Keys"]["sk"]["S"]}'

    assert set(docs(os_client, alias)) == {doc_id(r) for r in poison_event["Records"]} - {doc_id(bad[0])}
    assert emitted_metrics(capsys.readouterr().out)["PoisonRecords"] == 1


def test_malformed_records_are_dead_lettered_with_their_reason(
    os_client: OpenSearch, alias: str, dlq_url: str
) -> None:
    f = RecordFactory()
    no_keys = f.record("INSERT", "a", "1", {"n": 1})
    del no_keys["dynamodb"]["Keys"]
    no_image = f.record("MODIFY", "b", "1", {"n": 1})
    del no_image["dynamodb"]["NewImage"]
    bad_number = f.record("INSERT", "c", "1", raw_image={"n": {"N": "12abc"}})
    bad_event = f.record("INSERT", "d", "1", {"n": 1})
    bad_event["eventName"] = "UPSERT"
    good = f.record("INSERT", "e", "1", {"n": 1})
    handler = make_handler(Settings.from_env(base_env(alias, dlq_url)))
    assert handler(event([no_keys, no_image, bad_number, bad_event, good]), FakeContext()) == {
        "batchItemFailures": []
    }
    reasons = sorted(m["reason"] for m in dlq_messages(dlq_url))
    assert len(reasons) == 4
    assert any("no Keys" in r for r in reasons)
    assert any("no NewImage" in r for r in reasons)
    assert any(r.startswith("invalid number '12abc' (") and r.endswith(" at n") for r in reasons)
    assert any("unknown eventName 'UPSERT'" in r for r in reasons)
    assert set(docs(os_client, alias)) == {"e|1"}


def test_huge_integer_in_an_unmapped_field_is_dead_lettered_with_the_reason(
    os_client: OpenSearch, alias: str, dlq_url: str
) -> None:
    f = RecordFactory()
    handler = make_handler(Settings.from_env(base_env(alias, dlq_url)))
    record = f.record("INSERT", "a", "1", raw_image={"big": {"N": "123456789012345678901234567890123456"}})
    assert handler(event([record]), FakeContext()) == {"batchItemFailures": []}
    (letter,) = dlq_messages(dlq_url)
    assert letter["status"] == 400
    assert "out of range of long" in letter["reason"]
    assert letter["record"] == record


def test_huge_numbers_keep_every_digit_when_mapped_as_double(
    os_client: OpenSearch, alias: str, dlq_url: str, tmp_path: Any
) -> None:
    template = json.loads(Path(DEFAULT_INDEX_TEMPLATE).read_text())
    template["mappings"]["properties"]["big"] = {"type": "double"}
    path = tmp_path / "index.json"
    path.write_text(json.dumps(template))
    f = RecordFactory()
    raw = {
        "big": {"N": "123456789012345678901234567890123456"},
        "pi": {"N": "3.14159265358979323846264338327950288"},
    }
    handler = make_handler(Settings.from_env(base_env(alias, dlq_url, INDEX_TEMPLATE=str(path))))
    assert handler(event([f.record("INSERT", "a", "1", raw_image=raw)]), FakeContext()) == {
        "batchItemFailures": []
    }
    assert dlq_messages(dlq_url) == []
    os_client.indices.refresh(index=alias)
    with urllib.request.urlopen(f"{OPENSEARCH_URL}/{alias}/_source/a%7C1") as response:
        text = response.read().decode()
    assert '"big":123456789012345678901234567890123456' in text
    assert '"pi":3.14159265358979323846264338327950288' in text


def test_mapping_conflict_goes_to_the_dlq_with_status_and_reason(
    os_client: OpenSearch, alias: str, dlq_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    f = RecordFactory()
    handler = make_handler(Settings.from_env(base_env(alias, dlq_url)))
    handler(event([f.record("INSERT", "a", "1", {"n": 1})]), FakeContext())
    conflicting = f.record("INSERT", "b", "1", {"n": "not a number"})
    fine = f.record("INSERT", "c", "1", {"n": 3})
    assert handler(event([conflicting, fine]), FakeContext()) == {"batchItemFailures": []}
    (letter,) = dlq_messages(dlq_url)
    assert letter["status"] == 400
    assert letter["error_type"] == "mapper_parsing_exception"
    assert letter["doc_id"] == "b|1"
    assert letter["record"] == conflicting
    assert set(docs(os_client, alias)) == {"a|1", "c|1"}
    assert emitted_metrics(capsys.readouterr().out)["PoisonRecords"] == 1


def test_oversized_document_goes_to_the_dlq(os_client: OpenSearch, alias: str, dlq_url: str) -> None:
    f = RecordFactory()
    handler = make_handler(Settings.from_env(base_env(alias, dlq_url, MAX_DOCUMENT_BYTES="2048")))
    big = f.record("INSERT", "a", "1", {"blob": "x" * 5000})
    small = f.record("INSERT", "b", "1", {"blob": "x"})
    assert handler(event([big, small]), FakeContext()) == {"batchItemFailures": []}
    (letter,) = dlq_messages(dlq_url)
    assert letter["error_type"] == "document_too_large"
    assert "MAX_DOCUMENT_BYTES=2048" in letter["reason"]
    assert set(docs(os_client, alias)) == {"b|1"}


def test_opensearch_unreachable_reports_every_record_as_a_failure(
    dlq_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    f = RecordFactory()
    env = base_env("unreachable", dlq_url, OPENSEARCH_ENDPOINT="http://127.0.0.1:9", MANAGE_INDEX="false")
    handler = make_handler(Settings.from_env(env))
    records = [f.record("INSERT", "a", "1", {"n": 1}), f.record("REMOVE", "b", "1")]
    context = FakeContext(deadline=__import__("time").monotonic() + 3.0)
    result = handler(event(records), context)
    assert [x["itemIdentifier"] for x in result["batchItemFailures"]] == [
        r["dynamodb"]["SequenceNumber"] for r in records
    ]
    # It gave up before the (fake) invocation's safety margin, after retrying.
    assert context.get_remaining_time_in_millis() > 0
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["UnsentRecords"] == 2
    assert metrics["Retries"] >= 1
    assert dlq_messages(dlq_url) == []


def test_index_preparation_failure_reports_the_whole_batch(
    dlq_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    f = RecordFactory()
    env = base_env("t-x", dlq_url, OPENSEARCH_ENDPOINT="http://127.0.0.1:9")
    handler = make_handler(Settings.from_env(env))
    record = f.record("INSERT", "a", "1", {"n": 1})
    result = handler(event([record]), FakeContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
    assert "index not ready" in caplog.text


def test_dlq_unreachable_keeps_the_poison_record_unhandled(
    os_client: OpenSearch, alias: str, aws: None
) -> None:
    f = RecordFactory()
    missing_queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/does-not-exist"
    handler = make_handler(Settings.from_env(base_env(alias, missing_queue)))
    poison = f.record("INSERT", "a", "1", raw_image={"n": {"X": "1"}})
    good = f.record("INSERT", "b", "1", {"n": 1})
    result = handler(event([poison, good]), FakeContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": poison["dynamodb"]["SequenceNumber"]}]}
    assert set(docs(os_client, alias)) == {"b|1"}


class _Flaky(http.server.BaseHTTPRequestHandler):
    """A proxy to the real OpenSearch that answers the first N _bulk requests with 429."""

    failures_left = 0
    bulk_calls = 0

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if "/_bulk" in self.path:
            type(self).bulk_calls += 1
            if type(self).failures_left > 0:
                type(self).failures_left -= 1
                self.send_response(429)
                self.send_header("Content-Type", "application/json")
                payload = b'{"error":{"type":"too_many_requests"},"status":429}'
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
        request = urllib.request.Request(OPENSEARCH_URL + self.path, data=body, method=self.command)
        for name in ("Content-Type",):
            if self.headers.get(name):
                request.add_header(name, self.headers[name])
        try:
            with urllib.request.urlopen(request) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as e:
            status, payload = e.code, e.read()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _forward

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky_proxy() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_throttling_is_retried_with_backoff_until_it_succeeds(
    os_client: OpenSearch, alias: str, dlq_url: str, flaky_proxy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    f = RecordFactory()
    _Flaky.failures_left, _Flaky.bulk_calls = 3, 0
    handler = make_handler(Settings.from_env(base_env(alias, dlq_url, OPENSEARCH_ENDPOINT=flaky_proxy)))
    records = [f.record("INSERT", f"k{i}", "1", {"n": i}) for i in range(5)]
    assert handler(event(records), FakeContext()) == {"batchItemFailures": []}
    assert _Flaky.bulk_calls == 4
    assert len(docs(os_client, alias)) == 5
    assert emitted_metrics(capsys.readouterr().out)["Retries"] == 3


def test_stops_before_the_timeout_and_reports_the_rest(alias: str, dlq_url: str) -> None:
    f = RecordFactory()
    handler = make_handler(Settings.from_env(base_env(alias, dlq_url, TIMEOUT_MARGIN_MS="5000")))
    records = [f.record("INSERT", "a", "1", {"n": 1})]
    result = handler(event(records), FakeContext(remaining_ms=4000))
    assert result == {"batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]}


def test_an_event_without_a_records_list_fails_the_invocation(alias: str, dlq_url: str) -> None:
    # Not a stream event: reporting an empty batch as done would hide the mistake.
    from ddbsync.errors import RecordError

    handler = make_handler(Settings.from_env(base_env(alias, dlq_url)))
    # Powertools warns that the failed invocation published no metrics.
    with pytest.raises(RecordError, match="no Records list"), pytest.warns(UserWarning, match="metrics"):
        handler({"records": []}, FakeContext())


# --- documents the serializer refuses, events that are not objects, records without an id ---


def test_documents_the_serializer_refuses_are_dead_lettered_and_the_rest_is_indexed(
    os_client: OpenSearch, alias: str, dlq_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = load_event("unserializable.json")
    handler = make_handler(Settings.from_env(base_env(alias, dlq_url)))
    assert handler(sample, FakeContext()) == {"batchItemFailures": []}
    bad, good = sample["Records"][:3], sample["Records"][3]
    letters = {m["sequence_number"]: m for m in dlq_messages(dlq_url)}
    assert set(letters) == {r["dynamodb"]["SequenceNumber"] for r in bad}
    for record in bad:
        letter = letters[record["dynamodb"]["SequenceNumber"]]
        assert letter["record"] == record  # whole, lone surrogates included
        assert letter["error_type"] == "unserializable_document"
        assert letter["reason"].startswith("document cannot be serialized: ")
    surrogate_value, surrogate_name, deep = (letters[r["dynamodb"]["SequenceNumber"]] for r in bad)
    assert "surrogates not allowed" in surrogate_value["reason"]
    assert "surrogates not allowed" in surrogate_name["reason"]
    assert "Recursion limit" in deep["reason"]
    assert set(docs(os_client, alias)) == {"cat-gloves|item-023"}
    assert good["dynamodb"]["Keys"]["sk"]["S"] == "item-023"
    assert emitted_metrics(capsys.readouterr().out)["PoisonRecords"] == 3


@pytest.mark.parametrize("not_an_object", [[], [{"Records": []}], "Records", 7, None])
def test_an_event_that_is_not_an_object_fails_the_invocation_with_a_clear_error(
    alias: str, dlq_url: str, not_an_object: Any
) -> None:
    from ddbsync.errors import RecordError

    handler = make_handler(Settings.from_env(base_env(alias, dlq_url)))
    kind = type(not_an_object).__name__
    with pytest.raises(RecordError, match=f"event must be an object with a Records list, got {kind}$"), \
            pytest.warns(UserWarning, match="metrics"):  # fmt: skip
        handler(not_an_object, FakeContext())


def test_a_poison_record_without_a_sequence_number_fails_the_whole_batch_when_the_dlq_is_down(
    os_client: OpenSearch, alias: str, aws: None, caplog: pytest.LogCaptureFixture
) -> None:
    f = RecordFactory()
    missing_queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/does-not-exist"
    handler = make_handler(Settings.from_env(base_env(alias, missing_queue)))
    nameless = f.record("INSERT", "a", "1", {"n": 1})
    del nameless["dynamodb"]["SequenceNumber"]
    good = f.record("INSERT", "b", "1", {"n": 1})
    # Lambda: an empty itemIdentifier fails the whole batch (it is retried whole); naming
    # "b" instead would checkpoint past the record that has no name, and lose it.
    assert handler(event([good, nameless]), FakeContext()) == {"batchItemFailures": [{"itemIdentifier": ""}]}
    assert "no SequenceNumber" in caplog.text
    assert set(docs(os_client, alias)) == {"b|1"}


# --- dead letters too big for an SQS message ----------------------------------------------


def two_400_kb_images(f: RecordFactory) -> dict[str, Any]:
    record = f.record("MODIFY", "a", "1", {"n": 1})
    record["dynamodb"]["NewImage"]["blob"] = {"B": base64.b64encode(b"\x01" * 300_000).decode()}
    record["dynamodb"]["OldImage"] = dict(record["dynamodb"]["Keys"])
    record["dynamodb"]["OldImage"]["blob"] = {"B": base64.b64encode(b"\x02" * 300_000).decode()}
    return record


def test_a_record_with_two_400_kb_binary_images_reaches_the_dlq_whole_through_s3(
    os_client: OpenSearch, alias: str, dlq_url: str, letter_bucket: str
) -> None:
    f = RecordFactory()
    env = base_env(alias, dlq_url, MAX_DOCUMENT_BYTES="65536", DEAD_LETTER_BUCKET=letter_bucket)
    handler = make_handler(Settings.from_env(env))
    big = two_400_kb_images(f)
    small = f.record("INSERT", "b", "1", {"n": 1})
    assert handler(event([big, small]), FakeContext()) == {"batchItemFailures": []}
    (pointer,) = dlq_messages(dlq_url)
    assert pointer["error_type"] == "document_too_large"
    assert "record" not in pointer
    s3 = boto3.client("s3", region_name="eu-west-1")
    stored = s3.get_object(Bucket=letter_bucket, Key=pointer["s3"]["key"])["Body"].read()
    letter = json.loads(stored)
    assert letter["record"] == big  # NewImage and OldImage, both whole
    assert pointer["s3"]["bytes"] == len(stored) > 262_144
    assert set(docs(os_client, alias)) == {"b|1"}


def test_a_dead_letter_too_big_for_sqs_without_a_bucket_stays_a_batch_item_failure(
    os_client: OpenSearch, alias: str, dlq_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    f = RecordFactory()
    handler = make_handler(Settings.from_env(base_env(alias, dlq_url, MAX_DOCUMENT_BYTES="65536")))
    big = two_400_kb_images(f)
    small = f.record("INSERT", "b", "1", {"n": 1})
    result = handler(event([big, small]), FakeContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": big["dynamodb"]["SequenceNumber"]}]}
    assert dlq_messages(dlq_url) == []
    (refused,) = [r for r in caplog.records if r.getMessage().startswith("record DLQ refused")]
    reason = refused.__dict__["reason"]  # logged with extra=: not an attribute LogRecord declares
    assert "over SQS's 262144-byte message limit and DEAD_LETTER_BUCKET is not set" in reason
    assert set(docs(os_client, alias)) == {"b|1"}


# --- rejected writes the index already supersedes ----------------------------------------


@pytest.mark.parametrize(
    "bad_image",
    [{"n": {"S": "not a number"}}, {"n": {"S": "lone \ud800"}}],
    ids=["mapping_conflict", "unserializable"],
)
def test_a_late_rejected_change_older_than_the_indexed_one_is_stale_not_poison(
    os_client: OpenSearch, alias: str, dlq_url: str, capsys: pytest.CaptureFixture[str],
    bad_image: dict[str, Any],
) -> None:  # fmt: skip
    f = RecordFactory()
    handler = make_handler(Settings.from_env(base_env(alias, dlq_url)))
    t = 1_800_000_000
    newer = f.record("MODIFY", "x", "1", {"n": 3}, created=t + 5)
    assert handler(event([newer]), FakeContext()) == {"batchItemFailures": []}
    late = f.record("MODIFY", "x", "1", raw_image=bad_image, created=t)
    assert handler(event([late]), FakeContext()) == {"batchItemFailures": []}
    assert dlq_messages(dlq_url) == []
    assert docs(os_client, alias)["x|1"]["n"] == 3
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["StaleConflicts"] == 1
    assert metrics["PoisonRecords"] == 0


def test_a_rejected_change_newer_than_the_indexed_one_still_goes_to_the_dlq(
    os_client: OpenSearch, alias: str, dlq_url: str
) -> None:
    f = RecordFactory()
    handler = make_handler(Settings.from_env(base_env(alias, dlq_url)))
    t = 1_800_000_000
    older = f.record("INSERT", "x", "1", {"n": 1}, created=t)
    assert handler(event([older]), FakeContext()) == {"batchItemFailures": []}
    same_second = f.record("MODIFY", "x", "1", {"n": "not a number"}, created=t)  # later sequence
    later = f.record("MODIFY", "y", "1", {"n": "not a number"}, created=t + 5)  # nothing stored
    assert handler(event([same_second, later]), FakeContext()) == {"batchItemFailures": []}
    letters = {m["doc_id"]: m for m in dlq_messages(dlq_url)}
    assert set(letters) == {"x|1", "y|1"}
    assert letters["x|1"]["status"] == 400
    assert letters["x|1"]["error_type"] == "mapper_parsing_exception"
    assert docs(os_client, alias)["x|1"]["n"] == 1
