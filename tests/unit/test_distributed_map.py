"""The local runner's Distributed Map (ddbsync_local.distributed_map) against moto S3.

Small definitions that exercise each documented piece: the S3 item readers, ItemSelector,
ItemBatcher, MaxConcurrency, the failure tolerance, and the ResultWriter's files and output.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import boto3
import pytest

from ddbsync_local.stepfunctions import TaskFailed, run

BUCKET = "map-bucket"
TASK = "arn:aws:lambda:eu-west-1:123456789012:function:f"


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name="eu-west-1")
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return client


def machine(map_state: dict[str, Any], *, child: dict[str, Any] | None = None) -> dict[str, Any]:
    """A definition whose one Map runs ``child`` (default: a Task echoing its input)."""
    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "Work",
        "States": {"Work": child or {"Type": "Task", "Resource": TASK, "End": True}},
    }
    return {
        "StartAt": "Map",
        "States": {"Map": {"Type": "Map", "ItemProcessor": processor, "End": True, **map_state}},
    }


def put_lines(s3: Any, key: str, docs: list[dict[str, Any]]) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body="".join(json.dumps(d) + "\n" for d in docs).encode())


def read_json(s3: Any, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


class Recorder:
    """The Task: records its inputs (from several threads) and fails on the ones asked."""

    def __init__(self, fail_on: set[int] | None = None, delay: float = 0.0) -> None:
        self.inputs: list[Any] = []
        self.fail_on = fail_on or set()
        self.delay = delay
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def __call__(self, resource: str, payload: Any) -> Any:
        with self.lock:
            self.inputs.append(payload)
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(self.delay)
        with self.lock:
            self.running -= 1
        if isinstance(payload, dict) and payload.get("n") in self.fail_on:
            cause = json.dumps({"errorMessage": f"item {payload['n']} is bad", "errorType": "ValueError"})
            raise TaskFailed("ValueError", cause)
        return {"seen": payload}


def test_a_jsonl_reader_feeds_one_child_per_line_through_the_item_selector(s3: Any) -> None:
    put_lines(s3, "in/items.jsonl", [{"n": i, "name": f"item-{i}"} for i in range(5)])
    state = {
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSONL"},
            "Parameters": {"Bucket.$": "$.bucket", "Key": "in/items.jsonl"},
        },
        "ItemSelector": {"n.$": "$$.Map.Item.Value.n", "index.$": "$$.Map.Item.Index", "tag.$": "$.tag"},
    }
    task = Recorder()
    execution = run(machine(state), {"bucket": BUCKET, "tag": "t"}, task, s3=s3)
    assert execution.status == "SUCCEEDED", execution
    assert sorted(task.inputs, key=lambda i: i["n"]) == [{"n": i, "index": i, "tag": "t"} for i in range(5)]
    # Without a ResultWriter the output is the children's outputs, in item order.
    assert [o["seen"]["n"] for o in execution.output] == [0, 1, 2, 3, 4]


def test_a_json_reader_takes_the_array_and_max_items(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="in/a.json", Body=json.dumps([{"n": i} for i in range(10)]).encode())
    state = {
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON", "MaxItems": 4},
            "Parameters": {"Bucket": BUCKET, "Key": "in/a.json"},
        }
    }
    task = Recorder()
    assert run(machine(state), {}, task, s3=s3).status == "SUCCEEDED"
    assert sorted(i["n"] for i in task.inputs) == [0, 1, 2, 3]


def test_list_objects_items_are_shaped_like_aws_and_batched_with_batch_input(s3: Any) -> None:
    for i in range(7):
        s3.put_object(Bucket=BUCKET, Key=f"arch/o{i}", Body=b"x" * i)
    s3.put_object(Bucket=BUCKET, Key="other/o", Body=b"x")
    state = {
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:listObjectsV2",
            "Parameters": {"Bucket": BUCKET, "Prefix": "arch/"},
        },
        "ItemBatcher": {"MaxItemsPerBatch": 3, "BatchInput": {"run.$": "$.run", "fixed": 1}},
    }
    task = Recorder()
    assert run(machine(state), {"run": "r1"}, task, s3=s3).status == "SUCCEEDED"
    assert sorted(len(b["Items"]) for b in task.inputs) == [1, 3, 3]
    assert all(b["BatchInput"] == {"run": "r1", "fixed": 1} for b in task.inputs)
    items = {item["Key"]: item for b in task.inputs for item in b["Items"]}
    assert set(items) == {f"arch/o{i}" for i in range(7)}
    assert set(items["arch/o3"]) == {"Etag", "Key", "LastModified", "Size", "StorageClass"}
    assert items["arch/o3"]["Size"] == 3 and items["arch/o3"]["StorageClass"] == "STANDARD"
    assert isinstance(items["arch/o3"]["LastModified"], int)


def test_children_run_at_most_max_concurrency_at_once(s3: Any) -> None:
    put_lines(s3, "in/i.jsonl", [{"n": i} for i in range(12)])
    reader = {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSONL"},
        "Parameters": {"Bucket": BUCKET, "Key": "in/i.jsonl"},
    }
    task = Recorder(delay=0.05)
    assert run(machine({"ItemReader": reader, "MaxConcurrency": 3}), {}, task, s3=s3).status == "SUCCEEDED"
    assert task.most == 3


def result_writer_state(items: int, **extra: Any) -> dict[str, Any]:
    return {
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSONL"},
            "Parameters": {"Bucket": BUCKET, "Key": f"in/{items}.jsonl"},
        },
        "ResultWriter": {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": BUCKET, "Prefix.$": "States.Format('results/{}', $$.Execution.Name)"},
        },
        **extra,
    }


def test_the_result_writer_writes_aws_shaped_files_and_the_map_returns_where(s3: Any) -> None:
    put_lines(s3, "in/3.jsonl", [{"n": i} for i in range(3)])
    execution = run(machine(result_writer_state(3)), {}, Recorder(), name="ex-9", s3=s3)
    assert execution.status == "SUCCEEDED", execution
    output = execution.output
    assert set(output) == {"MapRunArn", "ResultWriterDetails"}
    details = output["ResultWriterDetails"]
    assert details["Bucket"] == BUCKET
    assert details["Key"].startswith("results/ex-9/") and details["Key"].endswith("/manifest.json")
    manifest = read_json(s3, details["Key"])
    assert manifest["DestinationBucket"] == BUCKET and manifest["MapRunArn"] == output["MapRunArn"]
    assert manifest["ResultFiles"]["FAILED"] == [] and manifest["ResultFiles"]["PENDING"] == []
    (succeeded,) = manifest["ResultFiles"]["SUCCEEDED"]
    assert succeeded["Key"].endswith("/SUCCEEDED_0.json")
    children = read_json(s3, succeeded["Key"])
    assert succeeded["Size"] == len(json.dumps(children).encode())
    assert sorted(json.loads(c["Input"])["n"] for c in children) == [0, 1, 2]
    for child in children:
        assert child["Status"] == "SUCCEEDED"
        assert json.loads(child["Output"]) == {"seen": json.loads(child["Input"])}
        assert {"ExecutionArn", "Name", "StartDate", "StopDate", "InputDetails"} <= set(child)


def test_a_failed_child_fails_the_map_at_tolerance_0_and_its_error_is_in_failed_0(s3: Any) -> None:
    put_lines(s3, "in/40.jsonl", [{"n": i} for i in range(40)])
    state = result_writer_state(40, ToleratedFailurePercentage=0, MaxConcurrency=1)
    task = Recorder(fail_on={5})
    execution = run(machine(state), {}, task, name="ex-1", s3=s3)
    assert (execution.status, execution.error) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    # No child starts after the threshold is exceeded: the rest stay PENDING.
    assert sorted(i["n"] for i in task.inputs) == list(range(6))
    (manifest_key,) = [
        o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="results/ex-1/")["Contents"]
        if o["Key"].endswith("manifest.json")
    ]  # fmt: skip
    files = read_json(s3, manifest_key)["ResultFiles"]
    (failed,) = read_json(s3, files["FAILED"][0]["Key"])
    assert failed["Status"] == "FAILED" and failed["Error"] == "ValueError"
    assert json.loads(failed["Cause"])["errorMessage"] == "item 5 is bad"
    assert json.loads(failed["Input"]) == {"n": 5}
    assert len(read_json(s3, files["SUCCEEDED"][0]["Key"])) == 5
    assert len(read_json(s3, files["PENDING"][0]["Key"])) == 34


@pytest.mark.parametrize(
    ("tolerance", "status"),
    [
        ({"ToleratedFailureCount": 2}, "SUCCEEDED"),
        ({"ToleratedFailureCount": 1}, "FAILED"),
        ({"ToleratedFailurePercentage": 20}, "SUCCEEDED"),  # 2 of 10
        ({"ToleratedFailurePercentage": 10}, "FAILED"),
        ({}, "FAILED"),  # none tolerated by default
    ],
)
def test_failures_within_the_tolerance_let_the_map_succeed(
    s3: Any, tolerance: dict[str, Any], status: str
) -> None:
    put_lines(s3, "in/10.jsonl", [{"n": i} for i in range(10)])
    state = {**result_writer_state(10), **tolerance}
    execution = run(machine(state), {}, Recorder(fail_on={2, 7}), s3=s3)
    assert execution.status == status, execution


def test_a_missing_item_file_is_an_item_reader_failure(s3: Any) -> None:
    execution = run(machine(result_writer_state(99)), {}, Recorder(), s3=s3)
    assert execution.error == "States.ItemReaderFailed"


def test_a_missing_results_bucket_is_a_result_writer_failure(s3: Any) -> None:
    put_lines(s3, "in/2.jsonl", [{"n": 1}, {"n": 2}])
    state = result_writer_state(2)
    state["ResultWriter"]["Parameters"] = {"Bucket": "no-such-bucket", "Prefix": "r"}
    execution = run(machine(state), {}, Recorder(), s3=s3)
    assert execution.error == "States.ResultWriterFailed"


def test_what_is_not_modelled_says_so(s3: Any) -> None:
    put_lines(s3, "in/2.jsonl", [{"n": 1}])
    state = result_writer_state(2)
    state["ItemBatcher"] = {"MaxInputBytesPerBatch": 1024}
    with pytest.raises(NotImplementedError, match="MaxInputBytesPerBatch"):
        run(machine(state), {}, Recorder(), s3=s3)
    with pytest.raises(NotImplementedError, match="S3 client"):
        run(machine(result_writer_state(2)), {}, Recorder())
