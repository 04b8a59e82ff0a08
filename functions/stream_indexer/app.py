"""Stream indexer Lambda: DynamoDB stream records -> OpenSearch (all logic in the ddbsync layer).

Settings are read and validated here, at cold start: a bad configuration fails
the init with one message naming every problem (see ddbsync.config).
"""

from ddbsync.handler import make_handler

handler = make_handler()
