"""Archiver Lambda: DynamoDB stream records -> Firehose archive lines (all logic in the ddbsync layer).

Settings are read and validated here, at cold start: a bad configuration fails the init
with one message naming every problem (see ddbsync.archive.settings).
"""

from ddbsync.archive.handler import make_handler

handler = make_handler()
