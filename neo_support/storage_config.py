"""Where uploaded files live: the local media folder, or any S3-compatible object store.

`NEO_STORAGE` is empty (or `local`) for MEDIA_ROOT, as before, or `s3://bucket/prefix`
for django-storages' S3 backend; the endpoint, region and credentials come from
`NEO_S3_ENDPOINT_URL`, `NEO_S3_REGION`, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`
(each secret also from `NAME_FILE`). Unset credentials fall back to boto3's own chain
(instance roles, IRSA, `~/.aws`). Pure Python, no Django import.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from neo_support.env import ConfigError, Environ, env_secret, env_str, env_url

LOCAL_BACKEND = "django.core.files.storage.FileSystemStorage"
S3_BACKEND = "storages.backends.s3.S3Storage"
# S3's own rule for bucket names: 3-63 lower-case letters, digits, dots and hyphens.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def storage_from_env(environ: Environ | None = None) -> dict[str, Any]:
    """The `STORAGES["default"]` entry `NEO_STORAGE` asks for; a malformed value stops start-up."""
    value = env_str("NEO_STORAGE", "local", environ=environ)
    if value == "local":
        return {"BACKEND": LOCAL_BACKEND}
    parts = urlsplit(value)
    if parts.scheme != "s3" or parts.query or parts.fragment:
        raise ConfigError("NEO_STORAGE", f"expected 'local' or s3://bucket/prefix, got {value!r}")
    if not _BUCKET.match(parts.netloc):
        raise ConfigError("NEO_STORAGE", f"{parts.netloc!r} is not a valid S3 bucket name")
    endpoint = env_url("NEO_S3_ENDPOINT_URL", None, schemes=("http", "https"), environ=environ)
    options: dict[str, Any] = {
        "bucket_name": parts.netloc,
        "location": parts.path.strip("/"),
        "endpoint_url": endpoint,
        "region_name": env_str("NEO_S3_REGION", "", environ=environ) or None,
        "access_key": env_secret("AWS_ACCESS_KEY_ID", environ=environ),
        "secret_key": env_secret("AWS_SECRET_ACCESS_KEY", environ=environ),
        # Two uploads of "guide.pdf" keep both files, as on the local folder.
        "file_overwrite": False,
        "default_acl": None,
        # Self-hosted stores (MinIO, Ceph, moto) are addressed by path, not by subdomain.
        "addressing_style": "path" if endpoint else None,
    }
    return {"BACKEND": S3_BACKEND, "OPTIONS": options}
