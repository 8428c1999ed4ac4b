"""Reading live traffic: capture files in S3 or a local folder, baseline.json, CloudWatch metrics.

The edges of ``sagebert report``: parsing and statistics are ``capture`` and ``report``.
"""

from __future__ import annotations

import json
import tarfile
from datetime import datetime, timedelta
from pathlib import Path

from botocore.exceptions import ClientError

from ..errors import SagebertError
from .build.common import S3Location
from .capture import CaptureSet, hours_since, read_lines
from .clients import AwsClients
from .errors import is_not_found

BASELINE_FILE_LIMIT = 4 << 20  # a baseline.json is tens of KB; anything far bigger is not one
# Per variant, from the AWS/SageMaker namespace (ModelLatency is in microseconds).
INVOCATION_METRICS = ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "ModelLatency")


class TrafficError(SagebertError):
    """Capture files or a baseline cannot be found or read."""


def earliest_hour(since: timedelta | None, now: datetime) -> str | None:
    """``yyyy/mm/dd/hh`` of the first capture hour within ``since`` of ``now`` (UTC), or None for all."""
    return (now - since).strftime("%Y/%m/%d/%H") if since else None


def read_local(folder: Path, earliest: str | None) -> CaptureSet:
    """The capture files (``*.jsonl`` under ``{variant}/yyyy/mm/dd/hh/``) in a local folder."""
    if not folder.is_dir():
        raise TrafficError(
            f"--capture {folder} is not a folder.",
            "Give the folder that holds {variant}/yyyy/mm/dd/hh/*.jsonl (e.g. a copy made with aws s3 sync), or an s3:// URI.",
        )
    captures = CaptureSet()
    paths = {str(p.relative_to(folder)): p for p in folder.rglob("*.jsonl")}
    for relative, variant in hours_since(paths, earliest):
        with open(paths[relative], encoding="utf-8", errors="replace") as handle:
            read_lines(captures, relative, variant, handle)
    return captures


def read_s3(clients: AwsClients, location: S3Location, earliest: str | None) -> CaptureSet:
    """The capture files under an S3 prefix (``{DestinationS3Uri}/{endpoint}/``)."""
    prefix = location.as_prefix()
    keys = []
    for page in clients.s3.get_paginator("list_objects_v2").paginate(Bucket=prefix.bucket, Prefix=prefix.key):
        keys.extend(item["Key"] for item in page.get("Contents", ()))
    captures = CaptureSet()
    for key, variant in hours_since(keys, earliest):
        body = clients.s3.get_object(Bucket=prefix.bucket, Key=key)["Body"].read()
        read_lines(captures, f"s3://{prefix.bucket}/{key}", variant, body.decode("utf-8", "replace").splitlines())
    return captures


def capture_prefix(config: dict, endpoint: str) -> S3Location:
    """Where an endpoint config's data capture writes: ``{DestinationS3Uri}/{endpoint}/``."""
    capture = config.get("DataCaptureConfig") or {}
    if not capture.get("DestinationS3Uri"):
        raise TrafficError(
            f"Endpoint {endpoint} does not capture data, so there is nothing to report on.",
            f"Turn it on (sagebert update --endpoint {endpoint} --data-capture s3://BUCKET/capture/), or give "
            "--capture DIR_OR_S3 with files captured earlier.",
        )
    return S3Location.parse(capture["DestinationS3Uri"], "DestinationS3Uri").as_prefix().child(endpoint, "")


def _baseline_from_archive(fileobj, where: str) -> dict | None:
    try:
        with tarfile.open(fileobj=fileobj, mode="r|gz") as archive:
            for member in archive:
                if member.isfile() and member.name.lstrip("./") == "baseline.json":
                    if member.size > BASELINE_FILE_LIMIT:
                        return None
                    handle = archive.extractfile(member)
                    return json.loads(handle.read().decode("utf-8")) if handle else None
    except (tarfile.TarError, EOFError, UnicodeDecodeError, ValueError) as exc:
        raise TrafficError(f"{where} is not a readable model.tar.gz ({exc}).", "Give baseline.json itself.") from None
    return None


def load_baseline(clients: AwsClients | None, where: str) -> dict | None:
    """baseline.json from a local file or folder, an S3 object, or inside a model.tar.gz (local or S3);
    None when a model archive has none (trained before sagebert wrote one)."""
    if where.startswith("s3://"):
        location = S3Location.parse(where, "--baseline")
        try:
            body = clients.s3.get_object(Bucket=location.bucket, Key=location.key)["Body"]
        except ClientError as exc:
            if is_not_found(exc):
                raise TrafficError(f"There is no {where}.", "Check the --baseline URI.") from None
            raise
        if location.key.endswith(".tar.gz"):
            try:
                return _baseline_from_archive(body, where)
            finally:
                body.close()
        text = body.read().decode("utf-8", "replace")
    else:
        path = Path(where)
        if path.is_dir():
            path = path / "baseline.json"
        if path.name.endswith(".tar.gz"):
            with open(path, "rb") as handle:
                return _baseline_from_archive(handle, where)
        text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise TrafficError(f"{where} is not JSON ({exc}).", "Give the baseline.json training wrote.") from None


def variant_metrics(
    clients: AwsClients, endpoint: str, variant: str, start: datetime, end: datetime
) -> dict[str, float | None]:
    """Invocations, 4xx/5xx errors (sums) and ModelLatency p50/p99 (ms) of one variant over [start, end]."""
    dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
    # EndTime is exclusive: end on the next whole minute so the current minute's data is counted.
    end = end.replace(second=0, microsecond=0) + timedelta(minutes=1)
    period = max(60, int((end - start).total_seconds()) // 60 * 60)
    found: dict[str, float | None] = {}
    for metric in INVOCATION_METRICS:
        request = {
            "Namespace": "AWS/SageMaker",
            "MetricName": metric,
            "Dimensions": dimensions,
            "StartTime": start,
            "EndTime": end,
            "Period": period,
        }
        if metric == "ModelLatency":
            points = clients.cloudwatch.get_metric_statistics(**request, ExtendedStatistics=["p50", "p99"])
            datapoints = points.get("Datapoints", ())
            for stat in ("p50", "p99"):
                values = [p["ExtendedStatistics"][stat] for p in datapoints if stat in p.get("ExtendedStatistics", {})]
                # One period covers the window; with several, the worst period is the honest figure.
                found[f"latency_{stat}_ms"] = round(max(values) / 1000, 3) if values else None
        else:
            points = clients.cloudwatch.get_metric_statistics(**request, Statistics=["Sum"])
            values = [p["Sum"] for p in points.get("Datapoints", ())]
            found[metric] = sum(values) if values else None
    return found
