"""NEO_STORAGE: the local media folder or an S3-compatible store, refused when malformed."""

from __future__ import annotations

import pytest

from neo_support.env import ConfigError
from neo_support.storage_config import LOCAL_BACKEND, S3_BACKEND, storage_from_env


def test_the_local_folder_is_the_default() -> None:
    assert storage_from_env({}) == {"BACKEND": LOCAL_BACKEND}
    assert storage_from_env({"NEO_STORAGE": "local"}) == {"BACKEND": LOCAL_BACKEND}


def test_an_s3_url_names_the_bucket_and_prefix_with_endpoint_and_credentials_from_the_environment(tmp_path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    storage = storage_from_env(
        {
            "NEO_STORAGE": "s3://neo-media/prod/files/",
            "NEO_S3_ENDPOINT_URL": "http://minio:9000",
            "NEO_S3_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "neo",
            "AWS_SECRET_ACCESS_KEY_FILE": str(secret),
        }
    )
    assert storage["BACKEND"] == S3_BACKEND
    options = storage["OPTIONS"]
    assert (options["bucket_name"], options["location"]) == ("neo-media", "prod/files")
    assert (options["endpoint_url"], options["region_name"]) == ("http://minio:9000", "eu-west-1")
    assert (options["access_key"], options["secret_key"]) == ("neo", "s3cr3t")
    assert options["addressing_style"] == "path" and options["file_overwrite"] is False


def test_without_an_endpoint_or_keys_boto3_finds_aws_and_its_own_credentials() -> None:
    options = storage_from_env({"NEO_STORAGE": "s3://neo-media"})["OPTIONS"]
    assert options["location"] == ""
    assert options["endpoint_url"] is options["access_key"] is options["secret_key"] is options["region_name"] is None


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"NEO_STORAGE": "/var/lib/neo/media"}, "expected 'local' or s3://bucket/prefix"),
        ({"NEO_STORAGE": "gs://bucket/x"}, "expected 'local' or s3://bucket/prefix"),
        ({"NEO_STORAGE": "s3://Bad_Bucket/x"}, "not a valid S3 bucket name"),
        ({"NEO_STORAGE": "s3:///prefix"}, "not a valid S3 bucket name"),
        ({"NEO_STORAGE": "s3://bucket?x=1"}, "expected 'local' or s3://bucket/prefix"),
        ({"NEO_STORAGE": "s3://bucket", "NEO_S3_ENDPOINT_URL": "minio:9000"}, "NEO_S3_ENDPOINT_URL"),
        ({"NEO_STORAGE": "s3://bucket", "AWS_SECRET_ACCESS_KEY_FILE": "/no/such/file"}, "cannot read"),
    ],
)
def test_a_malformed_setting_stops_start_up_with_the_variable_named(environ: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        storage_from_env(environ)
