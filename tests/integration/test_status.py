"""``ddbsync status --stack`` end to end: moto plays AWS (CloudFormation outputs, Lambda
event source mappings, CloudWatch, SQS, DynamoDB, Step Functions, S3), the index is the
real OpenSearch. Each planted trouble is reported with the command that fixes it.

moto models an event source mapping's State but not its LastProcessingResult (always
None), and a Step Functions execution stays RUNNING until stopped; the judge's unit tests
cover the other answers.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import boto3
import pytest
from opensearchpy import OpenSearch

from ddbsync.cli.commands import main as ddbsync
from ddbsync.config import DEFAULT_INDEX_TEMPLATE
from ddbsync.mapping import META_FIELD, document_meta, tombstone_body
from ddbsync.opensearch.indices import create_backfill_index, ensure_index
from tests.support import OPENSEARCH_URL

REGION = "eu-west-1"
STACK = "ddbsync-status-test"
ITEMS = 30
TOMBSTONES = 4


@dataclass
class Pipeline:
    alias: str
    table: str
    record_dlq: str
    on_failure: str
    state_machine: str
    index: str


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("app.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def _queues() -> dict[str, str]:
    sqs = boto3.client("sqs", region_name=REGION)
    return {name: sqs.create_queue(QueueName=name)["QueueUrl"]
            for name in ("record-dlq", "on-failure", "archive-on-failure")}  # fmt: skip


def _table() -> str:
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    for i in range(ITEMS):
        ddb.put_item(TableName="orders", Item={"pk": {"S": f"k{i}"}})
    return str(ddb.describe_table(TableName="orders")["Table"]["LatestStreamArn"])


def _readers(stream_arn: str) -> dict[str, str]:
    """Two functions on the stream, each with its event source mapping and an IteratorAge."""
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="fn", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )["Role"]["Arn"]
    lam = boto3.client("lambda", region_name=REGION)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    out = {}
    for name in ("stack-stream-indexer", "stack-archiver"):
        lam.create_function(FunctionName=name, Runtime="python3.13", Role=role, Handler="app.handler",
                            Code={"ZipFile": _zip()})  # fmt: skip
        out[name] = lam.create_event_source_mapping(
            EventSourceArn=stream_arn, FunctionName=name, StartingPosition="TRIM_HORIZON", BatchSize=100
        )["UUID"]
        cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=[{
            "MetricName": "IteratorAge", "Dimensions": [{"Name": "FunctionName", "Value": name}],
            "Timestamp": datetime.now(tz=UTC), "Value": 250.0, "Unit": "Milliseconds"}])  # fmt: skip
    return out


def _archive(table: str) -> str:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="archive", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for day, hour in (("2026-01-30", "23"), ("2026-01-31", "09"), ("2026-01-31", "10")):
        s3.put_object(Bucket="archive", Key=f"table={table}/dt={day}/hour={hour}/part-1.gz", Body=b"x")
    return "archive"


def _index(client: OpenSearch, alias: str) -> str:
    index = ensure_index(client, alias, DEFAULT_INDEX_TEMPLATE)
    actions: list[dict[str, object]] = []
    for i in range(ITEMS):
        actions += [{"index": {"_id": f"k{i}"}}, {"pk": f"k{i}", META_FIELD: document_meta("stream", 100)}]
    for i in range(TOMBSTONES):
        actions += [{"index": {"_id": f"gone{i}"}},
                    tombstone_body(document_meta("stream", 100, deleted=True))]  # fmt: skip
    client.bulk(index=alias, body=actions, refresh=True)
    return index


@pytest.fixture
def pipeline(aws: None, os_client: OpenSearch, alias: str) -> Iterator[Pipeline]:
    queues = _queues()
    stream_arn = _table()
    mappings = _readers(stream_arn)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(
        name="backfill", roleArn="arn:aws:iam::123456789012:role/sfn",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]  # fmt: skip
    outputs = {
        "TableName": "orders", "IndexAlias": alias, "OpenSearchEndpoint": OPENSEARCH_URL,
        "OpenSearchService": "none", "EventSourceMappingId": mappings["stack-stream-indexer"],
        "ArchiveEventSourceMappingId": mappings["stack-archiver"],
        "RecordDlqUrl": queues["record-dlq"], "OnFailureQueueUrl": queues["on-failure"],
        "ArchiveOnFailureQueueUrl": queues["archive-on-failure"], "BackfillStateMachineArn": machine,
        "ArchiveBucketName": _archive("orders"),
    }  # fmt: skip
    template = {
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "marker"}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=STACK, TemplateBody=json.dumps(template)
    )
    index = _index(os_client, alias)
    yield Pipeline(alias, "orders", queues["record-dlq"], queues["on-failure"], machine, index)


def _status(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = ddbsync(["status", "--stack", STACK, *extra])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out


def test_a_healthy_pipeline_exits_0_and_shows_every_source(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _status(capsys)
    assert code == 0, out
    assert "Healthy: exit 0" in out
    assert "indexer   Enabled" in out and "archiver  Enabled" in out
    assert "batch size 100, iterator age max 1h: 0.25s" in out
    assert f"alias        {pipeline.alias} -> {pipeline.index}" in out
    assert "absent (no backfill)" in out
    assert f"documents    {ITEMS} " in out
    assert f"table items  ~{ITEMS} (DescribeTable ItemCount: an estimate" in out
    assert f"tombstones   {TOMBSTONES} " in out
    assert "newest partition dt=2026-01-31/hour=10 (s3://archive/table=orders/)" in out
    assert "record-dlq          empty" in out


def test_a_planted_dlq_message_is_reported_with_the_replay_command(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("sqs", region_name=REGION).send_message(QueueUrl=pipeline.record_dlq, MessageBody="{}")
    code, out = _status(capsys)
    assert code == 1, out
    assert "record-dlq          1 (1 waiting" in out
    assert "PROBLEM record-dlq queue: 1 message(s)" in out
    assert f"fix: ddbsync replay --queue {pipeline.record_dlq}" in out
    # The oldest message's age: moto publishes no SQS metrics, and the screen says so.
    assert "oldest message: unavailable (no CloudWatch datapoint in the last 1h00m)" in out


def test_a_running_backfill_is_shown_with_the_command_that_follows_it(
    pipeline: Pipeline, os_client: OpenSearch, capsys: pytest.CaptureFixture[str]
) -> None:
    new = create_backfill_index(os_client, pipeline.alias, DEFAULT_INDEX_TEMPLATE, "20260131100000")[
        "new_index"
    ]
    sfn = boto3.client("stepfunctions", region_name=REGION)
    run = sfn.start_execution(stateMachineArn=pipeline.state_machine, name="rebuild-1")["executionArn"]
    code, out = _status(capsys)
    assert code == 0, out  # a backfill running as planned is a notice, not a problem
    assert f"next alias   {pipeline.alias}-next -> {new} (backfill index)" in out
    assert "last backfill rebuild-1: RUNNING" in out
    assert f"NOTICE  backfill: running: {pipeline.alias}-next -> {new} (execution rebuild-1)" in out
    assert f"fix: aws stepfunctions describe-execution --execution-arn {run}" in out

    sfn.stop_execution(executionArn=run)  # stopped by hand: Abort never ran, the next alias stays
    code, out = _status(capsys)
    assert code == 1, out
    assert f"PROBLEM backfill: {pipeline.alias}-next -> {new} but no backfill execution is running" in out
    assert f'fix: curl -X DELETE "$OPENSEARCH_ENDPOINT/{new}"' in out


def test_drift_between_documents_and_items_is_reported_with_verify_repair(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    ddb = boto3.client("dynamodb", region_name=REGION)
    for i in range(ITEMS, ITEMS * 3):  # items the index never got
        ddb.put_item(TableName=pipeline.table, Item={"pk": {"S": f"k{i}"}})
    code, out = _status(capsys)
    assert code == 1, out
    assert f"PROBLEM documents: {ITEMS} documents vs about {ITEMS * 3} items" in out
    assert "fix: ddbsync verify --repair" in out


def test_a_source_that_fails_is_unknown_and_the_rest_still_shows(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("sqs", region_name=REGION).delete_queue(QueueUrl=pipeline.on_failure)
    boto3.client("dynamodb", region_name=REGION).delete_table(TableName=pipeline.table)
    code, out = _status(capsys)
    assert code == 1, out
    assert "on-failure          unknown: AWS.SimpleQueueService.NonExistentQueue" in out
    assert "table items  unknown: ResourceNotFoundException" in out
    assert f"documents    {ITEMS} " in out  # OpenSearch still read


def test_json_output_mirrors_the_screen(pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    boto3.client("sqs", region_name=REGION).send_message(QueueUrl=pipeline.record_dlq, MessageBody="{}")
    code, out = _status(capsys, "--json")
    document = json.loads(out)
    assert code == 1
    assert document["healthy"] is False
    assert document["facts"]["counts"] == {"documents": ITEMS, "items": ITEMS, "tombstones": TOMBSTONES}
    assert document["facts"]["queues"][0]["depth"] == {"visible": 1, "in_flight": 0, "delayed": 0}
    assert document["facts"]["queues"][0]["oldest_age"]["maximum"] is None
    (finding,) = [f for f in document["findings"] if f["severity"] == "problem"]
    assert finding["fix"] == f"ddbsync replay --queue {pipeline.record_dlq}"


def test_flags_without_a_stack_check_only_what_they_name(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--table", pipeline.table, "--alias", pipeline.alias, "--endpoint", OPENSEARCH_URL]
    code = ddbsync(["status", *flags, "--record-dlq", pipeline.record_dlq])
    out = capsys.readouterr().out
    assert code == 0, out
    assert (
        "not checked: no indexer function (--indexer-function, or stack output StreamIndexerFunctionName)"
        in out
    )
    assert f"documents    {ITEMS} " in out


def test_an_unknown_stack_is_a_usage_error(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert ddbsync(["status", "--stack", "no-such-stack"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ERROR: cannot read stack 'no-such-stack': ValidationError")
    assert len(err.strip().splitlines()) == 1


def test_nothing_to_check_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENSEARCH_ENDPOINT", "INDEX_ALIAS", "OPENSEARCH_SERVICE"):
        monkeypatch.delenv(name, raising=False)
    assert ddbsync(["status"]) == 2
    assert "nothing to check" in capsys.readouterr().err
