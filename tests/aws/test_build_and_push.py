"""build_and_push.sh against moto (STS, ECR) and real local docker registries.

One test pushes the real image (about 1.75 GB: the one already built here, else built by the
script itself); every other push uses a 3-byte image. The build is container/build-image.sh's
business: here only its arguments going through (VARIANT, BASE_IMAGE) and a failed build stopping
the push are checked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import requests
from botocore.validate import ParamValidator

from sagebert.aws.validation import service_model

pytestmark = pytest.mark.aws


def outputs(stdout: str) -> dict[str, str]:
    """The three ``key=value`` lines the script prints on stdout."""
    return dict(line.split("=", 1) for line in stdout.splitlines())


def ecr_repository(clients, name: str) -> dict:
    return clients.session.client("ecr").describe_repositories(repositoryNames=[name])["repositories"][0]


def catalog(registry) -> list[str]:
    answer = requests.get(f"http://{registry.host}/v2/_catalog", auth=registry.auth, timeout=10)
    return answer.json().get("repositories") or []


@pytest.fixture
def git_checkout(tmp_path):
    """A git repository holding a copy of build_and_push.sh, committed; returns the script's path."""
    repo = tmp_path / "checkout"
    repo.mkdir()
    script = repo / "build_and_push.sh"
    shutil.copy(Path(__file__).resolve().parents[2] / "build_and_push.sh", script)
    (repo / "README.md").write_text("sagebert\n")
    for command in (
        ["init", "-q"],
        ["add", "."],
        ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "first"],
    ):
        subprocess.run(["git", "-C", str(repo), *command], check=True, capture_output=True)
    return script


def head(script) -> str:
    return subprocess.run(
        ["git", "-C", str(script.parent), "rev-parse", "--short=12", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


def built_image() -> str | None:
    """The ID of an image of this project already built here (the container tests' or yours), if any.

    The ID, not the tag: a build running meanwhile may move the tag to a new image.
    """
    for tag in (os.environ.get("SAGEBERT_TEST_IMAGE"), "sagebert:test", "sagebert:dev"):
        if not tag:
            continue
        found = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Id}}", tag], capture_output=True, text=True
        )
        if found.returncode == 0:
            return found.stdout.strip()
    return None


def test_pushes_the_real_image_and_prints_its_uri_and_digest(build_and_push, registry, clients, fake, tmp_path):
    tag = f"test-{uuid.uuid4().hex[:8]}"
    source = built_image()
    # With no image built yet the script builds one (container/build-image.sh); the layers it
    # leaves in Docker's cache make the container tests' own build of the same tree a cache hit.
    source_args = ("--source-image", source) if source else ()

    try:
        result = build_and_push(
            *source_args, "--latest", "--scan-on-push", "sagebert", tag, registry=registry, timeout=1800
        )
    finally:
        if source is None:
            subprocess.run(["docker", "rmi", f"sagebert:{tag}"], capture_output=True)

    assert result.returncode == 0, result.stderr[-4000:]
    printed = outputs(result.stdout)
    assert printed["image_uri"] == f"{registry.host}/sagebert:{tag}"
    assert printed["image_digest"] == registry.manifest_digest("sagebert", tag)
    assert printed["image_digest"] == registry.manifest_digest("sagebert", "latest")
    assert printed["image_digest_uri"] == f"{registry.host}/sagebert@{printed['image_digest']}"
    repository = ecr_repository(clients, "sagebert")
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository["imageTagMutability"] == "MUTABLE"
    assert fake.token_password not in result.stdout + result.stderr
    assert list(tmp_path.glob("build-and-push.*")) == []  # the private docker config is gone


def test_the_default_tag_is_the_git_revision(build_and_push, registry, tiny_image, git_checkout):
    result = build_and_push("--source-image", tiny_image, registry=registry, script=git_checkout)

    assert result.returncode == 0, result.stderr
    assert outputs(result.stdout)["image_uri"] == f"{registry.host}/sagebert:{head(git_checkout)}"
    assert "uncommitted" not in result.stderr


def test_uncommitted_changes_are_warned_about_and_marked_in_the_tag(build_and_push, registry, tiny_image, git_checkout):
    (git_checkout.parent / "README.md").write_text("changed\n")

    result = build_and_push("--source-image", tiny_image, "dirty-repo", registry=registry, script=git_checkout)

    assert result.returncode == 0, result.stderr
    assert outputs(result.stdout)["image_uri"] == f"{registry.host}/dirty-repo:{head(git_checkout)}-dirty"
    assert "warning: uncommitted changes" in result.stderr


def test_immutable_and_scan_options_apply_when_the_repository_is_created(build_and_push, registry, tiny_image, clients):
    result = build_and_push("--source-image", tiny_image, "--immutable", "team/bert", "v1", registry=registry)

    assert result.returncode == 0, result.stderr
    repository = ecr_repository(clients, "team/bert")
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": False}
    assert "created ECR repository team/bert in 123456789012/eu-west-1 (IMMUTABLE" in result.stderr


