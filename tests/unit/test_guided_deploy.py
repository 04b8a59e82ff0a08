"""scripts/deploy-guided: the deploy questions with descriptions, refusing what the template
refuses; and docs/deploy-guided-transcript.md, recorded again here and compared.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from ddbsync_local.guided_deploy import answers_from_samconfig, ask_all, ask_one, groups, refusal
from ddbsync_local.guided_transcript import DOC, page
from tests.support import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
PARAMS: dict[str, dict[str, Any]] = TEMPLATE["Parameters"]
SAM = shutil.which(
    "sam", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
)


class Keyboard:
    """Types ``answers`` one per prompt; keeps what was shown."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.screen: list[str] = []

    def ask(self, prompt: str) -> str:
        self.screen.append(prompt)
        return self.answers.pop(0)

    def say(self, line: str) -> None:
        self.screen.append(line)


def test_a_blank_or_bad_endpoint_is_refused_and_asked_again_with_its_description() -> None:
    keys = Keyboard("", "search-x.eu-west-1.es.amazonaws.com", "https://search-x.eu-west-1.es.amazonaws.com")
    answer = ask_one("OpenSearchEndpoint", PARAMS["OpenSearchEndpoint"], "", keys.ask, keys.say)
    assert answer == "https://search-x.eu-west-1.es.amazonaws.com"
    text = "\n".join(keys.screen)
    assert "HTTPS endpoint of the domain or collection" in text  # the Description
    assert "refused: a blank answer: must be an https URL with no path; required" in text
    assert "refused: 'search-x.eu-west-1.es.amazonaws.com'" in text
    assert keys.answers == []


def test_enter_keeps_an_allowed_start_and_never_a_placeholder() -> None:
    keys = Keyboard("", "")
    assert ask_one("BatchSize", PARAMS["BatchSize"], "100", keys.ask, keys.say) == "100"
    keys = Keyboard("", "orders")
    assert ask_one("IndexAlias", PARAMS["IndexAlias"], "<index-alias>", keys.ask, keys.say) == "orders"
    assert "refused: '<index-alias>'" in "\n".join(keys.screen)


def test_a_dash_makes_an_optional_value_empty() -> None:
    keys = Keyboard("-")
    assert ask_one("TtlAttributeName", PARAMS["TtlAttributeName"], "ttl", keys.ask, keys.say) == ""


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("OpenSearchService", "opensearch", "must be one of es, aoss"),
        ("BatchSize", "0", "must be between 1 and 10000"),
        ("BatchSize", "many", "must be a number"),
        ("PartitionKey", "", "must be an attribute name"),
        ("BatchSize", "100", None),
    ],
)
def test_refusal_says_why(name: str, value: str, why: str | None) -> None:
    found = refusal(PARAMS[name], value)
    assert found == why if why is None else found is not None and why in found


def test_every_parameter_is_asked_once_group_by_group() -> None:
    asked = [name for _, names in groups(TEMPLATE) for name in names]
    assert sorted(asked) == sorted(PARAMS) and len(asked) == len(set(asked))
    defaults = {name: str(p.get("Default", "x")) for name, p in PARAMS.items()}
    arn = "arn:aws:es:eu-west-1:123456789012:domain/d"
    given = {"OpenSearchEndpoint": "https://e.example.com", "OpenSearchResourceArn": arn}
    given |= {"IndexAlias": "i", "PartitionKey": "pk"}
    keys = Keyboard(*[""] * len(PARAMS))
    answers = ask_all(TEMPLATE, {**defaults, **given}, keys.ask, keys.say)
    assert answers == {**{n: str(p["Default"]) for n, p in PARAMS.items() if "Default" in p}, **given}


def test_samconfig_default_answers_are_its_placeholders() -> None:
    current = answers_from_samconfig(ROOT / "samconfig.toml", "default")
    assert current["OpenSearchEndpoint"].startswith("<")
    assert answers_from_samconfig(ROOT / "samconfig.toml", "no-such-env") == {}


@pytest.mark.skipif(SAM is None or os.name != "posix", reason="needs the SAM CLI (make setup) and a pty")
def test_the_committed_transcript_is_what_both_commands_show_now() -> None:
    """Records sam deploy --guided and scripts/deploy-guided again (about 25 s)."""
    fresh = page()
    sam_alone, ours, sam_then = fresh.split("\n## ")[1:4]
    # SAM: no Description, and the blank endpoint goes through to the next parameter.
    assert "HTTPS endpoint of the domain" not in sam_alone
    assert "Parameter OpenSearchEndpoint []: \n\tParameter OpenSearchService [es]: " in sam_alone
    assert sam_alone.rstrip("`\n").endswith("Looking for resources needed for deployment:")
    # Ours: the Description, the blank and the bad endpoint refused, the answers written.
    assert "HTTPS endpoint of the domain" in ours
    assert "refused: a blank answer" in ours and "refused: 'search-example" in ours
    assert "answers written to OUT/deploy-parameters.yaml" in ours
    # SAM then offers those answers.
    assert "Parameter OpenSearchEndpoint [https://search-example.eu-west-1.es.amazonaws.com]: " in sam_then
    assert fresh == DOC.read_text(encoding="utf-8"), "run: python -m ddbsync_local.guided_transcript"
