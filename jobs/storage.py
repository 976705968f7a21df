"""Where files live: a local path or S3, reached through one set of connection options.

Everything that touches S3 gets its filesystem here, so the credential chain, the endpoint,
requester-pays and the retry policy are decided once, and an S3 failure that is the user's
to fix (no credentials, a wrong key, access denied, no such bucket) becomes one clear line; so does a
local permission error, which is not S3's.
"""

from __future__ import annotations

import errno
import functools
import os
import re
from dataclasses import dataclass

import fsspec
from fsspec.core import url_to_fs

#: botocore's adaptive mode backs off on throttling (SlowDown, 503) and retries transient errors (5xx,
#: dropped connections); s3fs adds its own retries on top for throttling and truncated reads. The standard
#: AWS_MAX_ATTEMPTS / AWS_RETRY_MODE variables override it.
S3_RETRIES = {"max_attempts": 5, "mode": "adaptive"}
#: Objects fetched at once per worker: bounded, so a batch never opens hundreds of connections.
S3_CONCURRENT_GETS = 16


@dataclass(frozen=True)
class S3Options:
    """How to reach S3; the standard AWS credential chain applies to whatever is not set here."""

    profile: str | None = None
    endpoint_url: str | None = None
    requester_pays: bool = False


def is_s3(url: str) -> bool:
    return url.startswith(("s3://", "s3a://"))


#: The environment the AWS credential chain reads: a filesystem is made anew when it changes.
_AWS_ENV = ("AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_DEFAULT_REGION")


def s3_filesystem(opts: S3Options) -> fsspec.AbstractFileSystem:
    return _s3_filesystem(opts, tuple(os.environ.get(k) for k in _AWS_ENV))


@functools.cache
def _s3_filesystem(opts: S3Options, _env: tuple) -> fsspec.AbstractFileSystem:
    import s3fs

    retries = {"max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS") or S3_RETRIES["max_attempts"]),
               "mode": os.environ.get("AWS_RETRY_MODE") or S3_RETRIES["mode"]}
    kwargs: dict = {"requester_pays": opts.requester_pays, "use_listings_cache": False,
                    "config_kwargs": {"retries": retries, "connect_timeout": 10, "read_timeout": 60}}
    if opts.profile:
        kwargs["profile"] = opts.profile
    if opts.endpoint_url:
        kwargs["endpoint_url"] = opts.endpoint_url
    return s3fs.S3FileSystem(skip_instance_cache=True, **kwargs)


def filesystem(url: str, s3: S3Options) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem for a URL and the path inside it (for S3: bucket/key, no scheme)."""
    if is_s3(url):
        return s3_filesystem(s3), url.split("://", 1)[1]
    return url_to_fs(url)


def s3_url(path: str) -> str:
    return "s3://" + path.lstrip("/")


def explain(exc: BaseException, url: str = "S3") -> str | None:
    """A one-line reason for a failure the user can fix (S3 credentials, permissions, endpoint, bucket; a local
    file or folder this user may not use); None when it is not one of those."""
    name = type(exc).__name__
    text = str(exc).split("\n")[0][:300]
    cause = exc.__cause__ or exc.__context__
    code = getattr(cause, "response", {}).get("Error", {}).get("Code") if cause is not None else None
    if code and code not in text:
        text = f"{code}: {text}"
    fix = "set AWS_PROFILE or --profile, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with an instance role"
    if name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
        return f"no AWS credentials to read {url}: {fix}"
    if name == "ProfileNotFound":
        return f"{text}: check --profile / AWS_PROFILE against ~/.aws/config"
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
        return f"cannot reach the S3 endpoint for {url}: {text}; check --endpoint-url / AWS_ENDPOINT_URL"
    if isinstance(exc, PermissionError) and not code and exc.errno in (errno.EACCES, errno.EPERM):
        return denied(exc, url)
    if isinstance(exc, PermissionError) or any(code in text for code in (
            "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken", "InvalidToken")):
        return (f"S3 refused access to {url} ({text}): check the credentials ({fix}) and the IAM permissions "
                "listed in the README, section Running against S3")
    if isinstance(exc, FileNotFoundError) and "bucket" in text.lower():
        return f"no such bucket for {url}: {text}"
    return None


def denied(exc: OSError, url: str) -> str:
    """A local permission error, said as such: the operating system refused (an errno, no S3 error code), so
    credentials and IAM have nothing to do with it. Names the path the system named (both of a rename)."""
    quoted = re.search(r"'(/[^']+)'", str(exc))  # Arrow's errors name the file in their text only
    path = exc.filename if exc.filename is not None else quoted[1] if quoted else url
    if exc.filename2 is not None:
        path = f"{path} -> {exc.filename2}"
    return f"permission denied: {path}: check its permissions and owner (chmod/chown) for the user running trailhouse"
