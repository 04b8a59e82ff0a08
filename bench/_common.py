"""Shared bench helpers: realistic stream records, alternating rounds, machine facts.

Run the benches from the repository root with the package importable, either
installed (``pip install -e .``) or through ``PYTHONPATH``::

    PYTHONPATH=layers/ddbsync:. python bench/decode_throughput.py --quick

``tests.support`` (RecordFactory, FakeContext) is imported from the repository
root, hence the ``.`` in ``PYTHONPATH``.
"""

from __future__ import annotations

import base64
import gc
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

try:
    from tests.support import FakeContext, RecordFactory
except ModuleNotFoundError as e:  # pragma: no cover - a usage error, say how to run
    raise SystemExit(
        f"cannot import tests.support ({e}); run from the repository root with "
        "PYTHONPATH=layers/ddbsync:. python bench/<name>.py"
    ) from e

__all__ = [
    "FakeContext",
    "RecordFactory",
    "alternate",
    "fake_aws_env",
    "machine",
    "make_records",
    "median",
]

_WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "widget",
    "gadget",
    "sprocket",
    "flange",
    "gasket",
    "bracket",
    "hinge",
    "lever",
    "spring",
    "washer",
    "bolt",
    "nut",
    "rivet",
    "crème",
    "brûlée",
    "façade",
    "naïve",
    "résumé",
]


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def _image(rng: random.Random, i: int) -> dict[str, Any]:
    """One item in DynamoDB JSON (~1 KB as a stream record): the mix a product table holds."""
    image: dict[str, Any] = {
        "name": {"S": _text(rng, 5)},
        "description": {"S": _text(rng, 12)},
        "price": {"N": f"{rng.randint(1, 99999) / 100:.2f}".rstrip("0").rstrip(".")},
        "qty": {"N": str(rng.randint(0, 5000))},
        "rating": {"N": str(rng.choice(["4.5", "3.25", "5", "1.1", "2.75"]))},
        "updated_at": {"N": str(1_760_000_000 + i)},
        "active": {"BOOL": rng.random() < 0.8},
        "tags": {"SS": sorted({rng.choice(_WORDS) for _ in range(rng.randint(2, 6))})},
        "attrs": {
            "M": {
                "color": {"S": rng.choice(["red", "green", "blue", "black"])},
                "size": {"N": str(rng.randint(1, 60))},
                "origin": {"S": rng.choice(["FR", "DE", "US", "JP", "BR"])},
                "dims": {
                    "M": {
                        "w": {"N": f"{rng.uniform(1, 100):.1f}"},
                        "h": {"N": f"{rng.uniform(1, 100):.1f}"},
                        "d": {"N": str(rng.randint(1, 50))},
                    }
                },
            }
        },
        "history": {
            "L": [
                {
                    "M": {
                        "ts": {"N": str(1_750_000_000 + rng.randint(0, 10_000_000))},
                        "status": {"S": rng.choice(["created", "priced", "shipped", "returned"])},
                        "by": {"S": f"user-{rng.randint(1, 999)}"},
                    }
                }
                for _ in range(rng.randint(2, 4))
            ]
        },
        "scores": {"L": [{"N": str(rng.randint(0, 100))} for _ in range(5)]},
    }
    if i % 5 == 0:
        image["sizes"] = {"NS": sorted({str(rng.randint(30, 48)) for _ in range(4)})}
    if i % 7 == 0:
        image["discontinued"] = {"NULL": True}
    if i % 10 == 0:
        image["thumb"] = {"B": base64.b64encode(rng.randbytes(rng.randint(32, 64))).decode("ascii")}
    if i % 50 == 0:
        # A decimal a float cannot carry exactly (ddbsync keeps its digits).
        image["exact"] = {"N": "3.14159265358979323846264338327950288"}
    return image


def make_records(count: int, *, seed: int = 7, created: int | None = None) -> list[dict[str, Any]]:
    """``count`` INSERT stream records with distinct keys, built with tests.support.RecordFactory."""
    rng = random.Random(seed)
    factory = RecordFactory()
    when = created if created is not None else int(time.time())
    return [
        factory.record("INSERT", f"tenant-{i % 50}", f"item-{i:07d}", raw_image=_image(rng, i), created=when)
        for i in range(count)
    ]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def alternate(
    rounds: int, baseline: Callable[[], float], candidate: Callable[[], float]
) -> tuple[list[float], list[float]]:
    """Run both ``rounds`` times, swapping which goes first each round (cancels drift).

    Each callable returns its own measurement (seconds or a rate).
    """
    base: list[float] = []
    cand: list[float] = []
    for r in range(rounds):
        order = ((base, baseline), (cand, candidate)) if r % 2 == 0 else ((cand, candidate), (base, baseline))
        for sink, fn in order:
            gc.collect()
            sink.append(fn())
    return base, cand


def fake_aws_env() -> dict[str, str]:
    """Credentials and region that can never reach real AWS (as tests/conftest.py)."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "ddbsync",
        "POWERTOOLS_DEV": "false",
    }


def machine() -> str:
    """nproc, CPU model and Python version, one line."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"nproc={nproc} cpu={model!r} python={platform.python_version()} ({sys.executable})"
