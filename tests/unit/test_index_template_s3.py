"""INDEX_TEMPLATE=s3://bucket/key: read at cold start (moto S3), or one clear ConfigError line."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from ddbsync.config import DEFAULT_INDEX_TEMPLATE, Settings
from ddbsync.errors import ConfigError
from ddbsync.index_template import S3_TEMPLATE_URI, fetch_s3_template
from ddbsync.opensearch.indices import load_template
from tests.support import load_template as load_cfn_template
from tests.unit.test_config import valid_env

BUCKET = "ddbsync-templates"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bucket(aws: None) -> str:
    boto3.client("s3", region_name="eu-west-1").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    return BUCKET


def put(key: str, body: bytes) -> str:
    boto3.client("s3", region_name="eu-west-1").put_object(Bucket=BUCKET, Key=key, Body=body)
    return f"s3://{BUCKET}/{key}"


def test_an_s3_template_is_read_into_a_local_file_that_the_index_code_loads(bucket: str) -> None:
    mine = json.loads(DEFAULT_INDEX_TEMPLATE.read_text())
    mine.setdefault("settings", {})["number_of_replicas"] = 2
    uri = put("templates/products.json", json.dumps(mine).encode())
    settings = Settings.from_env(valid_env(INDEX_TEMPLATE=uri))
    assert settings.index_template != DEFAULT_INDEX_TEMPLATE
    assert json.loads(settings.index_template.read_text()) == mine
    assert load_template(settings.index_template)["settings"] == mine["settings"]


def test_no_index_template_means_the_bundled_file_and_no_s3_call() -> None:
    # No mock_aws here: an S3 call would try the network (fake credentials) and fail.
    assert Settings.from_env(valid_env()).index_template == DEFAULT_INDEX_TEMPLATE


@pytest.mark.parametrize(
    ("key", "body", "says"),
    [
        ("missing.json", None, "NoSuchKey"),
        ("list.json", b"[1, 2]", "must hold a JSON object"),
        ("broken.json", b"{not json", "is not JSON"),
    ],
)
def test_an_unusable_s3_template_is_one_config_problem_naming_the_object(
    bucket: str, key: str, body: bytes | None, says: str
) -> None:
    if body is not None:
        put(key, body)
    uri = f"s3://{BUCKET}/{key}"
    with pytest.raises(ConfigError) as info:
        Settings.from_env(valid_env(INDEX_TEMPLATE=uri))
    [problem] = info.value.problems
    assert uri in problem and says in problem
    assert "\n" not in problem


@pytest.mark.parametrize("uri", ["s3://", "s3://bucket", "s3://Bad_Bucket/key", "s3://bucket/"])
def test_a_malformed_s3_address_is_refused_before_any_call(uri: str) -> None:
    with pytest.raises(ConfigError, match="s3://<bucket>/<key>"):
        fetch_s3_template(uri)


def test_the_template_parameter_pattern_is_the_codes_pattern() -> None:
    """template.yaml's IndexTemplate accepts what fetch_s3_template accepts (or empty)."""
    pattern = load_cfn_template(ROOT / "template.yaml")["Parameters"]["IndexTemplate"]["AllowedPattern"]
    assert pattern == f"^$|^{S3_TEMPLATE_URI.pattern.replace('(?P<bucket>', '(').replace('(?P<key>', '(')}$"
