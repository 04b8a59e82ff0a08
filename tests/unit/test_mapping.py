"""mapping: stream records to document writes (index, tombstone, skip), collapse, poison."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddbsync.mapping import META_FIELD, collapse, map_record, map_records
from ddbsync.versioning import Ordering, stream_version
from tests.support import RecordFactory, load_event


def first(name: str) -> dict[str, Any]:
    return records(name)[0]


def records(name: str) -> list[dict[str, Any]]:
    batch: list[dict[str, Any]] = load_event(name)["Records"]
    return batch


# --- INSERT / MODIFY ----------------------------------------------------------------------


def test_an_insert_indexes_the_new_image_with_its_meta() -> None:
    change = map_record(first("insert.json"), "pk", "sk")
    assert change.op == "index"
    assert change.doc_id == "cat-shoes|item-001"
    assert change.version == stream_version(1714555815)
    assert change.ordering == Ordering(1714555815, 4466350000000000012345678908)
    assert map_records([first("insert.json")], "pk", "sk")[0][0].members == (0,)
    assert change.created_seconds == 1714555815
    assert change.body == {
        "pk": "cat-shoes",
        "sk": "item-001",
        "name": "Trail running shoe",
        "price": 89.99,
        "tags": ["outdoor", "running"],
        "in_stock": True,
        META_FIELD: {"seq": "0" * 12 + "4466350000000000012345678908", "ts": 1714555815, "source": "stream"},
    }


def test_a_modify_indexes_the_new_image_not_the_old_one() -> None:
    change = map_record(first("modify.json"), "pk", "sk")
    assert change.op == "index"
    assert change.body is not None
    assert change.body["price"] == 79.99
    assert change.body["tags"] == ["outdoor", "running", "sale"]


def test_the_meta_sequence_is_zero_padded_to_forty_digits_so_it_sorts_as_text() -> None:
    factory = RecordFactory()
    change = map_record(factory.record("INSERT", "a", seq="123", created=5), "pk", "sk")
    assert change.body is not None
    meta = change.body[META_FIELD]
    assert isinstance(meta, dict)
    assert meta["seq"] == "123".zfill(40)
    assert len(meta["seq"]) == 40


def test_a_fractional_creation_time_counts_as_its_whole_second() -> None:
    record = RecordFactory().record("INSERT", "a", created=0)
    record["dynamodb"]["ApproximateCreationDateTime"] = 1714555815.9
    change = map_record(record, "pk", "sk")
    assert change.created_seconds == 1714555815
    assert change.version == stream_version(1714555815)


def test_mapping_does_not_change_the_record() -> None:
    record = first("modify.json")
    before = copy.deepcopy(record)
    map_record(record, "pk", "sk")
    assert record == before


# --- REMOVE -------------------------------------------------------------------------------


def test_a_remove_writes_a_tombstone_with_only_the_meta() -> None:
    change = map_record(first("remove.json"), "pk", "sk")
    assert change.op == "tombstone"
    assert change.doc_id == "cat-shoes|item-001"
    assert change.version == stream_version(1714555935)
    assert change.body == {
        META_FIELD: {
            "seq": "4466350000000000012345678922".zfill(40),
            "ts": 1714555935,
            "source": "stream",
            "deleted": True,
        }
    }


def test_a_ttl_remove_is_a_tombstone_by_default() -> None:
    change = map_record(first("ttl_remove.json"), "pk", "sk")
    assert change.op == "tombstone"


def test_a_ttl_remove_is_skipped_when_ttl_removes_are_kept() -> None:
    change = map_record(first("ttl_remove.json"), "pk", "sk", ttl_removes="keep")
    assert change.op == "skip"
    assert change.doc_id == "cat-bags|item-007"


def test_a_user_remove_is_a_tombstone_even_when_ttl_removes_are_kept() -> None:
    change = map_record(first("remove.json"), "pk", "sk", ttl_removes="keep")
    assert change.op == "tombstone"


def test_a_remove_by_another_service_is_not_taken_for_a_ttl_expiry() -> None:
    record = RecordFactory().record("REMOVE", "a")
    record["userIdentity"] = {"type": "Service", "principalId": "someone.amazonaws.com"}
    assert map_record(record, "pk", "sk", ttl_removes="keep").op == "tombstone"


# A REMOVE made by TTL, written out as AWS documents it ("DynamoDB Streams and Time to Live"):
# the Lambda event's record carries userIdentity {"type": "Service", "principalId":
# "dynamodb.amazonaws.com"}; a REMOVE made by a user or an application has no userIdentity.
AWS_TTL_REMOVE: dict[str, Any] = {
    "eventID": "5d7f2a96b5c1e0a8f4b3c2d1e0f9a8b7",
    "eventName": "REMOVE",
    "eventVersion": "1.1",
    "eventSource": "aws:dynamodb",
    "awsRegion": "eu-west-1",
    "dynamodb": {
        "ApproximateCreationDateTime": 1714559415,
        "Keys": {"pk": {"S": "session"}, "sk": {"S": "4f1c"}},
        "OldImage": {"pk": {"S": "session"}, "sk": {"S": "4f1c"}, "expires_at": {"N": "1714558815"}},
        "SequenceNumber": "700000000000000000042",
        "SizeBytes": 64,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    },
    "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
    "eventSourceARN": "arn:aws:dynamodb:eu-west-1:123456789012:table/sessions/stream/2024-05-01T09:30:15.123",
}


def test_a_remove_with_dynamodbs_documented_ttl_identity_is_recognised_as_a_ttl_removal() -> None:
    record = copy.deepcopy(AWS_TTL_REMOVE)
    assert map_record(record, "pk", "sk", ttl_removes="keep").op == "skip"
    assert map_record(record, "pk", "sk", ttl_removes="delete").op == "tombstone"
    del record["userIdentity"]  # the same REMOVE made by a user
    assert map_record(record, "pk", "sk", ttl_removes="keep").op == "tombstone"


# --- collapse -----------------------------------------------------------------------------


def test_collapse_keeps_the_newest_change_per_key_and_remembers_every_sequence() -> None:
    batch = records("same_key_batch.json")
    changes, poison = map_records(batch, "pk", "sk")
    assert poison == []
    by_id = {c.doc_id: c for c in collapse(changes)}
    assert set(by_id) == {"cat-hats|item-003", "cat-hats|item-004"}

    item3 = by_id["cat-hats|item-003"]
    assert item3.op == "index"
    assert item3.body is not None
    assert item3.body["name"] == "Merino wool beanie"
    assert item3.record is batch[6]
    assert item3.members == tuple(
        i for i, r in enumerate(batch) if r["dynamodb"]["Keys"]["sk"]["S"] == "item-003"
    )

    item4 = by_id["cat-hats|item-004"]
    assert item4.record is batch[5]
    assert item4.body is not None
    assert item4.body["tags"] == ["sale", "summer"]
    assert item4.members == (1, 5)


def test_collapse_in_one_second_keeps_the_largest_sequence() -> None:
    batch = records("same_key_batch.json")[:5]  # all in second 1714555815
    changes, _ = map_records(batch, "pk", "sk")
    by_id = {c.doc_id: c for c in collapse(changes)}
    assert by_id["cat-hats|item-003"].op == "tombstone"
    assert by_id["cat-hats|item-003"].record is batch[4]


def test_collapse_prefers_a_later_second_over_a_larger_sequence() -> None:
    factory = RecordFactory()
    later = factory.record("MODIFY", "a", image={"v": 2}, created=101, seq="100000000000000000001")
    earlier = factory.record("MODIFY", "a", image={"v": 1}, created=100, seq="900000000000000000000")
    changes, _ = map_records([later, earlier], "pk", "sk")
    (kept,) = collapse(changes)
    assert kept.body is not None
    assert kept.body["v"] == 2
    assert kept.members == (0, 1)


def test_collapse_does_not_depend_on_the_order_records_arrive_in() -> None:
    batch = records("same_key_batch.json")
    changes, _ = map_records(batch, "pk", "sk")
    forward = {c.doc_id: c.record for c in collapse(changes)}
    backward = {c.doc_id: c.record for c in collapse(list(reversed(changes)))}
    assert forward == backward


@given(
    st.lists(
        st.tuples(st.sampled_from("abc"), st.integers(100, 103), st.integers(1, 10**6)),
        min_size=1,
        max_size=30,
        unique_by=lambda t: t[2],
    )
)
def test_collapse_keeps_exactly_the_newest_change_of_each_key(history: list[tuple[str, int, int]]) -> None:
    factory = RecordFactory()
    batch = [
        factory.record("MODIFY", key, image={"n": seq}, created=second, seq=str(10**20 + seq))
        for key, second, seq in history
    ]
    changes, poison = map_records(batch, "pk", "sk")
    assert poison == []
    kept = collapse(changes)
    assert len(kept) == len({key for key, _, _ in history})
    for change in kept:
        key = change.doc_id.split("|")[0]
        mine = [(second, seq) for k, second, seq in history if k == key]
        assert change.body is not None
        assert (change.created_seconds, change.body["n"]) == max(mine)
        assert sorted(change.members) == [i for i, (k, _, _) in enumerate(history) if k == key]


def test_collapse_of_nothing_is_nothing() -> None:
    assert collapse([]) == []


# --- poison -------------------------------------------------------------------------------


def test_an_unknown_type_tag_makes_only_its_record_poison() -> None:
    batch = records("poison.json")
    changes, poison = map_records(batch, "pk", "sk")
    assert [c.doc_id for c in changes] == ["cat-socks|item-010", "cat-socks|item-011", "cat-socks|item-013"]
    (bad,) = poison
    assert bad.record is batch[2]
    assert bad.sequence_number == "4466350000000000012345678999"
    assert bad.error_type == "UnknownTypeTagError"
    assert "price" in bad.reason


def test_an_item_with_an_attribute_named_like_the_meta_field_is_poison() -> None:
    record = RecordFactory().record("INSERT", "a", image={META_FIELD: {"seq": "1"}})
    changes, poison = map_records([record], "pk", "sk")
    assert changes == []
    (bad,) = poison
    assert bad.error_type == "RecordError"
    assert META_FIELD in bad.reason
    assert bad.sequence_number == record["dynamodb"]["SequenceNumber"]


_DELETE = object()
# How each case breaks a good INSERT record: (path to a field, its new value or _DELETE).
_BREAKS: dict[str, tuple[tuple[str, ...], object]] = {
    "no dynamodb": (("dynamodb",), _DELETE),
    "bad sequence": (("dynamodb", "SequenceNumber"), "12ab"),
    "no sequence": (("dynamodb", "SequenceNumber"), _DELETE),
    "negative time": (("dynamodb", "ApproximateCreationDateTime"), -1),
    "bool time": (("dynamodb", "ApproximateCreationDateTime"), True),
    "text time": (("dynamodb", "ApproximateCreationDateTime"), "1714555815"),
    "time out of range": (("dynamodb", "ApproximateCreationDateTime"), 10**20),
    "no keys": (("dynamodb", "Keys"), _DELETE),
    "no sort key": (("dynamodb", "Keys", "sk"), _DELETE),
    "no new image": (("dynamodb", "NewImage"), _DELETE),
    "bad number": (("dynamodb", "NewImage", "v"), {"N": "abc"}),
    "bad event name": (("eventName",), "UPSERT"),
}


def _broken(mutate: str) -> object:
    if mutate == "not a record":
        return ["not", "a", "record"]
    record: Any = RecordFactory().record("INSERT", "a", image={"v": 1})
    (*parents, field), value = _BREAKS[mutate]
    target = record
    for name in parents:
        target = target[name]
    if value is _DELETE:
        del target[field]
    else:
        target[field] = value
    return record


@pytest.mark.parametrize(
    ("mutate", "error_type", "reason"),
    [
        ("no dynamodb", "RecordError", "record has no 'dynamodb' object"),
        ("bad sequence", "RecordError", "record has no valid SequenceNumber: '12ab'"),
        ("no sequence", "RecordError", "record has no valid SequenceNumber: None"),
        ("negative time", "RecordError", "record has no valid ApproximateCreationDateTime"),
        ("bool time", "RecordError", "record has no valid ApproximateCreationDateTime"),
        ("text time", "RecordError", "record has no valid ApproximateCreationDateTime"),
        ("time out of range", "RecordError", "ApproximateCreationDateTime is out of range"),
        ("no keys", "RecordError", "record has no Keys"),
        ("no sort key", "RecordError", "record has no sort key attribute 'sk'"),
        ("no new image", "RecordError", "INSERT record has no NewImage"),
        ("bad number", "DecodeError", "invalid number 'abc'"),
        ("bad event name", "RecordError", "unknown eventName 'UPSERT'"),
        ("not a record", "RecordError", "record must be an object, got list"),
    ],
)
def test_map_records_returns_a_broken_record_as_poison_without_raising(
    mutate: str, error_type: str, reason: str
) -> None:
    good = RecordFactory(start_seq=5 * 10**20).record("INSERT", "ok")
    broken = _broken(mutate)
    changes, poison = map_records([good, broken], "pk", "sk")  # type: ignore[list-item]
    assert [c.doc_id for c in changes] == ["ok|s"]
    (bad,) = poison
    assert bad.record is broken
    assert bad.error_type == error_type
    assert bad.reason.startswith(reason), bad.reason


def test_map_records_returns_a_record_with_a_malformed_number_set_as_poison() -> None:
    record = RecordFactory().record("INSERT", "a", raw_image={"ns": {"NS": ["1", "abc"]}})
    changes, poison = map_records([record], "pk", "sk")
    assert changes == []
    assert len(poison) == 1


def test_map_records_returns_a_record_with_an_infinite_creation_time_as_poison() -> None:
    record = RecordFactory().record("INSERT", "a")
    record["dynamodb"]["ApproximateCreationDateTime"] = float("inf")
    changes, poison = map_records([record], "pk", "sk")
    assert changes == []
    assert len(poison) == 1


def test_a_poison_record_keeps_the_order_of_the_good_ones() -> None:
    factory = RecordFactory()
    batch = [factory.record("INSERT", str(i)) for i in range(5)]
    batch[2]["dynamodb"]["NewImage"]["x"] = {"Q": "1"}
    changes, poison = map_records(batch, "pk", "sk")
    assert [c.doc_id for c in changes] == ["0|s", "1|s", "3|s", "4|s"]
    assert [p.sequence_number for p in poison] == [batch[2]["dynamodb"]["SequenceNumber"]]
