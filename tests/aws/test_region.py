"""Which region the CLI works in: --region, else AWS_REGION, else AWS_DEFAULT_REGION, else the
profile's. boto3 by itself reads only AWS_DEFAULT_REGION, so each variable is tested alone (the
other one unset) against an endpoint that exists in one region of moto only."""

from __future__ import annotations

import boto3
import pytest

from sagebert.aws.clients import resolve_region

pytestmark = pytest.mark.aws

ELSEWHERE = "us-west-2"  # the fixtures' own region is eu-west-1
ENDPOINT = "regional-endpoint"


@pytest.fixture
def endpoint_elsewhere(aws, fake):
    """An endpoint in us-west-2 only, made with raw boto3."""
    sagemaker = boto3.client("sagemaker", region_name=ELSEWHERE)
    sagemaker.create_model(
        ModelName=ENDPOINT,
        ExecutionRoleArn=fake.role_arn,
        PrimaryContainer={"Image": fake.image, "ModelDataUrl": f"s3://{fake.bucket}/model.tar.gz"},
    )
    variant = {"VariantName": "AllTraffic", "ModelName": ENDPOINT, "InstanceType": "ml.m5.xlarge"}
    sagemaker.create_endpoint_config(
        EndpointConfigName=ENDPOINT, ProductionVariants=[{**variant, "InitialInstanceCount": 1}]
    )
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=ENDPOINT)
    return ENDPOINT


@pytest.mark.parametrize(
    "environment",
    [
        {"AWS_REGION": ELSEWHERE},
        {"AWS_DEFAULT_REGION": ELSEWHERE},
        {"AWS_REGION": ELSEWHERE, "AWS_DEFAULT_REGION": "eu-west-1"},
    ],
    ids=["AWS_REGION alone", "AWS_DEFAULT_REGION alone", "AWS_REGION over AWS_DEFAULT_REGION"],
)
def test_the_region_variables_choose_the_region(cli, monkeypatch, endpoint_elsewhere, environment):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    result = cli("status", "--endpoint", endpoint_elsewhere)

    assert result.code == 0, result.err
    assert "InService" in result.out


def test_region_beats_both_variables(cli, monkeypatch, endpoint_elsewhere):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")

    found = cli("status", "--endpoint", endpoint_elsewhere, "--region", ELSEWHERE)
    monkeypatch.setenv("AWS_REGION", ELSEWHERE)
    missed = cli("status", "--endpoint", endpoint_elsewhere, "--region", "eu-west-1")

    assert found.code == 0, found.err
    assert missed.code == 1
    assert f"There is no endpoint {ENDPOINT} in eu-west-1." in missed.err
    assert "the region (--region, AWS_REGION or AWS_DEFAULT_REGION)" in missed.err


def test_no_region_anywhere_says_how_to_set_one(cli, monkeypatch, aws):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)

    result = cli("status", "--endpoint", ENDPOINT)

    assert result.code == 1
    assert "No AWS region is configured. Fix: Pass --region, set AWS_REGION (or AWS_DEFAULT_REGION)" in result.err


@pytest.mark.parametrize(
    "explicit, environ, expected",
    [
        (None, {}, None),
        (None, {"AWS_REGION": " ", "AWS_DEFAULT_REGION": "eu-west-1"}, "eu-west-1"),
        ("ap-south-1", {"AWS_REGION": "us-west-2"}, "ap-south-1"),
    ],
)
def test_resolve_region_skips_blank_values(explicit, environ, expected):
    assert resolve_region(explicit, environ) == expected
