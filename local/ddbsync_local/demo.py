"""``ddbsync demo``: the stream indexer's whole flow, then a backfill, on one machine.

The command's options are in :mod:`ddbsync.cli.demo`; :func:`run_demo` is the demo.

moto (in-process, or a moto_server through ``AWS_ENDPOINT_URL``) plays DynamoDB,
DynamoDB Streams, SQS and S3; :class:`~ddbsync_local.esm.EventSourceMapping` plays
Lambda's event source mapping; the real handler from ``ddbsync.handler`` writes
to a real OpenSearch. The index is compared with a table Scan; then the backfill
state machine rebuilds the index from a point-in-time export
(:mod:`ddbsync_local.backfill_run`) while the table keeps changing, swaps the alias,
and the comparison runs again. Last, the archiver reads the same stream through its own
event source mapping into the local Firehose (:mod:`ddbsync_local.demo_archive`), and the
archive's objects are listed under their partition keys.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

import boto3

from ddbsync.observability import quiet_logs
from ddbsync_local.esm import EsmConfig, EventSourceMapping, sqs_on_failure
from ddbsync_local.search import OpenSearchUnavailable, SearchHttp, opensearch_url

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "DEFAULT_ALIAS",
    "TABLE",
    "aws_backend",
    "aws_defaults",
    "create_stream_table",
    "run_demo",
    "scoped_env",
]

DEFAULT_ALIAS = "demo-products"
TABLE = "demo-products"

EXIT_PASS, EXIT_MISMATCH, EXIT_NO_OPENSEARCH, EXIT_NO_INDEXER = 0, 1, 2, 3

Item = dict[str, "AttributeValueTypeDef"]

_PRODUCTS = {
    "cat-shoes": ["Trail running shoe", "Road running shoe", "Leather hiking boot",
                  "Canvas sneaker", "Wool slipper"],
    "cat-hats": ["Wool beanie", "Sun hat", "Baseball cap", "Rain hat", "Felt fedora"],
    "cat-bags": ["Canvas tote bag", "Hiking backpack", "Leather satchel", "Running belt bag",
                 "Duffel bag"],
    "cat-socks": ["Hiking socks", "Running socks", "Wool socks", "Ski socks", "Dress socks"],
}  # fmt: skip


def run_demo(
    alias: str = DEFAULT_ALIAS, reset: bool = True, batch_size: int = 5, verbose: bool = False
) -> int:
    """Run the demo; return 0 when the index matches the table, non-zero otherwise."""
    url = opensearch_url()
    search = SearchHttp(url)
    _step(1, f"check OpenSearch at {url}")
    try:
        print(f"   OpenSearch {search.version()} answers")
    except OpenSearchUnavailable as e:
        print(e.advice(indent="   "))
        return EXIT_NO_OPENSEARCH
    if reset:
        for index in search.indices_behind(alias):
            # Only indices named after the alias: never drop an unrelated index it points to.
            if index == alias or index.startswith(f"{alias}-") or index.startswith(f"{alias}_"):
                search.delete_index(index)
                print(f"   deleted previous demo index {index}")
    with aws_defaults(), aws_backend():
        return _run(alias, url, search, batch_size, verbose)


def _run(alias: str, url: str, search: SearchHttp, batch_size: int, verbose: bool) -> int:
    _step(2, f"create table {TABLE} (pk, sk; stream NEW_AND_OLD_IMAGES) and SQS queues")
    ddb = boto3.client("dynamodb")
    stream_arn = create_stream_table(ddb)
    sqs = boto3.client("sqs")
    dlq_url = sqs.create_queue(QueueName=f"{TABLE}-record-dlq")["QueueUrl"]
    on_failure_url = sqs.create_queue(QueueName=f"{TABLE}-on-failure")["QueueUrl"]
    for queue in (dlq_url, on_failure_url):
        sqs.purge_queue(QueueUrl=queue)
    print(f"   stream {stream_arn}\n   record DLQ {dlq_url}")

    _step(3, "build the stream indexer handler (ddbsync.handler.make_handler)")
    env = {
        "OPENSEARCH_ENDPOINT": url,
        "OPENSEARCH_SERVICE": "none",
        "INDEX_ALIAS": alias,
        "PARTITION_KEY": "pk",
        "SORT_KEY": "sk",
        "RECORD_DLQ_URL": dlq_url,
        "MANAGE_INDEX": "true",
        # Check <alias>-next on every batch, so the backfill's dual-write needs no real wait.
        "NEXT_ALIAS_CHECK_SECONDS": "0",
    }
    if not verbose:
        env["POWERTOOLS_METRICS_DISABLED"] = os.environ.get("POWERTOOLS_METRICS_DISABLED", "true")
    with scoped_env(env):
        try:
            from ddbsync.handler import make_handler

            handler = make_handler()
        except Exception as e:  # missing module or bad settings: report and stop
            print(f"   ERROR: cannot build the handler: {e!r}")
            return EXIT_NO_INDEXER
        print(f"   index alias {alias}")

        _step(4, "write 20 items, update some, delete some")
        deleted = _write_changes(ddb)

        _step(5, f"deliver the stream to the handler (batch size {batch_size}, bisect on error)")
        config = EsmConfig(batch_size=batch_size, maximum_retry_attempts=2, bisect_on_error=True)
        esm = EventSourceMapping(
            stream_arn, handler, config, on_failure=sqs_on_failure(on_failure_url, sqs)
        )
        with quiet_logs(verbose):
            stats = esm.poll()
    print(f"   {stats.records_completed} records in {stats.invocations} invocations, "
          f"{stats.retries} retries, {stats.bisections} bisections, "
          f"{stats.batches_to_on_failure} batches to on-failure")  # fmt: skip
    dlq_count = _queue_depth(sqs, dlq_url)
    print(f"   record DLQ holds {dlq_count} messages")

    _step(6, f"search through the alias {alias}")
    search.call("POST", f"/{alias}/_refresh")
    _, count = search.call("GET", f"/{alias}/_count")
    print(f"   searchable documents: {_get(count, 'count')}")
    for word in ("running", "wool"):
        hits = _search(search, alias, {"match": {"name": word}})
        names = ", ".join(sorted(str(source.get("name")) for source in hits.values()))
        print(f"   match name:{word!r} -> {len(hits)} hits: {names}")

    _step(7, "compare the index with a table Scan")
    problems = _compare(_scan(ddb), _search(search, alias, {"match_all": {}}), deleted)
    if stats.batches_to_on_failure or dlq_count:
        problems.append(f"{stats.records_to_on_failure} records went to on-failure and "
                        f"{dlq_count} to the record DLQ")  # fmt: skip
    _verdict(problems)

    _step(8, "backfill the table into a new index (PITR on, ~5 items per file) while it changes")
    with scoped_env(env):  # the handler's environment (metrics off unless --verbose)
        backfill_problems = _backfill(ddb, url, alias, esm, deleted, verbose)
    _step(9, "compare the index with a table Scan again, after the alias swap")
    search.call("POST", f"/{alias}/_refresh")
    backfill_problems += _compare(_scan(ddb), _search(search, alias, {"match_all": {}}), deleted)
    _verdict(backfill_problems)

    _step(10, "archive the stream: the archiver, its second reader, through the template's Firehose layout")
    from ddbsync_local.demo_archive import run_archive

    with scoped_env(env):  # the handler's environment (metrics off unless --verbose)
        archive = run_archive(stream_arn, TABLE, sqs, boto3.client("s3"), dlq_url, batch_size=batch_size,
                              verbose=verbose)  # fmt: skip

    _step(11, "rebuild a new index from the archive (ddbsync rebuild --from-archive), compare with a Scan")
    from ddbsync_local.demo_archive import rebuild_from_archive

    with scoped_env(env):
        rebuild_problems = archive.problems or rebuild_from_archive(archive, boto3.client("s3"), verbose)
    if not archive.problems:
        search.call("POST", f"/{alias}/_refresh")
        rebuild_problems += _compare(_scan(ddb), _search(search, alias, {"match_all": {}}), deleted)
    _verdict(rebuild_problems)
    failed = problems or backfill_problems or archive.problems or rebuild_problems
    return EXIT_MISMATCH if failed else EXIT_PASS


def _verdict(problems: list[str]) -> None:
    for problem in problems:
        print(f"   - {problem}")
    print("   PASS: the index holds exactly the table's items" if not problems else "   FAIL")


def _backfill(
    ddb: DynamoDBClient, url: str, alias: str, esm: EventSourceMapping, deleted: list[str], verbose: bool
) -> list[str]:
    """Run the backfill state machine; change the table between its steps; return problems.

    Every change goes through the stream to the indexer, which writes it to the live
    alias and to ``<alias>-next`` (the backfill's index) while that exists.
    ``deleted`` gets the ids of the items deleted here.
    """
    from ddbsync.backfill.settings import BackfillSettings
    from ddbsync.config import Settings
    from ddbsync.opensearch.client import build_client
    from ddbsync_local.backfill_run import (
        DEFAULT_BUCKET,
        DEFAULT_PREFIX,
        LocalExports,
        ensure_bucket,
        local_env,
        run_backfill,
    )

    s3 = boto3.client("s3")
    ensure_bucket(s3, DEFAULT_BUCKET)
    backups = ddb.update_continuous_backups(
        TableName=TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )["ContinuousBackupsDescription"]
    print(f"   point-in-time recovery {backups['ContinuousBackupsStatus'].lower()}")
    table_arn = ddb.describe_table(TableName=TABLE)["Table"]["TableArn"]
    settings = Settings.from_env(local_env(url, alias, "pk", "sk"), require_dlq=False)
    bs = BackfillSettings(table_arn, DEFAULT_BUCKET, DEFAULT_PREFIX, "DYNAMODB_JSON", None, False, 0)

    def change(action: str, _result: Mapping[str, object]) -> None:
        if action == "start_export":
            ddb.update_item(TableName=TABLE, Key=_key("cat-bags", "item-11"),
                            UpdateExpression="SET price = :p",
                            ExpressionAttributeValues={":p": {"N": "77.00"}})  # fmt: skip
            ddb.delete_item(TableName=TABLE, Key=_key("cat-socks", "item-16"))
            deleted.append("cat-socks|item-16")
            ddb.put_item(TableName=TABLE, Item={
                **_key("cat-hats", "item-21"), "name": {"S": "Straw hat"}, "price": {"N": "21.00"},
                "tags": {"SS": ["hats", "straw"]}, "in_stock": {"BOOL": True},
            })  # fmt: skip
            print("   after the export started: repriced cat-bags|item-11, deleted cat-socks|item-16 "
                  "(both in the export), added cat-hats|item-21")  # fmt: skip
        elif action == "index_file" and _result.get("done") and "cat-shoes|item-03" not in deleted:
            ddb.delete_item(TableName=TABLE, Key=_key("cat-shoes", "item-03"))
            deleted.append("cat-shoes|item-03")
            print("   between two files: deleted cat-shoes|item-03 (in the export)")
        else:
            return
        stats = esm.poll()  # the stream indexer writes to <alias> and <alias>-next
        print(f"   stream: {stats.records_completed} changes to {alias} and {alias}-next")

    with quiet_logs(verbose):
        summary = run_backfill(
            settings, bs, client=build_client(settings), s3=s3,
            exports=LocalExports(ddb, s3, items_per_file=5), after_task=change,
        )  # fmt: skip
    return [] if summary.swapped else [f"the backfill failed: {summary.error}: {summary.cause}"]


STEPS = 11


def _step(number: int, text: str) -> None:
    print(f"[{number}/{STEPS}] {text}", flush=True)


@contextlib.contextmanager
def scoped_env(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block and restore the previous ones after it."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def aws_defaults() -> contextlib.AbstractContextManager[None]:
    """Dummy credentials and a region when unset (moto accepts any)."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    defaults = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }
    return scoped_env({k: v for k, v in defaults.items() if not os.environ.get(k)})


@contextlib.contextmanager
def aws_backend() -> Iterator[None]:
    """moto in-process, unless AWS_ENDPOINT_URL names a moto_server (boto3 honours it)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "").strip()
    if endpoint:
        print(f"   AWS APIs: {endpoint} (AWS_ENDPOINT_URL)")
        yield
        return
    from moto import mock_aws

    print("   AWS APIs: moto, in-process")
    with mock_aws():
        yield


def create_stream_table(ddb: DynamoDBClient, table: str = TABLE) -> str:
    """Create a (pk, sk) table with a NEW_AND_OLD_IMAGES stream (dropping an old one); its stream ARN."""
    with contextlib.suppress(ddb.exceptions.ResourceNotFoundException):
        ddb.delete_table(TableName=table)  # left over on a moto_server from an earlier run
    response = ddb.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return response["TableDescription"]["LatestStreamArn"]


def _key(pk: str, sk: str) -> Item:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _write_changes(ddb: DynamoDBClient) -> list[str]:
    """Write the demo's changes; return the ids of the items that end up deleted."""
    number = 0
    for pk, names in _PRODUCTS.items():
        for name in names:
            number += 1
            item: Item = {
                **_key(pk, f"item-{number:02d}"),
                "name": {"S": name},
                "price": {"N": f"{10 + number * 3}.99"},
                "stock": {"N": str(number * 7 % 23)},
                "tags": {"SS": sorted({pk.removeprefix("cat-"), name.split()[0].lower()})},
                "in_stock": {"BOOL": number % 4 != 0},
            }
            ddb.put_item(TableName=TABLE, Item=item)
    print(f"   put {number} items")

    def update(pk: str, sk: str, expression: str, values: Item) -> None:
        ddb.update_item(TableName=TABLE, Key=_key(pk, sk), UpdateExpression=expression,
                        ExpressionAttributeValues=values)  # fmt: skip

    for pk, sk, price in (("cat-shoes", "item-02", "59.00"), ("cat-hats", "item-08", "12.50"),
                          ("cat-bags", "item-12", "149.00"), ("cat-socks", "item-19", "4.99")):
        update(pk, sk, "SET price = :p", {":p": {"N": price}})  # fmt: skip
    print("   updated the price of 4 items")
    removed = [("cat-shoes", "item-05"), ("cat-bags", "item-15"), ("cat-socks", "item-20")]
    for pk, sk in removed:
        ddb.delete_item(TableName=TABLE, Key=_key(pk, sk))
    print(f"   deleted {len(removed)} items")

    # Many changes to one item within one second: ApproximateCreationDateTime cannot order
    # them, and with a small batch size they reach the handler in different invocations.
    started = time.monotonic()
    update("cat-shoes", "item-01", "SET price = :p", {":p": {"N": "99.00"}})
    update("cat-shoes", "item-01", "SET in_stock = :f", {":f": {"BOOL": False}})
    ddb.delete_item(TableName=TABLE, Key=_key("cat-shoes", "item-01"))
    ddb.put_item(TableName=TABLE, Item={
        **_key("cat-shoes", "item-01"), "name": {"S": "Trail running shoe, 2nd edition"},
        "price": {"N": "109.00"}, "tags": {"SS": ["running", "shoes"]}, "in_stock": {"BOOL": True},
    })  # fmt: skip
    update("cat-shoes", "item-01", "SET stock = :s", {":s": {"N": "3"}})
    update("cat-hats", "item-06", "SET price = :p", {":p": {"N": "18.00"}})
    update("cat-hats", "item-06", "SET price = :p", {":p": {"N": "16.00"}})
    ddb.delete_item(TableName=TABLE, Key=_key("cat-hats", "item-06"))
    removed.append(("cat-hats", "item-06"))
    elapsed_ms = (time.monotonic() - started) * 1000
    print(f"   8 rapid changes to cat-shoes|item-01 (ends live) and cat-hats|item-06 "
          f"(ends deleted) in {elapsed_ms:.0f} ms")  # fmt: skip
    return [f"{pk}|{sk}" for pk, sk in removed]


def _queue_depth(sqs: SQSClient, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", "0"))


def _get(body: object, key: str) -> object:
    return body.get(key) if isinstance(body, dict) else None


def _search(search: SearchHttp, alias: str, query: object) -> dict[str, dict[str, object]]:
    """Documents matching ``query`` through the alias, by id, without ddbsync metadata."""
    status, body = search.call("POST", f"/{alias}/_search",
                               {"size": 1000, "query": query})  # fmt: skip
    hits = _get(_get(body, "hits"), "hits")
    if status != 200 or not isinstance(hits, list):
        print(f"   search failed (HTTP {status}): {body}")
        return {}
    docs: dict[str, dict[str, object]] = {}
    for hit in hits:
        source = hit.get("_source", {})
        docs[str(hit["_id"])] = {k: v for k, v in source.items() if not k.startswith("_ddbsync")}
    return docs


def _scan(ddb: DynamoDBClient) -> dict[str, Item]:
    items: dict[str, Item] = {}
    for page in ddb.get_paginator("scan").paginate(TableName=TABLE, ConsistentRead=True):
        for item in page.get("Items", []):
            items[f"{item['pk']['S']}|{item['sk']['S']}"] = item
    return items


def _plain(value: AttributeValueTypeDef) -> object:
    """The JSON value a demo attribute should have in its document (demo types only)."""
    if "S" in value:
        return value["S"]
    if "N" in value:
        return Decimal(value["N"])
    if "BOOL" in value:
        return value["BOOL"]
    if "SS" in value:
        return sorted(value["SS"])
    raise ValueError(f"the demo writes no such attribute value: {value!r}")


def _same(expected: object, actual: object) -> bool:
    if isinstance(expected, Decimal) and isinstance(actual, Decimal | int):
        return expected == Decimal(actual)
    if isinstance(expected, list) and isinstance(actual, list):
        return expected == sorted(actual)
    return expected == actual


def _compare(
    table: dict[str, Item], index: dict[str, dict[str, object]], deleted: list[str]
) -> list[str]:
    """Every live item present at its latest image, every deleted one absent."""
    problems = []
    for doc_id, item in sorted(table.items()):
        doc = index.get(doc_id)
        if doc is None:
            problems.append(f"{doc_id} is in the table but not searchable")
            continue
        expected = {name: _plain(value) for name, value in item.items()}
        wrong = sorted(
            name
            for name in expected.keys() | doc.keys()
            if not _same(expected.get(name), doc.get(name))
        )
        if wrong:
            problems.append(f"{doc_id} differs in {', '.join(wrong)}: {doc}")
    for doc_id in sorted(index.keys() - table.keys()):
        problems.append(f"{doc_id} is searchable but not in the table")
    live_deleted = [d for d in deleted if d in index]
    print(f"   table: {len(table)} live items; index: {len(index)} searchable documents; "
          f"{len(deleted) - len(live_deleted)}/{len(deleted)} deleted items absent")  # fmt: skip
    return problems
