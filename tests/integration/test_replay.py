"""``ddbsync replay`` against a real OpenSearch (moto plays SQS, DynamoDB and its stream).

Each message must end either deleted (its records indexed, or known stale) or still in the
queue with the reason printed; nothing is lost and nothing old overwrites anything newer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from opensearchpy import OpenSearch

from ddbsync.cli import commands as cli
from ddbsync.config import DEFAULT_INDEX_TEMPLATE, Settings
from ddbsync.dlq import DeadLetter, send_dead_letters
from ddbsync.handler import make_handler
from ddbsync.indexer import StreamIndexer
from ddbsync.replay import EXIT_KEPT, EXIT_OK, EXIT_SETUP, replay
from ddbsync_local.esm import EsmConfig, EventSourceMapping, sqs_on_failure
from tests.conftest import base_env, dlq_messages
from tests.support import FakeContext, RecordFactory, event, load_event

pytestmark = pytest.mark.integration

HUGE = "123456789012345678901234567890123456"  # out of range of long: a 400 with dynamic mapping


def use_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """The replay reads the same environment variables as the Lambda."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def docs(client: OpenSearch, alias: str) -> dict[str, dict[str, Any]]:
    client.indices.refresh(index=alias)
    hits = client.search(index=alias, body={"size": 100})["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def depth(url: str) -> int:
    sqs = boto3.client("sqs", region_name="eu-west-1")
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def template_mapping_big_as_double(tmp_path: Path) -> Path:
    template = json.loads(Path(DEFAULT_INDEX_TEMPLATE).read_text())
    template["mappings"]["properties"]["big"] = {"type": "double"}
    path = tmp_path / "index.json"
    path.write_text(json.dumps(template))
    return path


def test_a_poison_record_is_indexed_by_replay_once_the_mapping_is_fixed(
    os_client: OpenSearch, alias: str, dlq_url: str, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    f = RecordFactory()
    handler = make_handler(Settings.from_env(base_env(alias, dlq_url)))
    poison = f.record("INSERT", "b", "1", raw_image={"big": {"N": HUGE}})
    good = f.record("INSERT", "a", "1", {"n": 1})
    assert handler(event([good, poison]), FakeContext()) == {"batchItemFailures": []}
    assert depth(dlq_url) == 1
    assert set(docs(os_client, alias)) == {"a|1"}

    # The fix: the index template maps "big" as double; the indexer applies it to the index.
    fixed = template_mapping_big_as_double(tmp_path)
    use_env(monkeypatch, base_env(alias, dlq_url, INDEX_TEMPLATE=str(fixed)))
    assert cli.main(["replay", "--queue", dlq_url]) == EXIT_OK

    out = capsys.readouterr().out
    assert "1 deleted, 0 kept" in out
    assert "records replayed 1, stale 0" in out
    assert depth(dlq_url) == 0
    assert set(docs(os_client, alias)) == {"a|1", "b|1"}
    assert docs(os_client, alias)["b|1"]["big"] == int(HUGE)


def test_replaying_an_old_record_after_a_newer_change_keeps_the_newer_one(
    os_client: OpenSearch, alias: str, dlq_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    f = RecordFactory()
    env = base_env(alias, dlq_url)
    handler = make_handler(Settings.from_env(env))
    t = 1_800_000_000
    old_a = f.record("INSERT", "a", "1", {"n": 1}, created=t)
    old_b = f.record("INSERT", "b", "1", {"n": 1}, created=t)
    same_second_old_c = f.record("INSERT", "c", "1", {"n": 1}, created=t)
    new_a = f.record("MODIFY", "a", "1", {"n": 2}, created=t + 5)
    removed_b = f.record("REMOVE", "b", "1", created=t + 5)
    new_c = f.record("MODIFY", "c", "1", {"n": 2}, created=t)
    assert handler(event([new_a, removed_b, new_c]), FakeContext()) == {"batchItemFailures": []}
    # The old records sit in the record DLQ, as the indexer writes them (hours-old failures).
    sqs = boto3.client("sqs", region_name="eu-west-1")
    send_dead_letters(sqs, dlq_url, [
        DeadLetter(r, "rejected earlier", "mapper_parsing_exception",
                   r["dynamodb"]["SequenceNumber"], status=400)
        for r in (old_a, old_b, same_second_old_c)
    ])  # fmt: skip

    use_env(monkeypatch, env)
    assert cli.main(["replay", "--queue", dlq_url]) == EXIT_OK

    out = capsys.readouterr().out
    assert "3 deleted, 0 kept" in out
    assert "records replayed 0, stale 3" in out
    assert depth(dlq_url) == 0
    found = docs(os_client, alias)
    assert set(found) == {"a|1", "c|1"}  # b stays deleted: the old INSERT did not resurrect it
    assert found["a|1"]["n"] == 2
    assert found["c|1"]["n"] == 2


def test_a_record_still_poison_stays_in_the_queue_and_the_command_fails(
    os_client: OpenSearch, alias: str, dlq_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    f = RecordFactory()
    env = base_env(alias, dlq_url)
    handler = make_handler(Settings.from_env(env))
    poison = f.record("INSERT", "b", "1", raw_image={"big": {"N": HUGE}})
    good = f.record("INSERT", "a", "1", {"n": 1})
    handler(event([poison]), FakeContext())
    send_dead_letters(boto3.client("sqs", region_name="eu-west-1"), dlq_url, [
        DeadLetter(good, "OpenSearch rejected it earlier", "rejected",
                   good["dynamodb"]["SequenceNumber"], status=400)
    ])  # fmt: skip
    assert depth(dlq_url) == 2

    use_env(monkeypatch, env)
    assert cli.main(["replay", "--queue", dlq_url]) == EXIT_KEPT

    out = capsys.readouterr().out
    assert "still poison" in out
    assert "out of range of long" in out
    assert "1 deleted, 1 kept" in out
    assert HUGE not in out  # reasons only, never item data
    # Kept, visible again at once, and not duplicated by a second DLQ message.
    (letter,) = dlq_messages(dlq_url)
    assert letter["record"] == poison
    assert set(docs(os_client, alias)) == {"a|1"}


def test_dry_run_reports_counts_and_reasons_and_changes_nothing(
    alias: str, dlq_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    f = RecordFactory()
    sqs = boto3.client("sqs", region_name="eu-west-1")
    letters = [
        DeadLetter(f.record("INSERT", str(i), "1", {"secret": "item-data"}), "failed to parse field [n]",
                   "mapper_parsing_exception", str(i), status=400)
        for i in range(3)
    ]
    send_dead_letters(sqs, dlq_url, letters)
    monkeypatch.delenv("OPENSEARCH_ENDPOINT", raising=False)  # a dry run needs no settings

    assert cli.main(["replay", "--queue", dlq_url, "--dry-run"]) == EXIT_OK

    out = capsys.readouterr().out
    assert "3 record-DLQ message(s)" in out
    assert "3 x mapper_parsing_exception: failed to parse field [n]" in out
    assert "item-data" not in out
    assert len(dlq_messages(dlq_url)) == 3


def _stream_table(name: str) -> str:
    ddb = boto3.client("dynamodb", region_name="eu-west-1")
    return ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]["LatestStreamArn"]


def _failing_handler(event: dict[str, Any], context: Any) -> object:
    raise ConnectionError("OpenSearch unreachable")


def test_an_on_failure_pointer_is_replayed_from_the_stream(
    os_client: OpenSearch, alias: str, dlq_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    stream_arn = _stream_table("orders")
    ddb = boto3.client("dynamodb", region_name="eu-west-1")
    for i in range(7):
        ddb.put_item(TableName="orders", Item={"pk": {"S": f"o{i}"}, "sk": {"S": "1"}, "n": {"N": str(i)}})
    ddb.update_item(TableName="orders", Key={"pk": {"S": "o1"}, "sk": {"S": "1"}},
                    UpdateExpression="SET n = :n", ExpressionAttributeValues={":n": {"N": "100"}})
    ddb.delete_item(TableName="orders", Key={"pk": {"S": "o2"}, "sk": {"S": "1"}})
    # Lambda gives up on every batch (OpenSearch was down): the pointers reach the queue.
    sqs = boto3.client("sqs", region_name="eu-west-1")
    on_failure_url = sqs.create_queue(QueueName="on-failure")["QueueUrl"]
    esm = EventSourceMapping(
        stream_arn, _failing_handler, EsmConfig(batch_size=4, maximum_retry_attempts=0),
        on_failure=sqs_on_failure(on_failure_url, sqs),
        client=boto3.client("dynamodbstreams", region_name="eu-west-1"),
    )  # fmt: skip
    assert esm.poll().batches_to_on_failure == 3
    assert depth(on_failure_url) == 3

    use_env(monkeypatch, base_env(alias, dlq_url))
    assert cli.main(["replay", "--on-failure-queue", on_failure_url]) == EXIT_OK

    assert "3 deleted, 0 kept" in capsys.readouterr().out
    assert depth(on_failure_url) == 0
    found = docs(os_client, alias)
    assert set(found) == {f"o{i}|1" for i in range(7)} - {"o2|1"}
    assert found["o1|1"]["n"] == 100
    assert depth(dlq_url) == 0


def test_a_range_the_stream_no_longer_has_is_kept_with_the_way_out(
    alias: str, dlq_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = boto3.client("sqs", region_name="eu-west-1")
    url = sqs.create_queue(QueueName="on-failure")["QueueUrl"]
    arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"
    pointer = {
        "requestContext": {"condition": "RecordAgeExceeded"},
        "responseContext": {}, "version": "1.0", "timestamp": "2026-01-01T00:00:00.000Z",
        "DDBStreamBatchInfo": {
            "shardId": "shardId-00000001700000000000-0000abcd",
            "startSequenceNumber": "100000000000000000100",
            "endSequenceNumber": "100000000000000000200",
            "approximateArrivalOfFirstRecord": "2026-01-01T00:00:00Z",
            "approximateArrivalOfLastRecord": "2026-01-01T00:00:00Z",
            "batchSize": 2, "streamArn": arn,
        },
    }  # fmt: skip
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(pointer))
    streams = boto3.client("dynamodbstreams", region_name="eu-west-1")
    with Stubber(streams) as stub:
        stub.add_client_error("get_shard_iterator", "TrimmedDataAccessException", "trimmed")
        code = replay(url, pointers_only=True, settings=Settings.from_env(base_env(alias, dlq_url)),
                      streams=streams)  # fmt: skip

    assert code == EXIT_KEPT
    out = capsys.readouterr().out
    assert "the stream no longer has this range" in out
    assert "24 hours" in out
    assert "ddbsync repair" in out
    assert depth(url) == 1


def test_setup_problems_are_named_and_nothing_is_touched(
    os_client: OpenSearch, alias: str, dlq_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    f = RecordFactory()
    send_dead_letters(boto3.client("sqs", region_name="eu-west-1"), dlq_url, [
        DeadLetter(f.record("INSERT", "a", "1", {"n": 1}), "x", "rejected", "1")
    ])  # fmt: skip

    use_env(monkeypatch, base_env(alias, dlq_url, RETRY_BASE_MS="0", TTL_REMOVES="maybe"))
    assert cli.main(["replay", "--queue", dlq_url]) == EXIT_SETUP
    out = capsys.readouterr().out
    assert "RETRY_BASE_MS must be between" in out and "TTL_REMOVES must be one of" in out

    use_env(monkeypatch, base_env(alias, dlq_url, TTL_REMOVES="delete"))
    missing = dlq_url.rsplit("/", 1)[0] + "/no-such-queue"
    assert cli.main(["replay", "--queue", missing]) == EXIT_SETUP
    assert f"cannot read queue {missing}" in capsys.readouterr().out

    use_env(monkeypatch, base_env(alias, dlq_url, OPENSEARCH_ENDPOINT="http://127.0.0.1:9"))
    assert cli.main(["replay", "--queue", dlq_url]) == EXIT_SETUP
    assert "OpenSearch at http://127.0.0.1:9 does not answer" in capsys.readouterr().out
    assert depth(dlq_url) == 1


# --- dead letters stored in S3 -------------------------------------------------------------

EMOJI_TEXT = "😀" * 97_500  # 390,000 UTF-8 bytes; 1,170,000 as \ud83d\ude00 escapes


def s3_keys(bucket: str) -> list[str]:
    s3 = boto3.client("s3", region_name="eu-west-1")
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_a_390_kb_emoji_item_rejected_by_opensearch_reaches_the_dlq_through_s3_and_replay_applies_it(
    os_client: OpenSearch, alias: str, dlq_url: str, letter_bucket: str, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    f = RecordFactory()
    env = base_env(alias, dlq_url, DEAD_LETTER_BUCKET=letter_bucket)
    handler = make_handler(Settings.from_env(env))
    poison = f.record("INSERT", "b", "1", raw_image={"big": {"N": HUGE}, "text": {"S": EMOJI_TEXT}})
    assert handler(event([poison]), FakeContext()) == {"batchItemFailures": []}
    assert depth(dlq_url) == 1
    (key,) = s3_keys(letter_bucket)

    use_env(monkeypatch, env)
    assert cli.main(["replay", "--queue", dlq_url, "--dry-run"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "1 record-DLQ message(s)" in out
    assert "out of range of long" in out
    assert f"1 of the record-DLQ messages point at a dead letter stored whole in s3://{letter_bucket}/" in out
    assert "😀" not in out

    use_env(monkeypatch, base_env(alias, dlq_url, DEAD_LETTER_BUCKET=letter_bucket,
                                  INDEX_TEMPLATE=str(template_mapping_big_as_double(tmp_path))))  # fmt: skip
    assert cli.main(["replay", "--queue", dlq_url]) == EXIT_OK
    out = capsys.readouterr().out
    assert "1 deleted, 0 kept" in out
    assert "records replayed 1, stale 0" in out
    assert depth(dlq_url) == 0
    assert s3_keys(letter_bucket) == []  # deleted with its message
    found = docs(os_client, alias)["b|1"]
    assert found["text"] == EMOJI_TEXT
    assert found["big"] == int(HUGE)
    assert key.startswith("dead-letters/")


def test_a_stored_letter_that_is_still_poison_stays_with_its_object(
    os_client: OpenSearch, alias: str, dlq_url: str, letter_bucket: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    f = RecordFactory()
    env = base_env(alias, dlq_url, DEAD_LETTER_BUCKET=letter_bucket)
    handler = make_handler(Settings.from_env(env))
    poison = f.record("INSERT", "b", "1", raw_image={"big": {"N": HUGE}, "text": {"S": EMOJI_TEXT}})
    handler(event([poison]), FakeContext())

    use_env(monkeypatch, env)
    assert cli.main(["replay", "--queue", dlq_url]) == EXIT_KEPT
    out = capsys.readouterr().out
    assert "still poison" in out and "out of range of long" in out
    assert "😀" not in out
    (pointer,) = dlq_messages(dlq_url)
    assert s3_keys(letter_bucket) == [pointer["s3"]["key"]]  # no second copy, nothing deleted


def test_a_pointer_whose_object_is_missing_is_kept_with_the_reason(
    os_client: OpenSearch, alias: str, dlq_url: str, letter_bucket: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    f = RecordFactory()
    env = base_env(alias, dlq_url, DEAD_LETTER_BUCKET=letter_bucket)
    handler = make_handler(Settings.from_env(env))
    handler(event([f.record("INSERT", "b", "1", raw_image={"big": {"N": HUGE}, "text": {"S": EMOJI_TEXT}})]),
            FakeContext())  # fmt: skip
    (key,) = s3_keys(letter_bucket)
    boto3.client("s3", region_name="eu-west-1").delete_object(Bucket=letter_bucket, Key=key)

    use_env(monkeypatch, env)
    assert cli.main(["replay", "--queue", dlq_url]) == EXIT_KEPT
    out = capsys.readouterr().out
    assert f"the dead letter s3://{letter_bucket}/{key} is missing (NoSuchKey)" in out
    assert "0 deleted, 1 kept" in out
    assert depth(dlq_url) == 1


# --- records the serializer refuses ----------------------------------------------------------


def test_replaying_a_document_the_serializer_refuses_keeps_it_as_still_poison(
    os_client: OpenSearch, alias: str, dlq_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    bad = load_event("unserializable.json")["Records"][:3]
    good = RecordFactory().record("INSERT", "a", "1", {"n": 1})
    send_dead_letters(boto3.client("sqs", region_name="eu-west-1"), dlq_url, [
        DeadLetter(r, "document cannot be serialized", "unserializable_document",
                   r["dynamodb"]["SequenceNumber"])
        for r in [*bad, good]
    ])  # fmt: skip

    use_env(monkeypatch, base_env(alias, dlq_url))
    assert cli.main(["replay", "--queue", dlq_url]) == EXIT_KEPT
    out = capsys.readouterr().out
    kept_lines = [line for line in out.splitlines() if line.startswith("  KEPT")]
    assert len(kept_lines) == 3
    assert all("still poison: unserializable_document: document cannot be serialized" in line
               for line in kept_lines)  # fmt: skip
    assert "1 deleted, 3 kept" in out
    kept = {m["sequence_number"]: m["record"] for m in dlq_messages(dlq_url)}
    assert kept == {r["dynamodb"]["SequenceNumber"]: r for r in bad}  # visible again, unchanged
    assert set(docs(os_client, alias)) == {"a|1"}


def test_a_message_that_breaks_the_replay_is_kept_and_the_run_goes_on(
    os_client: OpenSearch, alias: str, dlq_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    f = RecordFactory()
    breaking, fine = f.record("INSERT", "a", "1", {"n": 1}), f.record("INSERT", "b", "1", {"n": 1})
    send_dead_letters(boto3.client("sqs", region_name="eu-west-1"), dlq_url, [
        DeadLetter(r, "rejected earlier", "rejected", r["dynamodb"]["SequenceNumber"])
        for r in (breaking, fine)
    ])  # fmt: skip
    process = StreamIndexer.process

    def failing(self: StreamIndexer, records: Any, remaining_ms: Any) -> Any:
        if records and records[0] == breaking:
            raise RuntimeError("an unexpected bug")
        return process(self, records, remaining_ms)

    monkeypatch.setattr(StreamIndexer, "process", failing)
    use_env(monkeypatch, base_env(alias, dlq_url))
    assert cli.main(["replay", "--queue", dlq_url]) == EXIT_KEPT
    out = capsys.readouterr().out
    assert "replay failed on this message: RuntimeError: an unexpected bug" in out
    assert "1 deleted, 1 kept" in out
    (kept,) = dlq_messages(dlq_url)  # visible again at once, not hidden until the timeout
    assert kept["record"] == breaking


# --- dead letters the index has since superseded ---------------------------------------------


@pytest.mark.parametrize("later", ["MODIFY", "REMOVE"])
def test_a_dead_letter_superseded_by_a_later_change_is_deleted_as_stale(
    os_client: OpenSearch, alias: str, dlq_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], later: str,
) -> None:  # fmt: skip
    f = RecordFactory()
    env = base_env(alias, dlq_url)
    handler = make_handler(Settings.from_env(env))
    t = 1_800_000_000
    handler(event([f.record("INSERT", "x", "1", {"n": 1}, created=t)]), FakeContext())  # maps n: long
    poison = f.record("MODIFY", "x", "1", {"n": "not a number"}, created=t + 1)
    assert handler(event([poison]), FakeContext()) == {"batchItemFailures": []}
    assert depth(dlq_url) == 1
    fixed = f.record(later, "x", "1", {"n": 3}, created=t + 2)
    assert handler(event([fixed]), FakeContext()) == {"batchItemFailures": []}

    use_env(monkeypatch, env)
    assert cli.main(["replay", "--queue", dlq_url]) == EXIT_OK
    out = capsys.readouterr().out
    assert "1 deleted, 0 kept" in out
    assert "records replayed 0, stale 1" in out
    assert "stale (superseded): 1 record(s)" in out
    assert depth(dlq_url) == 0
    found = docs(os_client, alias)
    if later == "MODIFY":
        assert found["x|1"]["n"] == 3
    else:
        assert "x|1" not in found  # the tombstone stays: the old change did not resurrect it


def test_a_dead_letter_newer_than_the_indexed_document_is_not_taken_for_superseded(
    os_client: OpenSearch, alias: str, dlq_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    f = RecordFactory()
    env = base_env(alias, dlq_url)
    handler = make_handler(Settings.from_env(env))
    t = 1_800_000_000
    handler(event([f.record("INSERT", "x", "1", {"n": 1}, created=t)]), FakeContext())
    handler(event([f.record("MODIFY", "x", "1", {"n": "not a number"}, created=t)]), FakeContext())
    assert depth(dlq_url) == 1

    use_env(monkeypatch, env)
    assert cli.main(["replay", "--queue", dlq_url]) == EXIT_KEPT
    out = capsys.readouterr().out
    assert "still poison" in out
    assert "superseded" not in out
    assert depth(dlq_url) == 1
