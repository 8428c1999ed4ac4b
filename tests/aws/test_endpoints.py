"""`sagebert deploy`, `update`, `rollback`, `invoke`, `status` and `delete`.

moto covers model/config/endpoint creation, invocation and deletion; it has no UpdateEndpoint, so
updates and rollbacks (and endpoint failures, which moto never produces) use botocore's Stubber
with the exact requests expected.
"""

from __future__ import annotations

import json
import re

import pytest
from botocore.stub import Stubber

pytestmark = pytest.mark.aws

ENDPOINT = "disaster-tweets"
PREDICTIONS = {
    "predictions": [
        {
            "label": "Real disaster",
            "label_id": 1,
            "probabilities": {"Not a disaster": 0.03, "Real disaster": 0.97},
            "truncated": False,
        },
        {
            "label": "Not a disaster",
            "label_id": 0,
            "probabilities": {"Not a disaster": 0.88, "Real disaster": 0.12},
            "truncated": True,
        },
    ]
}
ALL_AT_ONCE = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
        "TerminationWaitInSeconds": 0,
    }
}


@pytest.fixture
def completed_job(clients, fake) -> dict:
    """A Completed training job in moto (moto completes jobs at once)."""
    clients.sagemaker.create_training_job(
        TrainingJobName="job-1",
        RoleArn=fake.role_arn,
        AlgorithmSpecification={"TrainingImage": fake.image, "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": f"s3://{fake.bucket}/sagebert/output/"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    return clients.sagemaker.describe_training_job(TrainingJobName="job-1")


def deploy(cli, clients, *extra: str):
    return cli("deploy", "--endpoint", ENDPOINT, "--poll-interval", "0", *extra, clients=clients)


# ---- deploy -----------------------------------------------------------------------------------------
def test_deploy_creates_model_config_and_endpoint_from_the_training_job(
    cli, clients, sent, fake, completed_job, fixed_names
):
    result = deploy(
        cli,
        clients,
        "--training-job",
        "job-1",
        "--instance-type",
        "ml.c5.xlarge",
        "--env",
        "SAGEBERT_INFERENCE_PRECISION=int8",
        "--env",
        "SAGEMAKER_MODEL_SERVER_WORKERS=2",
    )

    assert result.code == 0, result.err
    name = fixed_names(ENDPOINT)
    assert sent.one("CreateModel") == {
        "ModelName": name,
        "ExecutionRoleArn": fake.role_arn,
        "PrimaryContainer": {
            "Image": fake.image,
            "Mode": "SingleModel",
            "ModelDataUrl": completed_job["ModelArtifacts"]["S3ModelArtifacts"],
            "Environment": {"SAGEBERT_INFERENCE_PRECISION": "int8", "SAGEMAKER_MODEL_SERVER_WORKERS": "2"},
        },
        "Tags": [{"Key": "sagebert:endpoint", "Value": ENDPOINT}, {"Key": "sagebert:training-job", "Value": "job-1"}],
    }
    assert sent.one("CreateEndpointConfig") == {
        "EndpointConfigName": name,
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InstanceType": "ml.c5.xlarge",
                "InitialInstanceCount": 1,
                "InitialVariantWeight": 1.0,
            }
        ],
        "Tags": [{"Key": "sagebert:endpoint", "Value": ENDPOINT}],
    }
    assert sent.one("CreateEndpoint") == {"EndpointName": ENDPOINT, "EndpointConfigName": name}
    assert f"==> {ENDPOINT}: InService (0s)" in result.lines
    assert f"Endpoint {ENDPOINT} is InService on {name}." in result.lines


def test_deploy_multi_model_sends_mode_multimodel_and_the_prefix(cli, clients, sent, fake):
    result = deploy(
        cli, clients, "--multi-model", f"s3://{fake.bucket}/models", "--image", fake.image, "--role", fake.role_arn
    )

    assert result.code == 0, result.err
    container = sent.one("CreateModel")["PrimaryContainer"]
    assert container["Mode"] == "MultiModel"
    assert container["ModelDataUrl"] == f"s3://{fake.bucket}/models/"


