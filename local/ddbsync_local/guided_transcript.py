"""Record docs/deploy-guided-transcript.md: ``sam deploy --guided`` and ``scripts/deploy-guided``.

They run in a pseudo-terminal (:mod:`ddbsync_local.pty_session`) with the same answers
where they ask the same thing: the endpoint is first left blank, the rest of the required
parameters get example values, everything else keeps its default.

* ``sam deploy --guided`` runs in a scratch copy of the template (no samconfig.toml, so
  nothing is saved), with fake credentials and every AWS endpoint pointed at a closed local
  port: nothing can reach AWS. It prompts every parameter before its first AWS call
  ("Looking for resources needed for deployment", the managed bucket); the recording stops
  at that line.
* ``scripts/deploy-guided`` runs on the repository's template and writes its answers to a
  scratch file.

``python -m ddbsync_local.guided_transcript`` rewrites the page; the test
tests/unit/test_guided_deploy.py records both again and compares.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from ddbsync_local.cfn import TEMPLATE
from ddbsync_local.pty_session import converse

__all__ = ["DOC", "ddbsync_session", "page", "sam_session", "sessions"]

ROOT = TEMPLATE.parent
DOC = ROOT / "docs" / "deploy-guided-transcript.md"
VENV_BIN = Path(sys.executable).parent
EXAMPLES = {
    "OpenSearchResourceArn": "arn:aws:es:eu-west-1:123456789012:domain/example",
    "IndexAlias": "items",
    "PartitionKey": "pk",
}
ENDPOINT = "https://search-example.eu-west-1.es.amazonaws.com"
STACK_END = "Looking for resources needed for deployment"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="eu-west-1",
        AWS_DEFAULT_REGION="eu-west-1", AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull, SAM_CLI_TELEMETRY="0", TERM="dumb", COLUMNS="120",
        PATH=os.pathsep.join([str(VENV_BIN), env.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join([str(ROOT / "layers" / "ddbsync"), str(ROOT / "local")]),
    )  # fmt: skip
    return env


class _Answers:
    """The same answers for both: a blank endpoint first, then a good one once refused."""

    def __init__(self, endpoint_tries: list[str]) -> None:
        self.endpoint_tries = endpoint_tries

    def __call__(self, prompt: str) -> str | None:
        if "OpenSearchEndpoint" in prompt:
            return self.endpoint_tries.pop(0) if self.endpoint_tries else ENDPOINT
        for name, value in EXAMPLES.items():
            if f"{name} [" in prompt:
                return value
        if "Save arguments to configuration file" in prompt:
            return "n"
        return ""  # keep the default


def sam_session(overrides: Path | None = None) -> str:
    """``sam deploy --guided`` up to its first AWS call (``overrides``: its file:// answers)."""
    sam = shutil.which("sam", path=str(VENV_BIN)) or "sam"
    argv = [sam, "deploy", "--guided", "--region", "eu-west-1"]
    if overrides is not None:
        argv += ["--parameter-overrides", f"file://{overrides}"]
    with tempfile.TemporaryDirectory() as scratch:
        shutil.copy(TEMPLATE, Path(scratch) / "template.yaml")
        answers = _Answers([""]) if overrides is None else _keep
        text = converse(argv, answers, env=_env(), cwd=scratch, stop_at=STACK_END)
    return text.replace(str(overrides), "OUT/deploy-parameters.yaml")


def _keep(prompt: str) -> str | None:
    """Enter at every prompt (keep SAM's default), no answers saved."""
    return "n" if "Save arguments to configuration file" in prompt else ""


def ddbsync_session(out: Path) -> str:
    """``scripts/deploy-guided`` from no samconfig answers (blank and bad endpoints refused)."""
    argv = [str(ROOT / "scripts" / "deploy-guided"), "--config-env", "none", "--out", str(out)]
    answers = _Answers(["", "search-example.eu-west-1.es.amazonaws.com"])
    text = converse(argv, answers, env=_env(), cwd=str(out.parent))
    return text.replace(str(out), "OUT/deploy-parameters.yaml")


def sessions() -> tuple[str, str, str]:
    """The three recordings: sam alone, scripts/deploy-guided, sam with its answers."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "deploy-parameters.yaml"
        ours = ddbsync_session(out)
        return sam_session(), ours, sam_session(out)


def page() -> str:
    alone, ours, then = sessions()
    return f"""# Guided deploy: what `sam deploy --guided` asks, and what `scripts/deploy-guided` asks

Recorded by `python -m ddbsync_local.guided_transcript` (tests/unit/test_guided_deploy.py
records both again and compares). Both ran in a pseudo-terminal with the same answers: the
OpenSearch endpoint first left blank, example values for the other required parameters,
Enter (the default) for everything else. Nothing reached AWS: fake credentials, every AWS
endpoint pointed at a closed local port.

What it shows:

* **`sam deploy --guided`** (SAM CLI of uv.lock) prompts `Parameter NAME [default]:` for
  each parameter, **without its Description**, and **takes the blank endpoint**: it does not
  check AllowedPattern. CloudFormation would refuse the value (the pattern
  `^https://[^/\\s<>]+$`), but only at CreateChangeSet, after SAM created its managed
  bucket and uploaded the code. The recording stops at SAM's first AWS call ("{STACK_END}").
* **`scripts/deploy-guided`** asks the same parameters in the console's groups, prints each
  Description and what is allowed, **refuses the blank endpoint and one without https://**,
  and asks again until the answer is allowed; its answers then go to
  `sam deploy --guided --parameter-overrides file://...`, which offers them as its defaults
  (the third recording).

What it does not show: SAM's later prompts and the deploy itself (they need AWS), and the
CloudFormation console (it shows Descriptions and checks patterns in the browser).

## `sam deploy --guided`

```text
{alone.strip()}
```

## `scripts/deploy-guided`

```text
{ours.strip()}
```

## `sam deploy --guided --parameter-overrides file://` those answers

SAM offers the checked answers as its defaults (Enter at every prompt here):

```text
{then.strip()}
```
"""


def main() -> int:
    DOC.write_text(page(), encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
