"""S3: uploading the data folder, looking under prefixes, and reading metrics.json out of a model.tar.gz."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from .. import contract
from ..environment import TESTING_CHANNEL, TRAINING_CHANNEL
from ..metric_lines import PREDICTIONS_FILE
from .build.common import S3Location
from .clients import AwsClients
from .errors import is_not_found
from .validation import InvalidRequestError

METRICS_FILE = "metrics.json"  # what training writes at the root of the model directory
METRICS_FILE_LIMIT = 1 << 20  # a metrics.json is a few KB; anything bigger is not one
# A few characters per test example: 16 MiB holds predictions of over a million examples.
JSON_FILE_LIMITS = {METRICS_FILE: METRICS_FILE_LIMIT, PREDICTIONS_FILE: 16 << 20}


@dataclass(frozen=True)
class Uploaded:
    """One file copied to S3."""

    path: Path
    uri: str
    size: int


def local_files(directory: Path) -> list[tuple[Path, str]]:
    """Every file under ``directory`` (hidden ones skipped) with its key relative to it, sorted."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InvalidRequestError(
            f"{directory} is not a directory.",
            "Pass the folder that holds training/ (and testing/), e.g. local_test/data.",
        )
    files = sorted(
        (path, path.relative_to(directory).as_posix())
        for path in directory.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(directory).parts)
    )
    if not files:
        raise InvalidRequestError(
            f"{directory} holds no files to upload.", "Put training/train.csv (and testing/test.csv) in it."
        )
    return files


def upload_tree(clients: AwsClients, directory: Path, destination: S3Location) -> Iterator[Uploaded]:
    """Upload the folder tree to ``destination``, keeping relative paths; yield each file as done."""
    files = local_files(directory)
    prefix = destination.as_prefix()
    clients.s3.head_bucket(Bucket=prefix.bucket)  # a missing bucket fails here, once, clearly
    for path, relative in files:
        target = prefix.child(relative)
        clients.s3.upload_file(str(path), target.bucket, target.key)
        yield Uploaded(path, target.uri, path.stat().st_size)


def has_objects(clients: AwsClients, location: S3Location) -> bool:
    """Whether at least one object lies under the prefix ``location``."""
    listing = clients.s3.list_objects_v2(Bucket=location.bucket, Prefix=location.key, MaxKeys=1)
    return listing.get("KeyCount", 0) > 0


def list_keys(clients: AwsClients, location: S3Location) -> list[str]:
    """Every key under the prefix ``location``."""
    keys: list[str] = []
    for page in clients.s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.key):
        keys.extend(item["Key"] for item in page.get("Contents", ()))
    return keys


def data_channels_present(clients: AwsClients, data: S3Location) -> set[str]:
    """Which of ``training/`` and ``testing/`` under ``data`` hold objects."""
    return {name for name in (TRAINING_CHANNEL, TESTING_CHANNEL) if has_objects(clients, data.child(name, ""))}


def model_json_files(clients: AwsClients, model_data: str, names: tuple[str, ...]) -> dict[str, object]:
    """The JSON files ``names`` at the root of a model.tar.gz in S3, ``{name: value}``, each absent
    when the archive (or the object) has none or it is not JSON.

    The archive is read as a stream and abandoned as soon as every file is found, so a large
    model is read only as far as it must be.
    """
    location = S3Location.parse(model_data, "model artifact")
    try:
        body = clients.s3.get_object(Bucket=location.bucket, Key=location.key)["Body"]
    except ClientError as exc:
        if is_not_found(exc):
            return {}
        raise
    found: dict[str, object] = {}
    try:
        with tarfile.open(fileobj=body, mode="r|gz") as archive:
            for member in archive:
                name = member.name.lstrip("./")
                if member.isfile() and name in names and name not in found and member.size <= JSON_FILE_LIMITS[name]:
                    handle = archive.extractfile(member)
                    try:
                        found[name] = json.loads(handle.read().decode("utf-8")) if handle else None
                    except (UnicodeDecodeError, ValueError):
                        continue  # not JSON: as if absent
                    if len(found) == len(names):
                        break
    except (tarfile.TarError, OSError, EOFError):
        pass  # not a readable archive: what was found before the damage still counts
    finally:
        body.close()
    return found


def model_metrics_json(clients: AwsClients, model_data: str) -> dict | None:
    """The metrics.json at the root of a model.tar.gz in S3, or None if the archive has none."""
    values = model_json_files(clients, model_data, (METRICS_FILE,)).get(METRICS_FILE)
    return values if isinstance(values, dict) else None