def test_deploy_from_model_data_needs_the_image_and_role(cli, clients, sent, fake):
    result = deploy(cli, clients, "--model-data", f"s3://{fake.bucket}/m/model.tar.gz")

    assert result.code == 1
    assert "--image and --role needed: without --training-job there is no job to take them from." in result.err
    assert sent("CreateModel") == []


def test_deploy_refuses_model_data_that_is_not_a_tar_gz(cli, clients, fake):
    result = deploy(
        cli, clients, "--model-data", f"s3://{fake.bucket}/m/", "--image", fake.image, "--role", fake.role_arn
    )

    assert result.code == 1
    assert "is not a .tar.gz file" in result.err and "--multi-model" in result.err


def test_deploy_onto_an_existing_endpoint_suggests_update(cli, clients, sent, completed_job):
    assert deploy(cli, clients, "--training-job", "job-1").code == 0

    result = deploy(cli, clients, "--training-job", "job-1")

    assert result.code == 1
    assert (
        f"Endpoint {ENDPOINT} already exists (InService). Fix: Roll out a new model with `sagebert update" in result.err
    )
    assert len(sent("CreateModel")) == 1


def test_deploy_of_an_unknown_training_job_is_one_not_found_line(cli, clients):
    result = deploy(cli, clients, "--training-job", "no-such-job")

    assert result.code == 1
    assert result.err.count("\n") == 1
    assert result.err.startswith("error: Not found: DescribeTrainingJob failed: Could not find training job")
    assert "sagebert status lists endpoints and recent training jobs" in result.err


def test_deploy_shows_progress_and_reports_the_failure_reason(cli, clients, fake, described, fixed_names):
    name = fixed_names(ENDPOINT)
    job = described.training_job("job-1")
    with Stubber(clients.sagemaker) as stub:
        stub.add_response("describe_training_job", job, {"TrainingJobName": "job-1"})
        described.not_found(stub, "describe_endpoint", f"endpoint {ENDPOINT}")
        stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:x:1:model/m"})
        stub.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:x:1:endpoint-config/c"})
        stub.add_response("describe_endpoint_config", described.endpoint_config(name, name))
        stub.add_response(
            "create_endpoint",
            {"EndpointArn": "arn:aws:sagemaker:x:1:endpoint/e"},
            {"EndpointName": ENDPOINT, "EndpointConfigName": name},
        )
        stub.add_response("describe_endpoint", described.endpoint(ENDPOINT, "Creating", name))
        stub.add_response(
            "describe_endpoint",
            described.endpoint(
                ENDPOINT, "Failed", name, FailureReason="The primary container did not pass the ping health check."
            ),
        )

        result = deploy(cli, clients, "--training-job", "job-1")
        stub.assert_no_pending_responses()

    assert result.code == 1
    assert [line for line in result.lines if line.startswith("==> ")] == [
        f"==> {ENDPOINT}: Creating (0s)",
        f"==> {ENDPOINT}: Failed (0s)",
    ]
    assert (
        f"error: Endpoint {ENDPOINT} is Failed: The primary container did not pass the ping health check." in result.err
    )


# ---- update and rollback (Stubber: moto has no UpdateEndpoint) --------------------------------------
def stub_current_deployment(
    stub,
    described,
    config: str = "disaster-tweets-old",
    model: str = "disaster-tweets-old",
    environment: dict | None = None,
) -> None:
    stub.add_response(
        "describe_endpoint", described.endpoint(ENDPOINT, "InService", config), {"EndpointName": ENDPOINT}
    )
    stub.add_response(
        "describe_endpoint_config", described.endpoint_config(config, model, count=2), {"EndpointConfigName": config}
    )
    stub.add_response(
        "describe_model",
        described.model(model, "s3://bucket/old/model.tar.gz", environment=environment),
        {"ModelName": model},
    )


