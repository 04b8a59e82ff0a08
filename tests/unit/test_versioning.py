"""versioning: external versions that order every write path by second, then by slot."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddbsync.versioning import (
    EXPORT_RANK,
    SLOT_BITS,
    Ordering,
    export_version,
    second_of,
    sequence_rank,
    stream_version,
)

# Epoch seconds from 1970 to well past 2100.
seconds = st.integers(min_value=1, max_value=2**33)


@given(seconds, seconds)
def test_a_later_second_always_gets_a_higher_stream_version(a: int, b: int) -> None:
    assert (stream_version(a) < stream_version(b)) == (a < b)


def test_stream_versions_leave_the_slot_free() -> None:
    assert stream_version(1714555815) == 1714555815 << SLOT_BITS


def test_a_negative_second_is_rejected() -> None:
    with pytest.raises(ValueError):
        stream_version(-1)


def test_a_second_past_the_64_bit_version_range_is_rejected() -> None:
    with pytest.raises(ValueError):
        stream_version(1 << (63 - SLOT_BITS))


@given(st.floats(min_value=1, max_value=2**33, allow_nan=False))
def test_an_export_version_sits_between_the_previous_second_and_its_own(t: float) -> None:
    floor = math.floor(t)
    assert stream_version(floor - 1) < export_version(t) < stream_version(floor)


@given(st.floats(min_value=1, max_value=2**33, allow_nan=False))
def test_an_export_version_belongs_to_the_second_before_the_export(t: float) -> None:
    assert second_of(export_version(t)) == math.floor(t) - 1


@given(seconds, st.integers(min_value=0, max_value=(1 << SLOT_BITS) - 1))
def test_second_of_inverts_stream_version_whatever_the_slot(second: int, slot: int) -> None:
    assert second_of(stream_version(second) + slot) == second


def test_a_later_second_is_newer_whatever_the_sequence() -> None:
    assert Ordering(101, 1).newer_than(Ordering(100, 10**39))
    assert not Ordering(100, 10**39).newer_than(Ordering(101, 1))


def test_in_one_second_the_larger_sequence_is_newer() -> None:
    assert Ordering(100, 8).newer_than(Ordering(100, 7))
    assert not Ordering(100, 7).newer_than(Ordering(100, 8))


def test_an_equal_ordering_is_not_newer() -> None:
    assert not Ordering(100, 7).newer_than(Ordering(100, 7))


def test_an_export_ranks_above_every_stream_change_of_its_second() -> None:
    export = Ordering(100, EXPORT_RANK)
    assert export.newer_than(Ordering(100, 10**40 - 1))
    assert Ordering(101, 0).newer_than(export)


def test_a_compare_and_set_can_bump_below_the_top_slot() -> None:
    assert Ordering.can_bump(stream_version(100))
    assert Ordering.can_bump(stream_version(100) + (1 << SLOT_BITS) - 2)


def test_a_compare_and_set_cannot_bump_at_the_top_slot() -> None:
    assert not Ordering.can_bump(stream_version(100) + (1 << SLOT_BITS) - 1)


def test_an_export_version_cannot_be_bumped() -> None:
    assert not Ordering.can_bump(export_version(100.5))


@pytest.mark.parametrize("text", ["", "12a", "-1", "1.0", " 1", "1e5", "+1"])
def test_sequence_rank_rejects_anything_but_digits(text: str) -> None:
    with pytest.raises(ValueError):
        sequence_rank(text)


def test_sequence_rank_rejects_non_ascii_digits() -> None:
    with pytest.raises(ValueError):
        sequence_rank("\u0661\u0662")


def test_forty_digit_sequence_numbers_compare_exactly() -> None:
    low = "1234567890123456789012345678901234567890"
    high = "1234567890123456789012345678901234567891"
    assert sequence_rank(high) - sequence_rank(low) == 1
    assert Ordering(5, sequence_rank(high)).newer_than(Ordering(5, sequence_rank(low)))
    # floats could not tell them apart
    assert float(low) == float(high)


sequences = st.integers(min_value=10**20, max_value=10**40 - 1)


@given(sequences, sequences)
def test_sequence_ranks_order_like_the_numbers_whatever_their_length(a: int, b: int) -> None:
    assert (sequence_rank(str(a)) < sequence_rank(str(b))) == (a < b)
