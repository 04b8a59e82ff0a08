"""ddbsync status: the judge (a pure function of facts), targets, and what a failed source becomes."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ddbsync.status import NOTICE, PROBLEM, Facts, Finding, Skipped, Targets, Unknown, as_json, as_text, judge
from ddbsync.status.facts import (
    AliasState,
    ArchiveState,
    Counts,
    Execution,
    Mapping,
    MetricReading,
    QueueDepth,
    QueueFacts,
    ReaderFacts,
)
from ddbsync.status.gather import attempt
from ddbsync.status.sources import newest_partition
from ddbsync.status.targets import OUTPUT_OF
from ddbsync_local.cfn import load_template

NOW = 1_800_000_000.0
DLQ = "https://sqs.eu-west-1.amazonaws.com/1/record-dlq"
ON_FAILURE = "https://sqs.eu-west-1.amazonaws.com/1/on-failure"
MACHINE = "arn:aws:states:eu-west-1:1:stateMachine:backfill"
TARGETS = Targets(stack="prod", table="orders", alias="items", state_machine=MACHINE,
                  record_dlq=DLQ, on_failure_queue=ON_FAILURE)  # fmt: skip


def _reader(
    role: str, state: str = "Enabled", result: str | None = "OK", age_ms: float = 200.0
) -> ReaderFacts:
    return ReaderFacts(role, Mapping(f"uuid-{role}", f"fn-{role}", state, result, 100),
                       MetricReading(age_ms, age_ms, 3600))  # fmt: skip


def _queue(role: str, url: str, depth: int = 0, age: float | None = None) -> QueueFacts:
    return QueueFacts(role, url, QueueDepth(depth, 0, 0), MetricReading(age, age, 3600))


def healthy(**change: Any) -> Facts:
    facts = Facts(
        now=NOW,
        readers=(_reader("indexer"), _reader("archiver")),
        queues=(
            _queue("record-dlq", DLQ),
            _queue("on-failure", ON_FAILURE),
            _queue("archive-on-failure", "https://sqs/1/a"),
        ),
        alias=AliasState("items", "items-000001", "items-next", None, None),
        execution=Execution("b1", f"{MACHINE}:b1", "SUCCEEDED", NOW - 86400, NOW - 80000),
        counts=Counts(1000, 1010, 20),
        archive=ArchiveState("arch", "table=orders/", "dt=2027-01-15/hour=07", NOW - 1800, False),
    )
    return replace(facts, **change)


def _only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def test_a_healthy_pipeline_has_no_findings() -> None:
    assert judge(healthy(), TARGETS) == []


def test_messages_in_the_record_dlq_call_for_replay() -> None:
    f = _only(judge(healthy(queues=(_queue("record-dlq", DLQ, depth=3, age=7200.0),)), TARGETS))
    assert (f.severity, f.fix) == (PROBLEM, f"ddbsync replay --queue {DLQ}")
    assert "3 message(s), oldest 2h00m" in f.what
    assert f.runbook == "Alarm: RecordDlqDepthAlarm"


def test_on_failure_pointers_call_for_replay_and_near_24h_for_repair_too() -> None:
    fresh = judge(healthy(queues=(_queue("on-failure", ON_FAILURE, depth=1, age=600.0),)), TARGETS)
    assert [f.fix for f in fresh] == [f"ddbsync replay --on-failure-queue {ON_FAILURE}"]
    old = judge(healthy(queues=(_queue("on-failure", ON_FAILURE, depth=1, age=20 * 3600.0),)), TARGETS)
    assert [f.fix for f in old] == [f"ddbsync replay --on-failure-queue {ON_FAILURE}",
                                    "ddbsync repair --from T1 --to T2"]  # fmt: skip


def test_archive_on_failure_pointers_call_for_a_re_archive_and_near_24h_warn_of_a_gap() -> None:
    f = _only(judge(healthy(queues=(_queue("archive-on-failure", "https://sqs/1/a", depth=2),)), TARGETS))
    assert f.severity == PROBLEM and "not from the index" in f.what
    assert f.fix == "ddbsync replay --archive-on-failure-queue https://sqs/1/a"
    assert f.runbook == "Archive alarms"
    old = judge(healthy(queues=(_queue("archive-on-failure", "https://sqs/1/a", depth=1, age=20 * 3600.0),)),
                TARGETS)  # fmt: skip
    assert [g.fix for g in old] == ["ddbsync replay --archive-on-failure-queue https://sqs/1/a", None]
    assert "gap in the archive" in old[1].what and "backfill" in old[1].what


def test_a_disabled_mapping_is_enabled_again() -> None:
    f = _only(judge(healthy(readers=(_reader("indexer", state="Disabled"),)), TARGETS))
    assert f.fix == "aws lambda update-event-source-mapping --uuid uuid-indexer --enabled"


def test_a_failing_reader_points_at_its_logs() -> None:
    f = _only(judge(healthy(readers=(_reader("archiver", result="PROBLEM: Function call failed"),)), TARGETS))
    assert f.fix == "aws logs tail /aws/lambda/prod-archiver --since 1h"


def test_iterator_age_over_a_minute_is_a_problem() -> None:
    assert judge(healthy(readers=(_reader("indexer", age_ms=59_000),)), TARGETS) == []
    f = _only(judge(healthy(readers=(_reader("indexer", age_ms=61_000),)), TARGETS))
    assert f.severity == PROBLEM and "1m behind" in f.what and f.runbook == "Alarm: IteratorAgeAlarm"


def test_drift_beyond_the_tolerance_calls_for_verify_repair() -> None:
    assert judge(healthy(counts=Counts(1000, 1049, 0)), TARGETS) == []
    f = _only(judge(healthy(counts=Counts(1000, 1200, 0)), TARGETS))
    assert (f.severity, f.fix) == (PROBLEM, "ddbsync verify --repair")
    assert "estimate" in f.what and "200 apart" in f.what
    small = judge(healthy(counts=Counts(3, 9, 0)), TARGETS)  # a tiny table: within drift_min
    assert small == []


def test_drift_with_messages_waiting_says_replay_first() -> None:
    facts = healthy(counts=Counts(1000, 1200, 0), queues=(_queue("record-dlq", DLQ, depth=1),))
    drift = [f for f in judge(facts, TARGETS) if f.source == "documents"]
    assert "replay the queues first" in _only(drift).what


def test_tombstones_piling_up_are_a_notice_with_the_purge_command() -> None:
    f = _only(judge(healthy(counts=Counts(1000, 1000, 5000)), TARGETS))
    assert (f.severity, f.fix) == (NOTICE, "ddbsync purge-tombstones --older-than 16d")


def test_a_running_backfill_is_a_notice_and_an_orphan_next_alias_a_problem() -> None:
    alias = AliasState("items", "items-000001", "items-next", "items-2027", None)
    running = Execution("b2", f"{MACHINE}:b2", "RUNNING", NOW - 60, None)
    f = _only(judge(healthy(alias=alias, execution=running), TARGETS))
    assert (f.severity, f.fix) == (
        NOTICE,
        f"aws stepfunctions describe-execution --execution-arn {MACHINE}:b2",
    )
    f = _only(judge(healthy(alias=alias), TARGETS))
    assert (f.severity, f.fix) == (PROBLEM, 'curl -X DELETE "$OPENSEARCH_ENDPOINT/items-2027"')


def test_an_orphan_next_alias_on_the_live_index_never_suggests_deleting_it() -> None:
    alias = AliasState("items", "items-000001", "items-next", "items-000001", None)
    assert all("DELETE" not in (f.fix or "") for f in judge(healthy(alias=alias), TARGETS))


def test_a_failed_backfill_is_started_again_and_a_missing_alias_rebuilt() -> None:
    failed = Execution("b3", f"{MACHINE}:b3", "FAILED", NOW - 600, NOW - 60)
    f = _only(judge(healthy(execution=failed), TARGETS))
    assert f.fix == f"aws stepfunctions start-execution --state-machine-arn {MACHINE} --input '{{}}'"
    gone = AliasState("items", None, "items-next", None, None)
    findings = judge(healthy(alias=gone, counts=Counts(Unknown("no such index"), 5, Skipped("x"))), TARGETS)
    assert findings[0].what == "items points at no index: searches fail"
    assert findings[0].fix is not None and findings[0].fix.startswith("aws stepfunctions start-execution")


def test_an_unreadable_source_is_a_problem_and_a_skipped_one_is_not() -> None:
    f = _only(judge(healthy(execution=Unknown("AccessDeniedException: no")), TARGETS))
    assert (f.severity, f.what) == (PROBLEM, "unknown: AccessDeniedException: no")
    assert judge(healthy(execution=Skipped("no state machine"), archive=Skipped("no bucket")), TARGETS) == []


def test_an_old_archive_partition_and_error_objects_are_notices() -> None:
    old = ArchiveState("arch", "table=orders/", "dt=2027-01-14/hour=01", NOW - 86400, True)
    findings = judge(healthy(archive=old), TARGETS)
    assert [f.severity for f in findings] == [NOTICE, NOTICE]
    assert findings[1].fix == "aws s3 ls s3://arch/errors/ --recursive"


def test_problems_come_before_notices() -> None:
    facts = healthy(counts=Counts(1000, 1000, 5000), queues=(_queue("record-dlq", DLQ, depth=1),))
    assert [f.severity for f in judge(facts, TARGETS)] == [PROBLEM, NOTICE]


def test_attempt_turns_a_failure_into_one_line() -> None:
    def refused() -> int:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not you"}}, "GetQueueAttributes")

    def broken() -> int:
        raise KeyError("Attributes")

    assert attempt(refused) == Unknown("AccessDenied: not you")
    assert attempt(broken) == Unknown("KeyError: 'Attributes'")
    assert attempt(lambda: 3) == 3


def test_the_screen_and_the_json_agree_on_health() -> None:
    facts = healthy(queues=(_queue("record-dlq", DLQ, depth=2),), execution=Unknown("denied"))
    findings = judge(facts, TARGETS)
    text = as_text(facts, TARGETS, findings)
    assert text.endswith("2 problem(s): exit 1")
    assert "last backfill unknown: denied" in text
    document = json.loads(as_json(facts, TARGETS, findings))
    assert document["healthy"] is False
    assert document["facts"]["execution"] == {"unknown": "denied"}
    assert json.loads(as_json(healthy(), TARGETS, []))["healthy"] is True


def test_targets_take_flags_over_stack_outputs() -> None:
    outputs = {key: f"out-{key}" for key in OUTPUT_OF.values()}
    from_stack = Targets.from_outputs("prod", outputs)
    assert from_stack.record_dlq == "out-RecordDlqUrl" and from_stack.alias == "out-IndexAlias"
    merged = from_stack.merged(Targets(alias="flag-alias"))
    assert merged.alias == "flag-alias" and merged.table == "out-TableName"


def test_the_template_has_every_output_status_reads() -> None:
    outputs = set(load_template()["Outputs"])
    assert set(OUTPUT_OF.values()) <= outputs, set(OUTPUT_OF.values()) - outputs


class _Pages:
    def __init__(self, keys: list[str]) -> None:
        self.keys = keys

    def get_paginator(self, _name: str) -> _Pages:
        return self

    def paginate(self, *, Bucket: str, Prefix: str, Delimiter: str) -> list[dict[str, Any]]:
        below = {k[len(Prefix) :].split(Delimiter, 1)[0] for k in self.keys if k.startswith(Prefix)}
        return [
            {"CommonPrefixes": [{"Prefix": f"{Prefix}{p}/"} for p in sorted(below)[i::2]]} for i in (0, 1)
        ]

    def list_objects_v2(self, *, Bucket: str, Prefix: str, MaxKeys: int) -> dict[str, int]:
        return {"KeyCount": min(MaxKeys, sum(k.startswith(Prefix) for k in self.keys))}


@pytest.mark.parametrize("errors", [False, True])
def test_the_newest_partition_is_found_across_pages(errors: bool) -> None:
    keys = [f"table=t/dt=2027-01-{d:02d}/hour={h:02d}/x.gz" for d in (9, 10, 11) for h in (0, 7, 23)]
    keys += ["table=other/dt=2028-01-01/hour=00/x.gz"] + (["errors/processing-failed/x"] if errors else [])
    state = newest_partition(_Pages(keys), "b", "t")  # type: ignore[arg-type]
    assert state.newest == "dt=2027-01-11/hour=23"
    assert state.newest_hour == 1799708400.0
    assert state.has_errors is errors