def json_bytes(value: dict) -> bytes:
    """``value`` as the JSON document sagebert writes (sorted keys, so the digest is stable)."""
    return json.dumps(value, indent=2, sort_keys=True).encode("utf-8")


def digest_of(data: bytes) -> str:
    """``sha256:<hex>``, the form ContentDigest fields take."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_json(clients: AwsClients, location: S3Location, value: dict, kms_key: str | None = None) -> str:
    """Write ``value`` as JSON at ``location`` (SSE-KMS with ``kms_key`` when given, as a bucket
    policy that demands it expects); return the digest of what was written."""
    data = json_bytes(value)
    encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key} if kms_key else {}
    clients.s3.put_object(Bucket=location.bucket, Key=location.key, Body=data, ContentType=contract.JSON, **encryption)
    return digest_of(data)


def delete_object(clients: AwsClients, location: S3Location) -> None:
    clients.s3.delete_object(Bucket=location.bucket, Key=location.key)


# ---- uncompressed model data ------------------------------------------------------------------------
UNPACKED_SUFFIX = ".unpacked.json"  # beside the archive: the record of an unpacking (outside the prefix,
# since SageMaker copies every object under the prefix into /opt/ml/model)


@dataclass(frozen=True)
class Unpacked:
    """Where a model.tar.gz's files lie unpacked, and whether this call put them there."""

    prefix: str
    files: int
    size: int
    uploaded: bool


def unpacked_location(archive: S3Location) -> S3Location:
    """``.../model.tar.gz`` → ``.../model/``: the unpacked files go beside the archive."""
    name = archive.key.rsplit("/", 1)[-1]
    stem = name[: -len(".tar.gz")] if name.endswith(".tar.gz") else name
    return archive.parent().child(stem, "")


def unpack_model_archive(clients: AwsClients, archive_uri: str, scratch: Path) -> Unpacked:
    """Unpack the model.tar.gz at ``archive_uri`` to the prefix beside it, once per archive
    content: a record beside the archive names the archive's ETag and the files; when it matches
    the archive and every file is there, nothing is downloaded or uploaded. Objects under the
    prefix that the archive does not hold (from an earlier archive at the same place) are removed."""
    from .. import files as local

    archive = S3Location.parse(archive_uri, "model data location")
    if not archive.key.endswith(".tar.gz"):
        raise InvalidRequestError(
            f"--uncompressed unpacks a model.tar.gz, and {archive_uri} is not one.",
            "Deploy from --training-job JOB or --model-data s3://.../model.tar.gz.",
        )
    prefix = unpacked_location(archive)
    record_at = S3Location(archive.bucket, archive.key + UNPACKED_SUFFIX)
    etag = clients.s3.head_object(Bucket=archive.bucket, Key=archive.key)["ETag"]
    present = set(list_keys(clients, prefix))
    record = _read_json(clients, record_at)
    if record and record.get("archive_etag") == etag and {prefix.key + k for k in record["files"]} <= present:
        return Unpacked(prefix.uri, len(record["files"]), int(record.get("size", 0)), uploaded=False)
    target = scratch / "unpacked"
    local_archive = scratch / "model.tar.gz"
    # IfMatch: the archive whose ETag the record will name, even if it is replaced meanwhile.
    body = clients.s3.get_object(Bucket=archive.bucket, Key=archive.key, IfMatch=etag)["Body"]
    with open(local_archive, "wb") as handle:
        shutil.copyfileobj(body, handle, 1 << 20)
    try:
        local.extract_tar(local_archive, target)
    except (tarfile.TarError, EOFError, OSError, local.UnsafeFileError) as exc:
        raise InvalidRequestError(
            f"{archive_uri} cannot be unpacked ({exc}).", "Deploy the unmodified model.tar.gz of a training job."
        ) from None
    names = [(path, path.relative_to(target).as_posix()) for path in sorted(target.rglob("*")) if path.is_file()]
    for path, relative in names:
        clients.s3.upload_file(str(path), prefix.bucket, prefix.key + relative)
    for stale in sorted(present - {prefix.key + relative for _, relative in names}):
        clients.s3.delete_object(Bucket=prefix.bucket, Key=stale)
    size = sum(path.stat().st_size for path, _ in names)
    put_json(clients, record_at, {"archive_etag": etag, "files": [relative for _, relative in names], "size": size})
    return Unpacked(prefix.uri, len(names), size, uploaded=True)


def _read_json(clients: AwsClients, location: S3Location) -> dict | None:
    try:
        body = clients.s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise
    try:
        value = json.loads(body)
    except ValueError:
        return None  # not ours, or damaged: unpack again
    return value if isinstance(value, dict) and isinstance(value.get("files"), list) else None