def stub_new_model_and_config(stub, described, fake, name: str, environment: dict, training_job: str) -> None:
    stub.add_response("describe_training_job", described.training_job(training_job), {"TrainingJobName": training_job})
    container = {
        "Image": fake.image,
        "Mode": "SingleModel",
        "ModelDataUrl": f"s3://{fake.bucket}/sagebert/output/{training_job}/output/model.tar.gz",
    }
    if environment:
        container["Environment"] = environment
    stub.add_response(
        "create_model",
        {"ModelArn": f"arn:aws:sagemaker:x:1:model/{name}"},
        {
            "ModelName": name,
            "ExecutionRoleArn": fake.role_arn,
            "PrimaryContainer": container,
            "Tags": [
                {"Key": "sagebert:endpoint", "Value": ENDPOINT},
                {"Key": "sagebert:training-job", "Value": training_job},
            ],
        },
    )
    stub.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": f"arn:aws:sagemaker:x:1:endpoint-config/{name}"},
        {
            "EndpointConfigName": name,
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": name,
                    "InstanceType": "ml.m5.xlarge",
                    "InitialInstanceCount": 2,
                    "InitialVariantWeight": 1.0,
                }
            ],
            "Tags": [{"Key": "sagebert:endpoint", "Value": ENDPOINT}],
        },
    )
    stub.add_response("describe_endpoint_config", described.endpoint_config(name, name), {"EndpointConfigName": name})


def stub_update_and_wait(
    stub,
    described,
    name: str,
    deployment_config: dict,
    previous: str,
    final_config: str | None = None,
    reason: str | None = None,
) -> None:
    endpoint_arn = described.endpoint(ENDPOINT, "InService", name)["EndpointArn"]
    stub.add_response(
        "update_endpoint",
        {"EndpointArn": endpoint_arn},
        {"EndpointName": ENDPOINT, "EndpointConfigName": name, "DeploymentConfig": deployment_config},
    )
    stub.add_response(
        "add_tags",
        {"Tags": []},
        {"ResourceArn": endpoint_arn, "Tags": [{"Key": "sagebert:previous-endpoint-config", "Value": previous}]},
    )
    stub.add_response("describe_endpoint", described.endpoint(ENDPOINT, "Updating", previous))
    extra = {"FailureReason": reason} if reason else {}
    stub.add_response("describe_endpoint", described.endpoint(ENDPOINT, "InService", final_config or name, **extra))


def update(cli, clients, *extra: str):
    return cli("update", "--endpoint", ENDPOINT, "--poll-interval", "0", *extra, clients=clients)


def test_update_rolls_out_a_new_model_and_config_all_at_once_and_keeps_the_previous(
    cli, clients, fake, described, fixed_names
):
    name = fixed_names(ENDPOINT)
    with Stubber(clients.sagemaker) as stub:
        stub_current_deployment(stub, described, environment={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"})
        stub_new_model_and_config(
            stub,
            described,
            fake,
            name,
            training_job="job-2",
            environment={"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "SAGEBERT_INFERENCE_PRECISION": "int8"},
        )
        stub_update_and_wait(stub, described, name, ALL_AT_ONCE, previous="disaster-tweets-old")

        result = update(cli, clients, "--training-job", "job-2", "--env", "SAGEBERT_INFERENCE_PRECISION=int8")
        stub.assert_no_pending_responses()

    assert result.code == 0, result.err
    assert (
        f"Updating {ENDPOINT} to {name} (blue/green ALL_AT_ONCE); disaster-tweets-old and its model are kept "
        f"for `sagebert rollback --endpoint {ENDPOINT}`."
    ) in result.lines
    assert [line for line in result.lines if line.startswith("==> ")] == [
        f"==> {ENDPOINT}: Updating (0s)",
        f"==> {ENDPOINT}: InService (0s)",
    ]
    assert f"Endpoint {ENDPOINT} is InService on {name}." in result.lines


def test_update_canary_with_alarms_sends_that_deployment_config(cli, clients, fake, described, fixed_names):
    name = fixed_names(ENDPOINT)
    canary = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 600,
                "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
            },
            "TerminationWaitInSeconds": 300,
            "MaximumExecutionTimeoutInSeconds": 3600,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "sagebert-5xx"}, {"AlarmName": "sagebert-latency"}]},
    }
    with Stubber(clients.sagemaker) as stub:
        stub_current_deployment(stub, described)
        stub_new_model_and_config(stub, described, fake, name, environment={}, training_job="job-2")
        stub_update_and_wait(stub, described, name, canary, previous="disaster-tweets-old")

        result = update(
            cli,
            clients,
            "--training-job",
            "job-2",
            "--traffic",
            "canary",
            "--canary-size",
            "1",
            "--wait-interval",
            "600",
            "--termination-wait",
            "300",
            "--max-execution-timeout",
            "3600",
            "--alarm",
            "sagebert-5xx",
            "--alarm",
            "sagebert-latency",
        )
        stub.assert_no_pending_responses()

    assert result.code == 0, result.err
    assert "(blue/green CANARY, rolled back by 2 alarm(s))" in result.out


