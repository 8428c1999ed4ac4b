"""`serve` with SAGEMAKER_MULTI_MODEL=true: multi-model-server behind the front, real HTTP, two
different trained models loaded from /opt/ml/models (read-only, as SageMaker mounts it), on a
Docker network of its own where a second container plays the neighbour."""

import json
import shutil
import subprocess
import time
import uuid

import pytest
import requests

from support import ServingContainer, make_opt_ml

# SIGKILL every MMS model worker (not this shell, whose own command line names them).
KILL_WORKERS = (
    'for f in /proc/[0-9]*/cmdline; do p=${f#/proc/}; p=${p%/cmdline}; [ "$p" = "$$" ] && continue; '
    'if tr "\\0" " " < "$f" 2>/dev/null | grep -q "model_service_worker"; then kill -9 "$p"; fi; done'
)


@pytest.fixture(scope="module")
def models_root(trained_in_container, tiny_bert, tmp_path_factory):
    """/opt/ml/models with two trained models (different label names) and a broken one."""
    from sagebert.environment import TrainingEnvironment
    from sagebert.hyperparameters import load
    from sagebert.training import train

    root = tmp_path_factory.mktemp("models")
    base, run = trained_in_container
    assert run.returncode == 0
    shutil.copytree(base / "model", root / "tweets" / "model")
    other = make_opt_ml(
        tmp_path_factory.mktemp("other") / "opt_ml",
        train_rows=120,
        test_rows=40,
        pretrained=tiny_bert,
        hyperparameters={"epochs": 1, "label_names": "calm,alarm", "keep_checkpoints": 0},
    )
    env = TrainingEnvironment.read(other)
    train(load(env.hyperparameters), env)
    shutil.copytree(other / "model", root / "alarms" / "model")
    (root / "broken" / "model").mkdir(parents=True)
    (root / "broken" / "model" / "weights.bin").write_bytes(b"not a model")
    return root


@pytest.fixture(scope="module")
def network():
    """A user-defined Docker network, as SageMaker's containers share one."""
    name = f"sagebert-test-net-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "network", "create", name], check=True, capture_output=True)
    yield name
    subprocess.run(["docker", "network", "rm", name], capture_output=True)


@pytest.fixture(scope="module")
def mme(image, models_root, network):
    # SAGEMAKER_MODEL_SERVER_WORKERS unset: the defaults themselves must not oversubscribe the CPUs.
    with ServingContainer(
        image,
        models_root,
        {"SAGEMAKER_MULTI_MODEL": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "1"},
        volume_target="/opt/ml/models:ro",
        extra=("--network", network),
    ) as server:
        server.wait_healthy()
        yield server


NEIGHBOUR_PROBE = """
import json, socket, sys
host, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
result = {}
for port in ports:
    try:
        socket.create_connection((host, port), timeout=5).close()
        result[port] = "open"
    except OSError as exc:
        result[port] = type(exc).__name__
print(json.dumps(result))
"""


def test_only_the_front_is_reachable_from_a_neighbour_container(image, mme, network):
    probe = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            network,
            "--entrypoint",
            "python",
            image,
            "-c",
            NEIGHBOUR_PROBE,
            mme.name,
            "8080",
            "8081",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert json.loads(probe.stdout) == {"8080": "open", "8081": "ConnectionRefusedError"}
    # ... while multi-model-server answers on the container's loopback (the front's way in).
    inside = mme.run_python("import urllib.request as u; print(u.urlopen('http://127.0.0.1:8081/ping').status)")
    assert inside.strip() == "200"


def test_the_front_refuses_what_the_contract_does_not_hold(mme):
    sneaky = requests.post(
        mme.url + "/models?model_name=qs&url=/tmp", data="x", headers={"Content-Type": "text/plain"}, timeout=30
    )
    assert sneaky.status_code == 400
    for name, url in (("../../etc", "/opt/ml/models/tweets/model"), ("etc", "/etc"), ("proc", "/proc/self")):
        response = requests.post(mme.url + "/models", json={"model_name": name, "url": url}, timeout=30)
        assert response.status_code == 400 and "passwd" not in response.text and "environ" not in response.text
    listed = {m["modelName"] for m in requests.get(mme.url + "/models", timeout=5).json()["models"]}
    assert not listed & {"qs", "../../etc", "etc", "proc"}
    assert requests.get(mme.url + "/ping", timeout=5).status_code == 200


def load(server, name):
    return requests.post(
        server.url + "/models", json={"model_name": name, "url": f"/opt/ml/models/{name}/model"}, timeout=120
    )


def invoke(server, name, texts):
    return requests.post(f"{server.url}/models/{name}/invoke", json={"inputs": texts}, timeout=60)


