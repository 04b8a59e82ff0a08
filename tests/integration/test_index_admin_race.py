"""``ensure_index`` when several containers start at once, against the real OpenSearch.

Every container's first batch calls ``ensure_index``; whoever creates the index and its
alias, every caller must end with the alias and its write index, and exactly one index.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from opensearchpy import OpenSearch

from ddbsync.config import DEFAULT_INDEX_TEMPLATE
from ddbsync.errors import IndexAdminError
from ddbsync.opensearch.indices import ensure_index, tombstone_filter
from tests.support import OPENSEARCH_URL

pytestmark = pytest.mark.integration

# The calls ensure_index may use to find out what the alias name is (old code and new).
_LOOKS = frozenset({"exists_alias", "exists", "get_alias", "get"})


class _Indices:
    """The real ``client.indices``; the first look at the cluster runs ``meanwhile`` right after."""

    def __init__(self, real: Any, meanwhile: Callable[[], None]) -> None:
        self._real = real
        self._meanwhile: Callable[[], None] | None = meanwhile

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._real, name)
        if name not in _LOOKS:
            return call

        def look(*args: Any, **kwargs: Any) -> Any:
            try:
                return call(*args, **kwargs)
            finally:
                if self._meanwhile is not None:
                    meanwhile, self._meanwhile = self._meanwhile, None
                    meanwhile()

        return look


class OtherContainerFirst:
    """A real client whose first look at the alias is followed by another container's cold start."""

    def __init__(self, client: OpenSearch, meanwhile: Callable[[], None]) -> None:
        self._client = client
        self.indices = _Indices(client.indices, meanwhile)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def indices_named(client: OpenSearch, alias: str) -> list[str]:
    return sorted(client.indices.get(index=f"{alias}-*"))


def test_a_container_that_loses_the_creation_race_uses_the_winners_index(
    os_client: OpenSearch, alias: str
) -> None:
    other = OpenSearch(hosts=[OPENSEARCH_URL], timeout=30)
    won: list[str] = []
    def other_cold_start() -> None:
        won.append(ensure_index(other, alias, DEFAULT_INDEX_TEMPLATE))

    racing = OtherContainerFirst(os_client, other_cold_start)

    index = ensure_index(racing, alias, DEFAULT_INDEX_TEMPLATE)  # type: ignore[arg-type]

    assert won == [f"{alias}-000001"]  # the other container created it, between our looks
    assert index == f"{alias}-000001"
    assert indices_named(os_client, alias) == [index]
    assert list(os_client.indices.get_alias(name=alias)) == [index]


def test_many_containers_starting_at_once_all_succeed_with_one_index(
    os_client: OpenSearch, alias: str
) -> None:
    n = 12
    start = threading.Barrier(n)
    results: list[str | BaseException] = [""] * n

    def cold_start(i: int) -> None:
        client = OpenSearch(hosts=[OPENSEARCH_URL], timeout=30)
        client.info()  # connected before the start, so the starts line up
        start.wait()
        # Spread the starts over the time one index creation takes, so that some containers
        # look while another's creation is under way and look again once it is done.
        time.sleep(i * 0.02)
        try:
            results[i] = ensure_index(client, alias, DEFAULT_INDEX_TEMPLATE)
        except BaseException as e:  # reported below, with every other outcome
            results[i] = e

    threads = [threading.Thread(target=cold_start, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [f"{alias}-000001"] * n
    assert indices_named(os_client, alias) == [f"{alias}-000001"]
    aliases = os_client.indices.get_alias(name=alias)[f"{alias}-000001"]["aliases"]
    assert aliases[alias]["is_write_index"] is True
    assert aliases[alias]["filter"] == tombstone_filter()


def test_a_concrete_index_named_like_the_alias_still_gets_the_clear_error(
    os_client: OpenSearch, alias: str
) -> None:
    os_client.indices.create(index=alias)
    try:
        with pytest.raises(IndexAdminError, match=f"'{alias}' is an index, not an alias"):
            ensure_index(os_client, alias, DEFAULT_INDEX_TEMPLATE)
        assert indices_named(os_client, alias) == []  # nothing created beside it
    finally:
        os_client.indices.delete(index=alias)


def test_a_first_index_left_without_its_alias_is_named_in_the_error(
    os_client: OpenSearch, alias: str
) -> None:
    os_client.indices.create(index=f"{alias}-000001")

    expected = f"{alias}-000001 exists but the alias '{alias}' does not point at it"
    with pytest.raises(IndexAdminError, match=expected):
        ensure_index(os_client, alias, DEFAULT_INDEX_TEMPLATE)
