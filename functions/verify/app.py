"""Scheduled verify Lambda: table against index, read-only, publishing DriftDocuments.

All logic is in the ddbsync layer (ddbsync.verify.scheduled); settings are read and
checked here, at cold start.
"""

from ddbsync.verify.scheduled import make_handler

handler = make_handler()