def test_dry_run_plans_the_repository_the_build_and_the_pushes_and_changes_nothing(
    build_and_push, registry, clients, fake
):
    result = build_and_push("--dry-run", "--scan-on-push", "--latest", "team/plan", "v1", registry=registry)

    assert result.returncode == 0, result.stderr
    steps = [json.loads(line) for line in result.stdout.splitlines()]
    assert steps == [
        {
            "operation": "CreateRepository",
            "request": {
                "repositoryName": "team/plan",
                "imageTagMutability": "MUTABLE",
                "imageScanningConfiguration": {"scanOnPush": True},
            },
        },
        {"operation": "docker build", "request": {"image": "team/plan:v1", "VARIANT": "cpu", "BASE_IMAGE": ""}},
        {"operation": "docker push", "request": {"image": f"{registry.host}/team/plan:v1", "from": "team/plan:v1"}},
        {"operation": "docker push", "request": {"image": f"{registry.host}/team/plan:latest", "from": "team/plan:v1"}},
    ]
    request = steps[0]["request"]
    assert (
        ParamValidator()
        .validate(request, service_model("ecr").operation_model("CreateRepository").input_shape)
        .has_errors()
        is False
    )
    assert clients.session.client("ecr").describe_repositories()["repositories"] == []
    assert "team/plan" not in catalog(registry)
    assert subprocess.run(["docker", "image", "inspect", "team/plan:v1"], capture_output=True).returncode != 0


def test_latest_is_refused_for_an_immutable_repository(build_and_push, registry, tiny_image):
    result = build_and_push(
        "--source-image", tiny_image, "--immutable", "--latest", "sagebert", "v1", registry=registry
    )

    assert result.returncode == 1
    assert "--latest cannot be used with --immutable" in result.stderr


def test_a_refused_login_is_reported_and_nothing_is_pushed(build_and_push, start_registry, tiny_image, fake):
    other = start_registry(password="not-the-ecr-token")

    result = build_and_push("--source-image", tiny_image, "sagebert", "v1", registry=other)

    assert result.returncode == 1
    assert f"docker login to {other.host} was refused" in result.stderr
    assert "401 Unauthorized" in result.stderr
    assert fake.token_password not in result.stderr
    assert catalog(other) == []


def test_a_refused_push_is_reported(build_and_push, start_registry, tiny_image):
    readonly = start_registry(readonly=True)

    result = build_and_push("--source-image", tiny_image, "sagebert", "v1", registry=readonly)

    assert result.returncode == 1
    assert f"build_and_push.sh: error: push refused by {readonly.host}:" in result.stderr
    assert "image_uri" not in result.stdout


def test_missing_credentials_are_reported_before_anything_is_pushed(build_and_push, registry, tiny_image):
    result = build_and_push(
        "--source-image",
        tiny_image,
        "no-creds",
        "v1",
        registry=registry,
        env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""},
    )

    assert result.returncode == 1
    assert "error: no AWS credentials: run `aws configure`" in result.stderr
    assert "no-creds" not in catalog(registry)


def test_a_missing_region_is_reported(build_and_push, registry, tiny_image):
    result = build_and_push(
        "--source-image", tiny_image, registry=registry, env={"AWS_REGION": "", "AWS_DEFAULT_REGION": ""}
    )

    assert result.returncode == 1
    assert "error: no AWS region: set AWS_REGION" in result.stderr


@pytest.mark.parametrize(
    "environment",
    [
        {"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": ""},
        {"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "eu-west-1"},
    ],
    ids=["AWS_REGION alone", "AWS_REGION over AWS_DEFAULT_REGION"],
)
def test_aws_region_chooses_the_region(build_and_push, registry, tiny_image, environment):
    result = build_and_push("--source-image", tiny_image, "regional", "v1", registry=registry, env=environment)

    assert result.returncode == 0, result.stderr
    assert "created ECR repository regional in 123456789012/us-west-2" in result.stderr


def test_a_missing_docker_is_reported(build_and_push, tmp_path):
    result = build_and_push("sagebert", "v1", env={"DOCKER": str(tmp_path / "no-docker-here")})

    assert result.returncode == 1
    assert "error: docker not found" in result.stderr and "install Docker" in result.stderr


def test_an_invalid_repository_name_is_refused(build_and_push):
    result = build_and_push("Sagebert_Image!", "v1")

    assert result.returncode == 1
    assert "'Sagebert_Image!' is not a valid ECR repository name" in result.stderr


def test_the_variant_reaches_build_image_and_a_failed_build_pushes_nothing(build_and_push, registry):
    result = build_and_push("variant-check", "v1", registry=registry, env={"VARIANT": "tpu"})

    assert result.returncode == 1
    assert "VARIANT must be cpu, gpu or gpu-cu12, not 'tpu'" in result.stderr
    assert "error: the build failed (see above); nothing was pushed" in result.stderr
    assert "variant-check" not in catalog(registry)


def test_the_base_image_reaches_build_image(build_and_push, registry):
    result = build_and_push(
        "base-check", "v1", registry=registry, env={"BASE_IMAGE": "sagebert-test/no-such-base:none"}
    )

    assert result.returncode == 1
    assert "cannot pull the base image sagebert-test/no-such-base:none" in result.stderr


def test_the_script_passes_shellcheck(unavailable):
    if not shutil.which("shellcheck"):
        unavailable("shellcheck is not installed (apt-get install shellcheck)")
    script = Path(__file__).resolve().parents[2] / "build_and_push.sh"

    result = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)

    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    "value, in_ci",
    [("true", True), ("1", True), ("yes", True), ("TRUE", True), ("false", False), ("0", False), ("", False)],
)
def test_a_missing_tool_fails_the_run_in_ci_and_skips_elsewhere(unavailable, monkeypatch, value, in_ci):
    monkeypatch.setenv("CI", value)

    with pytest.raises(pytest.fail.Exception if in_ci else pytest.skip.Exception, match="docker-registry"):
        unavailable("/usr/bin/docker-registry is missing")