def test_two_models_load_and_answer_each_with_its_own_labels(mme):
    assert load(mme, "tweets").status_code == 200
    assert load(mme, "alarms").status_code == 200
    tweets = invoke(mme, "tweets", ["Just happened a terrible car crash", "nice day"])
    alarms = invoke(mme, "alarms", ["Just happened a terrible car crash"])
    assert tweets.status_code == alarms.status_code == 200
    assert {p["label"] for p in tweets.json()["predictions"]} <= {"Not a disaster", "Real disaster"}
    assert set(alarms.json()["predictions"][0]["probabilities"]) == {"calm", "alarm"}
    listed = {m["modelName"] for m in requests.get(mme.url + "/models", timeout=5).json()["models"]}
    assert listed == {"tweets", "alarms"}


def test_loading_a_loaded_model_again_is_409(mme):
    load(mme, "tweets")
    assert load(mme, "tweets").status_code == 409


def test_unload_then_404_then_load_again(mme):
    load(mme, "alarms")
    assert requests.delete(mme.url + "/models/alarms", timeout=30).status_code == 200
    assert invoke(mme, "alarms", ["x"]).status_code == 404
    assert requests.get(mme.url + "/models/alarms", timeout=5).status_code == 404
    assert requests.delete(mme.url + "/models/alarms", timeout=5).status_code == 404
    assert load(mme, "alarms").status_code == 200
    assert invoke(mme, "alarms", ["x"]).status_code == 200


def test_a_bad_model_directory_is_a_clear_error_and_the_server_keeps_serving(mme):
    response = load(mme, "broken")
    assert response.status_code == 400
    assert "config.json is missing." in response.json()["error"] and "weights.bin" not in response.text
    assert requests.get(mme.url + "/ping", timeout=5).status_code == 200
    load(mme, "tweets")
    assert invoke(mme, "tweets", ["still fine"]).status_code == 200


def test_errors_are_json_and_the_payload_limit_applies(mme):
    load(mme, "tweets")
    bad = requests.post(
        mme.url + "/models/tweets/invoke", data="x", headers={"Content-Type": "application/xml"}, timeout=30
    )
    assert bad.status_code == 415 and "Unsupported Content-Type" in bad.json()["error"] and "Traceback" not in bad.text
    too_big = requests.post(mme.url + "/models/tweets/invoke", json={"inputs": ["fire " * 100] * 2500}, timeout=30)
    assert too_big.status_code == 413


def test_the_server_settings_reach_mms_without_oversubscribing_the_cpus(mme):
    load(mme, "tweets")
    described = requests.get(mme.url + "/models/tweets", timeout=5).json()
    workers = (described[0] if isinstance(described, list) else described)["workers"]
    cpus = int(subprocess.run(["docker", "exec", mme.name, "nproc"], capture_output=True, text=True).stdout)
    assert len(workers) == 1  # one worker per model unless SAGEMAKER_MODEL_SERVER_WORKERS says more
    assert f"model worker: 1 worker(s) per model x {cpus} torch thread(s), {cpus} CPU(s) granted" in mme.logs()
    config = subprocess.run(
        ["docker", "exec", mme.name, "cat", "/etc/sagemaker-mms.properties"], capture_output=True, text=True
    ).stdout
    assert "vmargs=-XX:-UseContainerSupport" in config  # the JVM sees every CPU
    assert f"max_request_size={1024 * 1024}" in config
    assert f"Number of CPUs: {cpus}" in mme.logs()


def test_ping_turns_503_when_a_models_workers_die(mme):
    load(mme, "tweets")
    assert requests.get(mme.url + "/ping", timeout=5).status_code == 200
    subprocess.run(["docker", "exec", mme.name, "sh", "-c", KILL_WORKERS], check=True)
    statuses, deadline = [], time.monotonic() + 60  # however long MMS takes to see them dead
    while time.monotonic() < deadline:
        statuses.append(requests.get(mme.url + "/ping", timeout=5).status_code)
        if statuses[-1] == 503:
            break
        time.sleep(0.25)  # a poll interval: the ping decides
    assert statuses[-1] == 503, statuses
    internal = subprocess.run(
        [
            "docker",
            "exec",
            mme.name,
            "python",
            "-c",
            "import urllib.request as u; r = u.urlopen('http://127.0.0.1:8081/ping'); "
            "print(r.status, r.read().decode())",
        ],
        capture_output=True,
        text=True,
    ).stdout
    assert internal.startswith("200")  # what SageMaker would have seen without the front


def test_sigterm_stops_the_container_cleanly(image, models_root):
    with ServingContainer(
        image, models_root, {"SAGEMAKER_MULTI_MODEL": "true"}, volume_target="/opt/ml/models:ro"
    ) as server:
        server.wait_healthy()
        load(server, "tweets")
        subprocess.run(["docker", "kill", "--signal", "TERM", server.name], check=True, capture_output=True)
        assert server.exit_code() == 0
