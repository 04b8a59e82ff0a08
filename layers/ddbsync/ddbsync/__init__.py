"""ddbsync: keep Amazon OpenSearch in step with DynamoDB tables.

The package holds all the logic; the Lambda handlers in ``functions/`` and the
``ddbsync`` command line are thin shells over it. Importing the package itself
imports nothing else, so each handler pays only for what it uses at cold start.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
