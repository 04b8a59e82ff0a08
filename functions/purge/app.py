"""Tombstone purge Lambda, on an EventBridge schedule (all logic in the ddbsync layer).

Settings and TOMBSTONE_RETENTION_DAYS are read and checked here, at cold start; the window
is checked against the record DLQ's retention on every run (ddbsync.purge.window).
"""

from ddbsync.purge.handler import make_handler

handler = make_handler()
