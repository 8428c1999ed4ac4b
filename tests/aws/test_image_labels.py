"""The image's CUDA line read from its labels in ECR (sagebert.aws.registry.image_labels), and what
deploy and transform do with it on GPU instance types.

moto answers BatchGetImage but has no GetDownloadUrlForLayer and no blobs, so ECR is botocore's
Stubber with the exact requests, and the config blob is served by a real HTTP server on 127.0.0.1
at the URL the stubbed GetDownloadUrlForLayer hands out, as ECR hands out a presigned S3 URL.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.stub import Stubber

from sagebert.aws.registry import IMAGE_MEDIA_TYPES, image_labels

pytestmark = pytest.mark.aws

REPOSITORY = "sagebert"
CONFIG_DIGEST = "sha256:" + "c" * 64
AMD64_DIGEST = "sha256:" + "a" * 64
ARM64_DIGEST = "sha256:" + "b" * 64
WHERE = {"registryId": "123456789012", "repositoryName": REPOSITORY}


@pytest.fixture
def blob_server():
    """Serves ``blobs[path]`` as JSON over HTTP; returns (base URL, blobs, paths asked for)."""
    blobs: dict[str, dict] = {}
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            body = json.dumps(blobs[self.path]).encode() if self.path in blobs else b""
            self.send_response(200 if self.path in blobs else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", blobs, asked
    server.shutdown()
    server.server_close()


def manifest(config_digest: str = CONFIG_DIGEST) -> str:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config_digest},
            "layers": [],
        }
    )


def stub_image(stub, image_id: dict, body: str) -> None:
    stub.add_response(
        "batch_get_image",
        {"images": [{"imageId": image_id, "imageManifest": body}], "failures": []},
        {**WHERE, "imageIds": [image_id], "acceptedMediaTypes": list(IMAGE_MEDIA_TYPES)},
    )


def stub_config(stub, base: str, blobs: dict, labels: dict) -> None:
    blobs["/config"] = {"architecture": "amd64", "os": "linux", "config": {"Labels": labels}}
    stub.add_response(
        "get_download_url_for_layer",
        {"downloadUrl": f"{base}/config", "layerDigest": CONFIG_DIGEST},
        {**WHERE, "layerDigest": CONFIG_DIGEST},
    )


def test_the_labels_come_from_the_image_config_ecr_points_at(clients, fake, blob_server):
    base, blobs, asked = blob_server
    with Stubber(clients.ecr) as stub:
        stub_image(stub, {"imageTag": "0123456789ab"}, manifest())
        stub_config(stub, base, blobs, {"sagebert.variant": "cpu", "org.opencontainers.image.title": "sagebert"})

        labels = image_labels(clients, fake.image)

        stub.assert_no_pending_responses()
    assert labels == {"sagebert.variant": "cpu", "org.opencontainers.image.title": "sagebert"}
    assert asked == ["/config"]


def test_of_a_multi_platform_index_the_linux_amd64_image_is_read(clients, fake, blob_server):
    base, blobs, _ = blob_server
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"digest": ARM64_DIGEST, "platform": {"os": "linux", "architecture": "arm64"}},
            {"digest": AMD64_DIGEST, "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    }
    image = f"{fake.image.rsplit(':', 1)[0]}@{'sha256:' + 'd' * 64}"
    with Stubber(clients.ecr) as stub:
        stub_image(stub, {"imageDigest": "sha256:" + "d" * 64}, json.dumps(index))
        stub_image(stub, {"imageDigest": AMD64_DIGEST}, manifest())
        stub_config(stub, base, blobs, {"sagebert.variant": "gpu"})

        assert image_labels(clients, image) == {"sagebert.variant": "gpu"}
        stub.assert_no_pending_responses()


def test_labels_that_cannot_be_read_are_none_not_an_error(clients, fake):
    with Stubber(clients.ecr) as stub:
        stub.add_client_error(
            "batch_get_image",
            service_error_code="AccessDeniedException",
            service_message="User is not authorized to perform: ecr:BatchGetImage",
            http_status_code=400,
        )
        assert image_labels(clients, fake.image) is None
    assert image_labels(clients, "docker.io/library/sagebert:1") is None  # not ECR: nothing is asked


def test_a_cpu_image_on_a_gpu_instance_is_transformed_without_an_ami(cli, clients, fake, trained, blob_server):
    base, blobs, _ = blob_server
    trained("job-1", 0.8)
    with Stubber(clients.ecr) as stub:
        stub_image(stub, {"imageTag": "0123456789ab"}, manifest())
        stub_config(stub, base, blobs, {"sagebert.variant": "cpu"})

        result = cli(
            "transform", "--training-job", "job-1", "--input", "s3://sagebert-test/in/", "--output",
            "s3://sagebert-test/out/", "--instance-type", "ml.g5.xlarge", "--dry-run", "--json", clients=clients,
        )  # fmt: skip

    assert result.code == 0, result.err
    job = [json.loads(line)["request"] for line in result.lines][-1]
    assert job["TransformResources"] == {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1}


def test_a_gpu_image_label_sets_the_cuda_13_ami_and_an_unreadable_one_warns_and_assumes_it(
    cli, clients, fake, trained, blob_server
):
    base, blobs, _ = blob_server
    trained("job-1", 0.8)
    deploy = (
        "deploy",
        "--training-job",
        "job-1",
        "--endpoint",
        "ep",
        "--instance-type",
        "ml.g6.xlarge",
        "--dry-run",
        "--json",
    )
    with Stubber(clients.ecr) as stub:
        stub_image(stub, {"imageTag": "0123456789ab"}, manifest())
        stub_config(stub, base, blobs, {"sagebert.variant": "gpu"})
        labelled = cli(*deploy, clients=clients)
    unlabelled = cli(*deploy, clients=clients)  # moto's ECR has no such repository

    for result in (labelled, unlabelled):
        assert result.code == 0, result.err
        config = [json.loads(line)["request"] for line in result.lines][1]
        assert config["ProductionVariants"][0]["InferenceAmiVersion"] == "al2023-ami-sagemaker-inference-gpu-4-1"
    assert "could not be read from its labels" not in labelled.err
    assert "could not be read from its labels in ECR; taking 13.0" in unlabelled.err
