"""The reference workload's whole loop through the CLI against moto, the way the README runs it:

upload-data → train --spot → register (→ a reviewer approves) → deploy the package → train again
with epochs=3 → compare → update refused when worse (exit 3, nothing created) → train again →
update accepted when better → autoscale → transform → delete, leaving nothing behind.

Two stand-ins, both named: moto runs no container, so each training job's model.tar.gz (with the
metrics.json training writes) is put in moto's S3 by the test; moto has no UpdateEndpoint, so a
botocore hook answers it the way SageMaker's end state looks (the endpoint on the new config) —
the request itself is recorded as sent and checked (conftest's update_endpoint_stand_in).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.aws

ENDPOINT = "disaster-tweets"


def left_behind(clients) -> dict[str, list]:
    sm, scaling = clients.sagemaker, clients.autoscaling
    return {
        "endpoints": [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]],
        "configs": [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]],
        "models": [m["ModelName"] for m in sm.list_models()["Models"]],
        "scalable targets": scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"],
        "scaling policies": scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"],
    }


def test_the_reference_loop_promotes_only_a_better_model_and_leaves_nothing_behind(
    cli, clients, sent, fake, bucket, model_in_s3, ecr_image, update_endpoint_stand_in
):
    data = f"s3://{bucket}/sagebert/data"

    def run(*argv: str, expect: int = 0):
        result = cli(*argv, clients=clients)
        assert result.code == expect, f"sagebert {' '.join(argv)} -> {result.code}:\n{result.out}\n{result.err}"
        return result

    def train(job: str, f1: float, *extra: str) -> None:
        run("train", "--image", fake.image, "--role", fake.role_arn, "--data", data, "--job-name", job, *extra)
        model_in_s3(job, f1)  # what the container would have written

    run("upload-data", "local_test/data", data)
    train("tweets-1", 0.7993, "--spot", "--max-run", "4000", "--checkpoint-s3", f"s3://{bucket}/sagebert/checkpoints")
    assert sent("CreateTrainingJob")[-1]["EnableManagedSpotTraining"] is True

    registered = run("register", "--training-job", "tweets-1", "--group", "disaster-tweets")
    package = next(word for word in registered.out.split() if ":model-package/" in word)
    run(
        "deploy", "--model-package", package, "--role", fake.role_arn, "--endpoint", ENDPOINT, expect=1
    )  # not approved yet
    # The reviewer approves it. (moto's UpdateModelPackage drops the CustomerMetadataProperties it
    # is not given, which AWS keeps: they are passed back unchanged here.)
    metadata = clients.sagemaker.describe_model_package(ModelPackageName=package)["CustomerMetadataProperties"]
    clients.sagemaker.update_model_package(
        ModelPackageArn=package, ModelApprovalStatus="Approved", CustomerMetadataProperties=metadata
    )
    run("deploy", "--model-package", package, "--role", fake.role_arn, "--endpoint", ENDPOINT, "--poll-interval", "0")
    first_config = clients.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]

    train("tweets-2", 0.7512, "--epochs", "3")
    compared = run("compare", "tweets-1", "tweets-2")
    assert ["eval:f1", "0.7993", "0.7512"] in [line.split() for line in compared.lines]

    before = left_behind(clients)
    refused = run(
        "update", "--endpoint", ENDPOINT, "--training-job", "tweets-2", "--require-better", "eval:f1", expect=3
    )
    assert "Not promoted: eval:f1 0.7512 is not higher than 0.7993" in refused.err
    assert left_behind(clients) == before and update_endpoint_stand_in == []

    train("tweets-3", 0.8311, "--epochs", "3", "--learning-rate", "3e-5")
    run(
        "update",
        "--endpoint",
        ENDPOINT,
        "--training-job",
        "tweets-3",
        "--require-better",
        "eval:f1",
        "--poll-interval",
        "0",
    )
    [request] = update_endpoint_stand_in
    current = clients.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert request["EndpointConfigName"] == current["EndpointConfigName"] != first_config
    assert request["RetainAllVariantProperties"] is True
    status = run("status", "--endpoint", ENDPOINT)
    assert f"  previous config    {first_config} (sagebert rollback --endpoint {ENDPOINT})" in status.lines
    assert "  metric             eval:f1 = 0.8311" in status.lines

    run("autoscale", "--endpoint", ENDPOINT, "--min", "1", "--max", "4", "--target-invocations", "100")
    run(
        "transform",
        "--endpoint",
        ENDPOINT,
        "--input",
        f"s3://{bucket}/sagebert/data/testing/",
        "--output",
        f"s3://{bucket}/sagebert/scored/",
        "--wait",
        "--poll-interval",
        "0",
    )

    run("delete", "--endpoint", ENDPOINT, "--with-models", "--yes", "--poll-interval", "0")
    assert left_behind(clients) == {
        "endpoints": [],
        "configs": [],
        "models": [],
        "scalable targets": [],
        "scaling policies": [],
    }
    # The registry is the record of what was trained: the package stays, on purpose.
    assert clients.sagemaker.describe_model_package(ModelPackageName=package)["ModelApprovalStatus"] == "Approved"
