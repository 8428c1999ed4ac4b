"""Fixtures for the AWS layer: moto in server mode, local docker registries, the CLI runner.

moto_server runs once per session on a free 127.0.0.1 port and is reset before every test; the
AWS environment (AWS_ENDPOINT_URL pointing at it, test credentials, region eu-west-1) is set
only for the tests that ask for ``aws``. Registries are Debian's docker-registry with htpasswd
auth whose user is the one ECR's GetAuthorizationToken hands out (moto: AWS /
123456789012-auth-token), so build_and_push.sh's ECR-style login works against them unchanged.
"""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
import requests
from botocore.awsrequest import AWSResponse

from sagebert.aws.clients import AwsClients
from sagebert.cli import main
from support import docker_usable, free_port, in_ci

REPO = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
ACCOUNT = "123456789012"
BUCKET = "sagebert-test"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/SageMakerExec"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/sagebert:0123456789ab"
MOTO_TOKEN_USER, MOTO_TOKEN_PASSWORD = "AWS", f"{ACCOUNT}-auth-token"  # what moto's ECR token decodes to
CLIENT_NAMES = ("sagemaker", "runtime", "s3", "logs", "sts", "autoscaling", "cloudwatch", "ecr")


def missing_tool(message: str) -> None:
    """Skip on a developer machine, fail in CI (support.in_ci): the aws tests always run there."""
    if in_ci():
        pytest.fail(f"{message} (CI is set: the aws tests must run, not skip)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def unavailable() -> Callable[[str], None]:
    """``unavailable(message)``: skip on a developer machine, fail in CI (see missing_tool)."""
    return missing_tool


@dataclass(frozen=True)
class FakeAws:
    """The values the stand-ins answer with, for tests to compare against."""

    account: str = ACCOUNT
    region: str = REGION
    bucket: str = BUCKET
    role_arn: str = ROLE_ARN
    image: str = IMAGE
    token_password: str = MOTO_TOKEN_PASSWORD


@pytest.fixture(scope="session")
def fake() -> FakeAws:
    return FakeAws()


def wait_for_http(url: str, process: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer on {url} within {timeout} s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# ---- moto -------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def moto_server(tmp_path_factory) -> str:
    """The URL of a moto server (S3, STS, IAM, ECR, SageMaker, CloudWatch Logs) on 127.0.0.1."""
    executable = Path(sys.executable).with_name("moto_server")
    if not executable.exists():
        executable = Path(shutil.which("moto_server") or "moto_server")
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(
        [str(executable), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/moto-api/", process, "moto_server")
        yield url
    finally:
        stop(process)
        log.close()


@pytest.fixture
def aws_environment(moto_server, monkeypatch, tmp_path) -> dict[str, str]:
    """Environment variables that send boto3 (and build_and_push.sh) to moto, isolated from ~/.aws."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    values = {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def aws(aws_environment, moto_server) -> str:
    """A freshly reset moto (its invoke_endpoint cache included) with the environment pointing at it."""
    requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    return moto_server


@pytest.fixture
def clients(aws) -> AwsClients:
    return AwsClients()


@pytest.fixture
def offline(aws_environment):
    """AwsClients whose every request, to any service, fails the test: nothing may reach AWS."""
    session = boto3.session.Session()
    attempts: list[str] = []

    def refuse(request, **_):
        attempts.append(request.url)
        raise AssertionError(f"a request was sent: {request.method} {request.url}")

    session.events.register("before-send", refuse)
    clients = AwsClients(session)
    clients.attempts = attempts
    return clients


@pytest.fixture
def bucket(clients) -> str:
    clients.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return BUCKET


@pytest.fixture
def training_data(clients, bucket) -> str:
    """``s3://BUCKET/sagebert/data`` holding training/train.csv and testing/test.csv."""
    for key in ("sagebert/data/training/train.csv", "sagebert/data/testing/test.csv"):
        clients.s3.put_object(Bucket=bucket, Key=key, Body=b"label,sentence\n1,Forest fire near La Ronge\n")
    return f"s3://{bucket}/sagebert/data"


def model_archive(metrics: dict | None, weights: int = 64 * 1024) -> bytes:
    """A model.tar.gz as training writes it: weights first (the archive is read past them), then
    metrics.json (when ``metrics`` is given), labels and config."""
    buffer = io.BytesIO()
    files = [("model.safetensors", os.urandom(weights)), ("config.json", b"{}"), ("labels.json", b'["No", "Yes"]')]
    if metrics is not None:
        files.insert(1, ("metrics.json", json.dumps(metrics).encode()))
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def model_in_s3(clients) -> Callable[[str, float | None], str]:
    """``model_in_s3("job-2", 0.8)``: what a finished training job leaves — its model.tar.gz, with the
    metrics.json training writes (f1 and friends) — put in moto's S3 (moto runs no container)."""

    def put(job: str, f1: float | None) -> str:
        artifact = clients.sagemaker.describe_training_job(TrainingJobName=job)["ModelArtifacts"]["S3ModelArtifacts"]
        metrics = None if f1 is None else {"f1": f1, "accuracy": 0.83, "precision": 0.8, "recall": 0.79, "loss": 0.41}
        bucket, key = artifact[len("s3://") :].split("/", 1)
        clients.s3.put_object(Bucket=bucket, Key=key, Body=model_archive(metrics))
        return artifact

    return put


@pytest.fixture
def trained(clients, fake, bucket, model_in_s3) -> Callable[..., dict]:
    """``trained("job-2", f1=0.8)``: a Completed training job in moto whose model.tar.gz in moto's S3
    holds a metrics.json (moto writes no artifact and fixes FinalMetricDataList at train:progress)."""

    def make(name: str, f1: float | None = None, image: str | None = None) -> dict:
        clients.sagemaker.create_training_job(
            TrainingJobName=name,
            RoleArn=fake.role_arn,
            AlgorithmSpecification={"TrainingImage": image or fake.image, "TrainingInputMode": "File"},
            OutputDataConfig={"S3OutputPath": f"s3://{fake.bucket}/sagebert/output/"},
            ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
            StoppingCondition={"MaxRuntimeInSeconds": 3600},
        )
        model_in_s3(name, f1)
        return clients.sagemaker.describe_training_job(TrainingJobName=name)

    return make


@dataclass
class Sent:
    """The parameters of every call made through some clients, as botocore received them."""

    calls: list[tuple[str, dict]] = field(default_factory=list)

    def __call__(self, operation: str) -> list[dict]:
        return [params for name, params in self.calls if name == operation]

    def one(self, operation: str) -> dict:
        matching = self(operation)
        assert len(matching) == 1, f"{operation} sent {len(matching)} times: {[n for n, _ in self.calls]}"
        return matching[0]


@pytest.fixture
def sent(clients) -> Sent:
    """Records each request's parameters before botocore serialises them (what was really sent)."""
    record = Sent()

    def remember(params, model, **_):
        try:
            copied = copy.deepcopy(params)
        except TypeError:  # an S3 upload's file-like Body holds a lock: keep the parameters as they are
            copied = dict(params)
        record.calls.append((model.name, copied))

    for name in CLIENT_NAMES:
        getattr(clients, name).meta.events.register("before-parameter-build", remember)
    return record


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


@pytest.fixture
def cli(capsys, monkeypatch) -> Callable[..., Result]:
    """Run ``sagebert ARGV`` in-process: ``cli("train", ..., clients=..., stdin="y\\n")`` → Result."""

    def run(*argv: str, clients: AwsClients | None = None, stdin: str | None = None) -> Result:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = main(list(argv), clients=clients)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def seed_logs(clients) -> Callable[[str, dict[str, list[str]]], None]:
    """Write lines to CloudWatch streams ``<job>/<stream>`` (moto creates none for jobs)."""

    def seed(job: str, streams: dict[str, list[str]]) -> None:
        group = "/aws/sagemaker/TrainingJobs"
        if not clients.logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
            clients.logs.create_log_group(logGroupName=group)
        now = int(time.time() * 1000)  # CloudWatch refuses events older than 14 days
        for offset, (stream, messages) in enumerate(streams.items()):
            clients.logs.create_log_stream(logGroupName=group, logStreamName=f"{job}/{stream}")
            clients.logs.put_log_events(
                logGroupName=group,
                logStreamName=f"{job}/{stream}",
                logEvents=[
                    {"timestamp": now + 10 * i + offset, "message": message} for i, message in enumerate(messages)
                ],
            )

    return seed


@pytest.fixture
def endpoint_answers(aws) -> Callable[[list[str]], None]:
    """Queue the bodies moto's InvokeEndpoint returns (one per distinct request)."""

    def queue(bodies: list[str]) -> None:
        results = [
            {
                "Body": body,
                "ContentType": "application/json",
                "InvokedProductionVariant": "AllTraffic",
                "CustomAttributes": "",
            }
            for body in bodies
        ]
        requests.post(
            f"{aws}/moto-api/static/sagemaker/endpoint-results",
            timeout=10,
            json={"account_id": ACCOUNT, "region": REGION, "results": results},
        ).raise_for_status()

    return queue


@pytest.fixture
def update_endpoint_stand_in(clients, aws) -> list[dict]:
    """Answer UpdateEndpoint (which moto lacks) by moving the endpoint to the new config in moto;
    returns the requests answered. A dry run's plan answers it instead (nothing moves)."""
    moto = boto3.client("sagemaker")  # a second client: its calls are not the CLI's
    asked: list[dict] = []

    def remember(params, **_):
        if not clients.dry_run:
            asked.append(dict(params))

    def answer(**_):
        if clients.dry_run:
            return None
        request = asked[-1]
        moto.delete_endpoint(EndpointName=request["EndpointName"])
        moto.create_endpoint(EndpointName=request["EndpointName"], EndpointConfigName=request["EndpointConfigName"])
        arn = moto.describe_endpoint(EndpointName=request["EndpointName"])["EndpointArn"]
        return AWSResponse(aws, 200, {}, None), {"EndpointArn": arn}

    clients.sagemaker.meta.events.register("before-parameter-build.sagemaker.UpdateEndpoint", remember)
    clients.sagemaker.meta.events.register("before-call.sagemaker.UpdateEndpoint", answer)
    return asked


@pytest.fixture
def ecr_image(clients, fake) -> None:
    """The image of ``fake.image`` in moto's ECR (a manifest only: moto has no registry)."""
    clients.ecr.create_repository(repositoryName="sagebert")
    manifest = '{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}'
    clients.ecr.put_image(repositoryName="sagebert", imageManifest=manifest, imageTag=fake.image.rsplit(":", 1)[1])


# ---- docker and registries --------------------------------------------------------------------------
@dataclass
class Registry:
    """A docker-registry process on 127.0.0.1."""

    host: str
    process: subprocess.Popen
    auth: tuple[str, str]
    storage: Path

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The Docker-Content-Digest of ``repository:reference``, or None if it is not there."""
        answer = requests.get(
            f"http://{self.host}/v2/{repository}/manifests/{reference}",
            auth=self.auth,
            timeout=10,
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        return answer.headers.get("Docker-Content-Digest") if answer.status_code == 200 else None


@pytest.fixture(scope="session")
def start_registry(tmp_path_factory):
    """Start registries: ``start_registry(password=..., readonly=...)`` → Registry (stopped at the end)."""
    for tool in ("/usr/bin/docker-registry", "htpasswd"):
        if not shutil.which(tool):
            missing_tool(f"{tool} is missing: apt-get install docker-registry apache2-utils")
    if not docker_usable():
        missing_tool("no Docker engine answers (docker info)")
    started: list[Registry] = []

    def start(password: str = MOTO_TOKEN_PASSWORD, readonly: bool = False) -> Registry:
        root = tmp_path_factory.mktemp("registry")
        htpasswd = subprocess.run(
            ["htpasswd", "-Bbn", MOTO_TOKEN_USER, password], check=True, capture_output=True, text=True
        ).stdout
        (root / "htpasswd").write_text(htpasswd)
        port = free_port()
        maintenance = ", maintenance: {readonly: {enabled: true}}" if readonly else ""
        (root / "config.yml").write_text(
            "version: 0.1\nlog: {level: error}\n"
            f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}{maintenance}}}\n"
            f"http: {{addr: 127.0.0.1:{port}}}\n"
            f"auth: {{htpasswd: {{realm: sagebert-test, path: {root / 'htpasswd'}}}}}\n"
        )
        log = open(root / "registry.log", "wb")  # noqa: SIM115 - closed at teardown
        process = subprocess.Popen(
            ["/usr/bin/docker-registry", "serve", str(root / "config.yml")], stdout=log, stderr=subprocess.STDOUT
        )
        registry = Registry(f"127.0.0.1:{port}", process, (MOTO_TOKEN_USER, password), root / "data")
        started.append(registry)
        wait_for_http(f"http://{registry.host}/v2/", process, "docker-registry")
        return registry

    yield start
    for registry in started:
        stop(registry.process)
        shutil.rmtree(registry.storage, ignore_errors=True)  # a real push leaves ~0.7 GB there
        tags = subprocess.run(
            ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True
        ).stdout.split()
        mine = [tag for tag in tags if tag.startswith(registry.host + "/")]
        if mine:
            subprocess.run(["docker", "rmi", *mine], capture_output=True)


@pytest.fixture(scope="session")
def registry(start_registry) -> Registry:
    """The session's registry, accepting the ECR-style login with moto's token."""
    return start_registry()


@pytest.fixture(scope="session")
def tiny_image(start_registry) -> str:
    """A 3-byte local image (one file, imported): pushes in a blink, for every push case but one."""
    name = f"sagebert-test/tiny:{uuid.uuid4().hex[:8]}"
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    subprocess.run(["docker", "import", "-", name], input=payload.getvalue(), check=True, capture_output=True)
    yield name
    subprocess.run(["docker", "rmi", name], capture_output=True)


@pytest.fixture
def build_and_push(aws_environment, aws, tmp_path):
    """Run build_and_push.sh: ``build_and_push(*args, registry=..., env={...}, script=...)``."""

    def run(
        *args: str,
        registry: Registry | None = None,
        env: dict[str, str] | None = None,
        script: Path = REPO / "build_and_push.sh",
        timeout: int = 600,
    ) -> subprocess.CompletedProcess:
        environment = {**os.environ, "PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
        if registry is not None:
            environment["REGISTRY"] = registry.host
        environment.update(env or {})
        return subprocess.run(
            ["bash", str(script), *args], env=environment, capture_output=True, text=True, timeout=timeout
        )

    return run


# ---- Stubber material -------------------------------------------------------------------------------
CREATED = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_790_000_000))
FIXED_NOW = "20261126-120000"
FIXED_TOKEN = "abcd"


class Described:
    """Describe* responses valid for botocore's Stubber: the required fields plus what a test gives."""

    created = CREATED

    def training_job(
        self,
        name: str,
        status: str = "Completed",
        secondary: str | None = None,
        transitions: tuple[str, ...] = (),
        **extra,
    ) -> dict:
        return {
            "TrainingJobName": name,
            "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}",
            "ModelArtifacts": {"S3ModelArtifacts": f"s3://{BUCKET}/sagebert/output/{name}/output/model.tar.gz"},
            "TrainingJobStatus": status,
            "SecondaryStatus": secondary or status,
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "RoleArn": ROLE_ARN,
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "CreationTime": CREATED,
            "SecondaryStatusTransitions": [
                {"Status": s, "StartTime": CREATED, "StatusMessage": f"{s} message"} for s in transitions
            ],
            **extra,
        }

    def endpoint(
        self, name: str, status: str, config: str, count: int | None = None, modified: str = CREATED, **extra
    ) -> dict:
        """DescribeEndpoint; ``count`` is the variant's CurrentInstanceCount (what autoscaling set)."""
        description = {
            "EndpointName": name,
            "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name}",
            "EndpointConfigName": config,
            "EndpointStatus": status,
            "CreationTime": CREATED,
            "LastModifiedTime": modified,
            **extra,
        }
        if count is not None:
            description["ProductionVariants"] = [
                {"VariantName": "AllTraffic", "CurrentInstanceCount": count, "DesiredInstanceCount": count}
            ]
        return description

    def endpoint_config(self, name: str, model: str, instance_type: str = "ml.m5.xlarge", count: int = 1) -> dict:
        return {
            "EndpointConfigName": name,
            "EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/{name}",
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": model,
                    "InstanceType": instance_type,
                    "InitialInstanceCount": count,
                    "InitialVariantWeight": 1.0,
                }
            ],
            "CreationTime": CREATED,
        }

    def model(self, name: str, data: str, image: str = IMAGE, environment: dict | None = None) -> dict:
        """DescribeModel of a one-container model."""
        return {
            "ModelName": name,
            "ModelArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{name}",
            "CreationTime": CREATED,
            "ExecutionRoleArn": ROLE_ARN,
            "PrimaryContainer": {
                "Image": image,
                "Mode": "SingleModel",
                "ModelDataUrl": data,
                "Environment": environment or {},
            },
        }

    def not_found(self, stubber, operation: str, arn: str) -> None:
        """SageMaker's real answer for a missing endpoint, config or model: Could not find <kind> "<arn>"."""
        kind = {"endpoint-config": "endpoint configuration"}.get(
            arn.split(":")[-1].split("/")[0], arn.split(":")[-1].split("/")[0]
        )
        stubber.add_client_error(
            operation,
            service_error_code="ValidationException",
            service_message=f'Could not find {kind} "{arn}".',
            http_status_code=400,
        )

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name}"


@pytest.fixture
def described() -> Described:
    return Described()


@pytest.fixture
def fixed_names(monkeypatch) -> Callable[[str], str]:
    """Generated names become ``<stem>-20261126-120000-abcd``; returns the function computing them."""
    from datetime import datetime

    import sagebert.aws.build.hosting as hosting

    original = hosting.unique_name
    now = datetime.strptime(FIXED_NOW, "%Y%m%d-%H%M%S")
    monkeypatch.setattr(
        hosting, "unique_name", lambda stem, now_=None, token=None, **_: original(stem, now, FIXED_TOKEN)
    )
    return lambda stem: original(stem, now, FIXED_TOKEN)