def test_update_linear_without_alarms_warns_nothing_can_roll_it_back(cli, clients, fake, described, fixed_names):
    name = fixed_names(ENDPOINT)
    linear = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "LINEAR",
                "WaitIntervalInSeconds": 300,
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
            },
            "TerminationWaitInSeconds": 0,
        }
    }
    with Stubber(clients.sagemaker) as stub:
        stub_current_deployment(stub, described)
        stub_new_model_and_config(stub, described, fake, name, environment={}, training_job="job-2")
        stub_update_and_wait(stub, described, name, linear, previous="disaster-tweets-old")

        result = update(cli, clients, "--training-job", "job-2", "--traffic", "linear", "--linear-step", "25%")

    assert result.code == 0, result.err
    assert "warning: LINEAR without --alarm" in result.err


def test_an_update_sagemaker_rolled_back_exits_non_zero(cli, clients, fake, described, fixed_names):
    name = fixed_names(ENDPOINT)
    with Stubber(clients.sagemaker) as stub:
        stub_current_deployment(stub, described)
        stub_new_model_and_config(stub, described, fake, name, environment={}, training_job="job-2")
        stub_update_and_wait(
            stub,
            described,
            name,
            ALL_AT_ONCE,
            previous="disaster-tweets-old",
            final_config="disaster-tweets-old",
            reason="Alarm sagebert-5xx went into ALARM.",
        )

        result = update(cli, clients, "--training-job", "job-2")

    assert result.code == 1
    assert (
        f"error: The update of {ENDPOINT} was rolled back; it still runs disaster-tweets-old: "
        "Alarm sagebert-5xx went into ALARM."
    ) in result.err


def test_update_refuses_an_out_of_range_canary_before_creating_anything(cli, clients, described):
    with Stubber(clients.sagemaker) as stub:
        stub_current_deployment(stub, described)
        result = update(cli, clients, "--image", "other:1", "--traffic", "canary", "--canary-size", "80%")
        stub.assert_no_pending_responses()

    assert result.code == 1
    assert "--canary-size (percent of the fleet) is 80; SageMaker allows 1 to 50." in result.err


def test_update_of_an_endpoint_that_is_still_updating_says_to_wait(cli, clients, described):
    with Stubber(clients.sagemaker) as stub:
        stub.add_response("describe_endpoint", described.endpoint(ENDPOINT, "Updating", "c"))
        stub.add_response("describe_endpoint_config", described.endpoint_config("c", "m"))
        stub.add_response("describe_model", described.model("m", "s3://bucket/model.tar.gz"))
        result = update(cli, clients, "--training-job", "job-2")

    assert result.code == 1
    assert f"Endpoint {ENDPOINT} is Updating; it can only be updated when InService." in result.err


