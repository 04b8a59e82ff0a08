"""The Lambda layer leaves out dependencies that ddbsync never imports (layers/ddbsync/build-layer.sh).

opensearch-py 3 requires opensearch-protobufs (and so grpcio and protobuf) for its gRPC
transport; ddbsync speaks HTTP only, so the layer leaves all three out. It also drops the
parts of the installed wheels that nothing imports: amazon-ion's benchmark tool and
Powertools' event handler and utilities (all but jmespath_utils, which its Logger imports,
and typing), and opensearch-py's asyncio client. These tests run the code the Lambda
functions and the CLI load with those modules blocked, in a fresh interpreter, so an import
of them anywhere on those paths fails here first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BLOCKED = (
    "opensearch_protobufs",
    "grpc",
    "google.protobuf",
    "amazon.ionbenchmark",
    "aws_lambda_powertools.event_handler",
    "opensearchpy._async.client",
    "opensearchpy._async.plugins",
)
# Of aws_lambda_powertools.utilities, the layer keeps only these.
KEPT_UTILITIES = ("jmespath_utils", "typing")

PROGRAM = textwrap.dedent(
    """
    import sys

    BLOCKED = {blocked!r}
    KEPT_UTILITIES = {kept!r}

    def blocked(name):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            return True
        parts = name.split(".")
        return parts[:2] == ["aws_lambda_powertools", "utilities"] and len(parts) > 2 and (
            parts[2] not in KEPT_UTILITIES
        )

    class Blocked:
        def find_spec(self, name, path=None, target=None):
            if blocked(name):
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, Blocked())

    import ddbsync.archive.handler
    import ddbsync.backfill.steps
    import ddbsync.cli.commands
    import ddbsync.cli.repair
    import ddbsync.cli.replay
    import ddbsync.handler
    import ddbsync.indexer
    import ddbsync.purge.handler
    import ddbsync.rebuild
    import ddbsync.repair
    import ddbsync.replay
    import ddbsync.verify.scheduled
    from ddbsync.config import Settings
    from ddbsync.opensearch.client import build_client

    settings = Settings.from_env({{
        "OPENSEARCH_ENDPOINT": "https://search-demo-abc.eu-west-1.es.amazonaws.com",
        "OPENSEARCH_SERVICE": "es",
        "INDEX_ALIAS": "products",
        "PARTITION_KEY": "pk",
        "RECORD_DLQ_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/dlq",
        "AWS_REGION": "eu-west-1",
    }})
    client = build_client(settings)
    assert client.transport.get_connection() is not None
    loaded = sorted(m for m in sys.modules if blocked(m))
    assert not loaded, loaded
    print("ok")
    """
)


def test_handlers_and_cli_load_without_what_the_layer_leaves_out() -> None:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        # As in Lambda: Powertools' Tracer is on and patches the modules X-Ray knows.
        "AWS_LAMBDA_FUNCTION_NAME": "stream-indexer",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "ddbsync"), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(blocked=BLOCKED, kept=KEPT_UTILITIES)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr


def test_the_stream_indexer_does_not_load_the_ion_reader() -> None:
    # amazon.ion is only for ION export files (backfill, repair); the stream indexer's cold
    # start must not pay for it (ddbsync.dynamodb.export_ion is imported on first use).
    program = (
        "import sys\n"
        "import ddbsync.handler, ddbsync.dynamodb, ddbsync.opensearch\n"
        "ion = ('amazon.ion', 'ddbsync.dynamodb.export_ion')\n"
        "print(sorted(m for m in sys.modules if m.startswith(ion)))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "ddbsync"), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
