"""``python -m ddbsync.cli``: the same as the ``ddbsync`` command."""

import sys

from ddbsync.cli.commands import main

sys.exit(main())
