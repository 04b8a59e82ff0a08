"""Property: whatever the delivery order, duplication or delay, the index converges to the table.

Random histories of puts, updates and deletes on a few keys (many in the same
second) are cut into random batches and delivered by separate invocations of the
real handler into the real OpenSearch, with duplicated batches, bisected
retries, and late replays of earlier batches. At the end the searchable
documents must equal the model table exactly. The same property is checked with
``index.gc_deletes: 0s``: the design keeps deletes as versioned tombstone
documents, so it must not depend on OpenSearch's delete tombstones.
"""

from __future__ import annotations

import itertools
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opensearchpy import OpenSearch

from ddbsync.config import Settings
from ddbsync.handler import make_handler
from tests.conftest import base_env
from tests.support import FakeContext, RecordFactory, event

pytestmark = pytest.mark.integration

KEYS = ["k0", "k1", "k2"]

op = st.tuples(
    st.sampled_from(["put", "put", "delete"]),
    st.sampled_from(KEYS),
    st.integers(0, 3),  # seconds to advance before the op: mostly 0 -> same-second changes
)
history_st = st.lists(op, min_size=1, max_size=25)


@st.composite
def delivery_plan(draw: st.DrawFn, n_records: int) -> list[tuple[str, list[int]]]:
    """Cut records 0..n-1 into batches and decide, per batch, how it is delivered."""
    cuts = sorted(draw(st.sets(st.integers(1, max(1, n_records - 1)), max_size=n_records)))
    bounds = [0, *[c for c in cuts if c < n_records], n_records]
    batches = [list(range(a, b)) for a, b in itertools.pairwise(bounds) if b > a]
    plan: list[tuple[str, list[int]]] = []
    delivered: list[list[int]] = []
    for batch in batches:
        mode = draw(st.sampled_from(["once", "once", "duplicate", "bisect", "replay_earlier"]))
        if mode == "duplicate":
            plan += [("live", batch), ("live", batch)]
        elif mode == "bisect" and len(batch) > 1:
            # The invocation failed after writing part of the batch; Lambda then bisects it.
            half = len(batch) // 2
            plan += [("live", batch[:half]), ("live", batch[:half]), ("live", batch[half:])]
        else:
            plan.append(("live", batch))
        delivered.append(batch)
        if mode == "replay_earlier" and delivered:
            plan.append(("replay", draw(st.sampled_from(delivered))))
    # A late replay of some earlier batches, hours later, in any order.
    late = draw(st.lists(st.sampled_from(batches), max_size=3)) if batches else []
    plan += [("replay", b) for b in late]
    return plan


def run_property(os_client: OpenSearch, dlq_url: str, history: list[Any], data: st.DataObject,
                 template: Path | None) -> None:
    alias = f"prop-{uuid.uuid4().hex[:10]}"
    extra = {"SORT_KEY": "", **({"INDEX_TEMPLATE": str(template)} if template else {})}
    handler = make_handler(Settings.from_env(base_env(alias, dlq_url, **extra)))
    try:
        f = RecordFactory(sk=None, start_seq=data.draw(st.sampled_from(
            [100000000000000000000, 4421584500000000017450439091, 10**39])))
        t = 1_800_000_000
        model: dict[str, dict[str, Any]] = {}
        records = []
        for version, (kind, key, advance) in enumerate(history):
            t += advance
            if kind == "put":
                name = "INSERT" if key not in model else "MODIFY"
                image = {"v": version, "key": key}
                records.append(f.record(name, key, image=image, created=t))
                model[key] = image
            else:
                records.append(f.record("REMOVE", key, created=t))
                model.pop(key, None)
        for _kind, batch in data.draw(delivery_plan(len(records))):
            result = handler(event([records[i] for i in batch]), FakeContext())
            assert result == {"batchItemFailures": []}
        os_client.indices.refresh(index=alias)
        hits = os_client.search(index=alias, body={"size": 100})["hits"]["hits"]
        indexed = {h["_id"]: {k: v for k, v in h["_source"].items() if k != "_ddbsync"} for h in hits}
        assert indexed == {k: {"pk": k, **v} for k, v in model.items()}
    finally:
        os_client.indices.delete(index=f"{alias}-*", ignore_unavailable=True)


SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(history=history_st, data=st.data())
def test_index_converges_to_the_table(os_client: OpenSearch, dlq_url: str, history: list[Any],
                                       data: st.DataObject) -> None:
    run_property(os_client, dlq_url, history, data, None)


@pytest.fixture(scope="module")
def no_tombstone_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = json.loads((Path(__file__).parents[2] / "layers/ddbsync/ddbsync/templates/index.json").read_text())
    base["settings"]["index"]["gc_deletes"] = "0s"
    path = tmp_path_factory.mktemp("tpl") / "index.json"
    path.write_text(json.dumps(base))
    return path


@SETTINGS
@given(history=history_st, data=st.data())
def test_index_converges_without_opensearch_delete_tombstones(
    os_client: OpenSearch, dlq_url: str, no_tombstone_template: Path, history: list[Any], data: st.DataObject
) -> None:
    run_property(os_client, dlq_url, history, data, no_tombstone_template)
