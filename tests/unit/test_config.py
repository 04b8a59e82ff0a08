"""config: one frozen Settings from the environment, or one ConfigError naming every problem."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ddbsync.config import DEFAULT_INDEX_TEMPLATE, Settings
from ddbsync.errors import ConfigError

REQUIRED = ("OPENSEARCH_ENDPOINT", "OPENSEARCH_SERVICE", "INDEX_ALIAS", "PARTITION_KEY", "RECORD_DLQ_URL")


def valid_env(**extra: str) -> dict[str, str]:
    env = {
        "OPENSEARCH_ENDPOINT": "https://search-products.eu-west-1.es.amazonaws.com/",
        "OPENSEARCH_SERVICE": "es",
        "AWS_REGION": "eu-west-1",
        "INDEX_ALIAS": "products",
        "PARTITION_KEY": "pk",
        "SORT_KEY": "sk",
        "RECORD_DLQ_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/record-dlq",
    }
    env.update(extra)
    return env


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    return info.value.problems


def test_a_full_valid_environment_builds_settings(tmp_path: Path) -> None:
    template = tmp_path / "index.json"
    template.write_text("{}")
    settings = Settings.from_env(
        valid_env(
            OPENSEARCH_SERVICE="AOSS",
            TTL_REMOVES="keep",
            BULK_MAX_BYTES="1048576",
            BULK_MAX_ACTIONS="500",
            MAX_DOCUMENT_BYTES="2048",
            TIMEOUT_MARGIN_MS="5000",
            RETRY_BASE_MS="50",
            RETRY_MAX_MS="5000",
            INDEX_TEMPLATE=str(template),
            MANAGE_INDEX="false",
        )
    )
    assert settings == Settings(
        endpoint="https://search-products.eu-west-1.es.amazonaws.com",
        service="aoss",
        region="eu-west-1",
        index_alias="products",
        partition_key="pk",
        sort_key="sk",
        record_dlq_url="https://sqs.eu-west-1.amazonaws.com/123456789012/record-dlq",
        ttl_removes="keep",
        bulk_max_bytes=1048576,
        bulk_max_actions=500,
        max_document_bytes=2048,
        timeout_margin_ms=5000,
        retry_base_ms=50,
        retry_max_ms=5000,
        index_template=template,
        manage_index=False,
    )


def test_optional_values_fall_back_to_their_documented_defaults() -> None:
    env = valid_env()
    del env["SORT_KEY"]
    settings = Settings.from_env(env)
    assert settings.sort_key is None
    assert settings.ttl_removes == "delete"
    assert settings.bulk_max_actions == 1000
    assert settings.bulk_max_bytes == 5 * 1024 * 1024
    assert settings.index_template == DEFAULT_INDEX_TEMPLATE
    assert settings.manage_index is True


def test_settings_are_frozen() -> None:
    settings = Settings.from_env(valid_env())
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.index_alias = "other"  # type: ignore[misc]


def test_settings_read_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in valid_env(INDEX_ALIAS="from-os-environ").items():
        monkeypatch.setenv(name, value)
    assert Settings.from_env().index_alias == "from-os-environ"


def test_an_empty_environment_names_every_missing_variable_at_once() -> None:
    found = problems({})
    assert len(found) == len(REQUIRED)
    for name in REQUIRED:
        assert sum(p.startswith(name) for p in found) == 1, (name, found)


def test_blank_values_count_as_missing() -> None:
    found = problems(valid_env(PARTITION_KEY="  ", RECORD_DLQ_URL=""))
    assert [p.split()[0] for p in found] == ["PARTITION_KEY", "RECORD_DLQ_URL"]


def test_the_error_message_lists_every_problem() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({})
    for name in REQUIRED:
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BULK_MAX_ACTIONS", "ten"),
        ("BULK_MAX_ACTIONS", "0"),
        ("BULK_MAX_ACTIONS", "10001"),
        ("BULK_MAX_BYTES", "1.5"),
        ("BULK_MAX_BYTES", "1024"),
        ("MAX_DOCUMENT_BYTES", "-1"),
        ("TIMEOUT_MARGIN_MS", "soon"),
        ("RETRY_BASE_MS", "0"),
        ("RETRY_MAX_MS", "600001"),
    ],
)
def test_a_bad_whole_number_is_reported(name: str, value: str) -> None:
    (problem,) = problems(valid_env(**{name: value}))
    assert problem.startswith(name)
    assert value in problem


def test_a_retry_base_above_the_retry_cap_is_reported() -> None:
    (problem,) = problems(valid_env(RETRY_BASE_MS="2000", RETRY_MAX_MS="1000"))
    assert "RETRY_BASE_MS" in problem and "RETRY_MAX_MS" in problem


@pytest.mark.parametrize(
    ("name", "value"),
    [("OPENSEARCH_SERVICE", "elasticsearch"), ("TTL_REMOVES", "maybe"), ("MANAGE_INDEX", "yes")],
)
def test_a_value_outside_its_choices_is_reported(name: str, value: str) -> None:
    (problem,) = problems(valid_env(**{name: value}))
    assert problem.startswith(name)
    assert value in problem


@pytest.mark.parametrize("endpoint", ["search-products.es.amazonaws.com", "ftp://host", "https://"])
def test_an_endpoint_that_is_not_an_http_url_is_reported(endpoint: str) -> None:
    (problem,) = problems(valid_env(OPENSEARCH_ENDPOINT=endpoint))
    assert problem.startswith("OPENSEARCH_ENDPOINT")


@pytest.mark.parametrize("service", ["es", "aoss"])
def test_a_plain_http_endpoint_is_refused_when_requests_are_signed(service: str) -> None:
    (problem,) = problems(valid_env(OPENSEARCH_ENDPOINT="http://localhost:9200", OPENSEARCH_SERVICE=service))
    assert "https" in problem


def test_a_plain_http_endpoint_is_fine_without_signing() -> None:
    env = valid_env(OPENSEARCH_ENDPOINT="http://localhost:9200", OPENSEARCH_SERVICE="none")
    settings = Settings.from_env(env)
    assert settings.endpoint == "http://localhost:9200"


def test_an_upper_case_plain_http_endpoint_is_refused_when_requests_are_signed() -> None:
    (problem,) = problems(valid_env(OPENSEARCH_ENDPOINT="HTTP://localhost:9200", OPENSEARCH_SERVICE="es"))
    assert "https" in problem


@pytest.mark.parametrize("service", ["es", "aoss"])
def test_a_missing_region_is_reported_when_requests_are_signed(service: str) -> None:
    env = valid_env(OPENSEARCH_SERVICE=service)
    del env["AWS_REGION"]
    (problem,) = problems(env)
    assert problem.startswith("AWS_REGION")


def test_no_region_is_needed_without_signing() -> None:
    env = valid_env(OPENSEARCH_SERVICE="none")
    del env["AWS_REGION"]
    assert Settings.from_env(env).region is None


BAD_ALIASES = ["Products", "_products", "-products", "+products", "pro ducts"]
BAD_ALIASES += [f"a{c}b" for c in '*/,:|#?"<>\\']


@pytest.mark.parametrize("alias", BAD_ALIASES)
def test_an_invalid_index_alias_is_reported(alias: str) -> None:
    (problem,) = problems(valid_env(INDEX_ALIAS=alias))
    assert problem.startswith("INDEX_ALIAS")


def test_a_missing_template_file_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    (problem,) = problems(valid_env(INDEX_TEMPLATE=str(missing)))
    assert problem.startswith("INDEX_TEMPLATE")
    assert str(missing) in problem


def test_a_directory_is_not_accepted_as_the_template(tmp_path: Path) -> None:
    (problem,) = problems(valid_env(INDEX_TEMPLATE=str(tmp_path)))
    assert problem.startswith("INDEX_TEMPLATE")


def test_several_problems_of_different_kinds_are_reported_together(tmp_path: Path) -> None:
    env = valid_env(
        OPENSEARCH_ENDPOINT="http://host",
        INDEX_ALIAS="Bad",
        BULK_MAX_ACTIONS="x",
        TTL_REMOVES="sometimes",
        INDEX_TEMPLATE=str(tmp_path / "missing.json"),
    )
    del env["AWS_REGION"]
    del env["PARTITION_KEY"]
    found = problems(env)
    starts = sorted(p.split()[0] for p in found)
    expected = ["AWS_REGION", "OPENSEARCH_ENDPOINT", "INDEX_ALIAS", "PARTITION_KEY", "TTL_REMOVES"]
    assert starts == sorted([*expected, "BULK_MAX_ACTIONS", "INDEX_TEMPLATE"])


def test_log_lines_are_json_even_for_values_orjson_refuses() -> None:
    import json as stdlib_json

    from ddbsync.observability import _log_json

    assert stdlib_json.loads(_log_json({"message": "x", "n": 1, "obj": object()}))["n"] == 1
    refused = {"big": 2**70, 3: "non-string key"}
    assert stdlib_json.loads(_log_json(refused)) == {"big": 2**70, "3": "non-string key"}


def test_the_dead_letter_bucket_and_its_key_are_optional_and_read_when_set() -> None:
    assert Settings.from_env(valid_env()).dead_letter_bucket is None
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    settings = Settings.from_env(
        valid_env(DEAD_LETTER_BUCKET=" my-dead.letters-1 ", DEAD_LETTER_KMS_KEY_ID=key)
    )
    assert settings.dead_letter_bucket == "my-dead.letters-1"
    assert settings.dead_letter_kms_key_id == key


@pytest.mark.parametrize(
    "bucket", ["s3://letters", "letters/dead", "Letters", "ab", "x" * 64, "-letters", "let..ters", "10.0.0.1"]
)
def test_a_dead_letter_bucket_that_is_not_a_bucket_name_is_reported(bucket: str) -> None:
    (problem,) = problems(valid_env(DEAD_LETTER_BUCKET=bucket))
    assert problem.startswith("DEAD_LETTER_BUCKET must be an S3 bucket name")


def test_a_bad_dead_letter_kms_key_or_one_without_a_bucket_is_reported() -> None:
    assert problems(valid_env(DEAD_LETTER_BUCKET="letters", DEAD_LETTER_KMS_KEY_ID="alias/mine")) == [
        "DEAD_LETTER_KMS_KEY_ID must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), "
        "got 'alias/mine'"
    ]
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert problems(valid_env(DEAD_LETTER_KMS_KEY_ID=key)) == [
        "DEAD_LETTER_KMS_KEY_ID is set but DEAD_LETTER_BUCKET is not"
    ]