def test_rollback_points_the_endpoint_back_at_the_recorded_previous_config(cli, clients, described):
    current, previous = "disaster-tweets-new", "disaster-tweets-old"
    endpoint = described.endpoint(ENDPOINT, "InService", current)
    with Stubber(clients.sagemaker) as stub:
        stub.add_response("describe_endpoint", endpoint, {"EndpointName": ENDPOINT})
        stub.add_response(
            "list_tags",
            {"Tags": [{"Key": "sagebert:previous-endpoint-config", "Value": previous}]},
            {"ResourceArn": endpoint["EndpointArn"]},
        )
        stub.add_response(
            "describe_endpoint_config", described.endpoint_config(previous, "m-old"), {"EndpointConfigName": previous}
        )
        stub_update_and_wait(stub, described, previous, ALL_AT_ONCE, previous=current)

        result = cli("rollback", "--endpoint", ENDPOINT, "--poll-interval", "0", clients=clients)
        stub.assert_no_pending_responses()

    assert result.code == 0, result.err
    assert f"Rolling {ENDPOINT} back from {current} to {previous} (blue/green ALL_AT_ONCE)." in result.lines
    assert f"Endpoint {ENDPOINT} is InService on {previous}." in result.lines


def test_rollback_without_a_recorded_config_asks_for_one(cli, clients, described):
    endpoint = described.endpoint(ENDPOINT, "InService", "c")
    with Stubber(clients.sagemaker) as stub:
        stub.add_response("describe_endpoint", endpoint)
        stub.add_response("list_tags", {"Tags": []})
        result = cli("rollback", "--endpoint", ENDPOINT, clients=clients)

    assert result.code == 1
    assert "No previous endpoint config is recorded" in result.err and "--endpoint-config NAME" in result.err


# ---- invoke -----------------------------------------------------------------------------------------
def test_invoke_sends_json_inputs_and_prints_label_probability_and_text(cli, clients, sent, endpoint_answers):
    endpoint_answers([json.dumps(PREDICTIONS)])

    result = cli(
        "invoke", "--endpoint", ENDPOINT, "Just happened a terrible car crash", "I love fruits", clients=clients
    )

    assert result.code == 0, result.err
    request = sent.one("InvokeEndpoint")
    assert json.loads(request["Body"]) == {"inputs": ["Just happened a terrible car crash", "I love fruits"]}
    assert (request["ContentType"], request["Accept"]) == ("application/json", "application/json")
    assert result.lines == [
        "Real disaster   0.970  Just happened a terrible car crash",
        "Not a disaster  0.880  I love fruits  [truncated]",
    ]


def test_invoke_csv_sends_one_text_per_line(cli, clients, sent, endpoint_answers, tmp_path):
    endpoint_answers([json.dumps(PREDICTIONS)])
    texts = tmp_path / "texts.txt"
    texts.write_text("Forest fire, near La Ronge\n\nI love fruits\n")

    result = cli("invoke", "--endpoint", ENDPOINT, "--content-type", "csv", "--file", str(texts), clients=clients)

    assert result.code == 0, result.err
    request = sent.one("InvokeEndpoint")
    assert request["ContentType"] == "text/csv"
    assert request["Body"] == b'"Forest fire, near La Ronge"\nI love fruits\n'


def test_invoke_target_model_sends_it_for_a_multi_model_endpoint(cli, clients, sent, endpoint_answers):
    endpoint_answers([json.dumps({"predictions": PREDICTIONS["predictions"][:1]})])

    result = cli("invoke", "--endpoint", ENDPOINT, "--target-model", "bert-v3.tar.gz", "fire!", clients=clients)

    assert result.code == 0, result.err
    assert sent.one("InvokeEndpoint")["TargetModel"] == "bert-v3.tar.gz"


def test_invoke_says_so_when_the_answer_is_not_sagebert_predictions(cli, clients, endpoint_answers):
    endpoint_answers(["<html>oops</html>"])

    result = cli("invoke", "--endpoint", ENDPOINT, "hello", clients=clients)

    assert result.code == 1
    assert "The endpoint's answer is not sagebert predictions" in result.err and "--raw" in result.err


