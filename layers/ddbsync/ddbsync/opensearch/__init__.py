"""Everything OpenSearch: the client, bulk writes, conflicts, indices and aliases, floors.

* :mod:`~ddbsync.opensearch.client`: the opensearch-py client (SigV4 for AWS, TLS, timeouts).
* :mod:`~ddbsync.opensearch.transport`: the two calls a writer makes (``_bulk``, ``_mget``).
* :mod:`~ddbsync.opensearch.bulk`: writes, NDJSON chunks, retries, per-item outcomes.
* :mod:`~ddbsync.opensearch.conflicts`: same-second version conflicts, settled exactly.
* :mod:`~ddbsync.opensearch.floors`: a backfill index's snapshot floor, and a writer's view of
  the targets.
* :mod:`~ddbsync.opensearch.sending`: the one call every writer uses (bulk + conflicts + floors).
* :mod:`~ddbsync.opensearch.indices`: creating the index, the alias swap, the ``-next`` alias.
"""

from ddbsync.opensearch.bulk import Outcome, SendReport, Write, WriteResult, make_writes
from ddbsync.opensearch.client import build_client
from ddbsync.opensearch.floors import Target, View
from ddbsync.opensearch.indices import ensure_index, next_alias_name, read_view
from ddbsync.opensearch.sending import send
from ddbsync.opensearch.transport import BulkItemResult, OpenSearchTransport, StoredMeta, Transport

__all__ = [
    "BulkItemResult",
    "OpenSearchTransport",
    "Outcome",
    "SendReport",
    "StoredMeta",
    "Target",
    "Transport",
    "View",
    "Write",
    "WriteResult",
    "build_client",
    "ensure_index",
    "make_writes",
    "next_alias_name",
    "read_view",
    "send",
]