def test_invoke_raw_prints_the_answer_as_it_came(cli, clients, endpoint_answers):
    endpoint_answers(['{"predictions": []}'])

    result = cli("invoke", "--endpoint", ENDPOINT, "--raw", "hello", clients=clients)

    assert (result.code, result.out) == (0, '{"predictions": []}\n')


# ---- status -----------------------------------------------------------------------------------------
def test_status_of_an_endpoint_shows_its_config_model_image_and_environment(
    cli, clients, fake, completed_job, fixed_names
):
    deploy(cli, clients, "--training-job", "job-1", "--env", "SAGEMAKER_MODEL_SERVER_WORKERS=2")

    result = cli("status", "--endpoint", ENDPOINT, clients=clients)

    assert result.code == 0, result.err
    assert result.lines[0] == f"Endpoint {ENDPOINT}: InService"
    assert re.search(rf"^  config\s+{fixed_names(ENDPOINT)}$", result.out, re.M)
    assert re.search(rf"^  image\s+{re.escape(fake.image)}$", result.out, re.M)
    assert re.search(r"^  env\s+SAGEMAKER_MODEL_SERVER_WORKERS=2$", result.out, re.M)


def test_status_without_a_name_lists_endpoints_and_recent_training_jobs(cli, clients, completed_job):
    deploy(cli, clients, "--training-job", "job-1")

    result = cli("status", clients=clients)

    assert result.code == 0
    assert re.search(rf"^  {ENDPOINT}\s+InService$", result.out, re.M)
    assert re.search(r"^  job-1\s+Completed$", result.out, re.M)


# ---- delete -----------------------------------------------------------------------------------------
def test_delete_asks_first_and_deletes_nothing_without_a_yes(cli, clients, completed_job):
    deploy(cli, clients, "--training-job", "job-1")

    result = cli("delete", "--endpoint", ENDPOINT, clients=clients, stdin="n\n")

    assert result.code == 1
    assert "Delete these? [y/N]" in result.out
    assert "Nothing deleted" in result.err
    assert clients.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "InService"


def test_delete_after_a_yes_at_the_prompt_deletes_the_endpoint_only(cli, clients, completed_job):
    deploy(cli, clients, "--training-job", "job-1")

    result = cli("delete", "--endpoint", ENDPOINT, clients=clients, stdin="y\n")

    assert result.code == 0, result.err
    assert [e["EndpointName"] for e in clients.sagemaker.list_endpoints()["Endpoints"]] == []
    assert len(clients.sagemaker.list_endpoint_configs()["EndpointConfigs"]) == 1


def test_delete_with_configs_and_models_removes_the_previous_ones_too_but_nothing_else(
    cli, clients, fake, completed_job
):
    sm = clients.sagemaker
    container = {"Image": fake.image, "ModelDataUrl": "s3://bucket/old/model.tar.gz"}
    variant = {"VariantName": "AllTraffic", "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1}
    owned = [{"Key": "sagebert:endpoint", "Value": ENDPOINT}]
    for name, tags in (("disaster-tweets-kept", owned), ("disaster-tweets-unrelated", [])):
        sm.create_model(ModelName=name, ExecutionRoleArn=fake.role_arn, PrimaryContainer=container, Tags=tags)
        sm.create_endpoint_config(
            EndpointConfigName=name, ProductionVariants=[{**variant, "ModelName": name}], Tags=tags
        )
    deploy(cli, clients, "--training-job", "job-1")
    current = sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]

    result = cli(
        "delete",
        "--endpoint",
        ENDPOINT,
        "--with-configs",
        "--with-models",
        "--yes",
        "--poll-interval",
        "0",
        clients=clients,
    )

    assert result.code == 0, result.err
    assert f"deleted endpoint config {current}" in result.lines
    assert "deleted endpoint config disaster-tweets-kept" in result.lines
    assert "deleted model disaster-tweets-kept" in result.lines
    assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]] == [
        "disaster-tweets-unrelated"
    ]
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["disaster-tweets-unrelated"]
