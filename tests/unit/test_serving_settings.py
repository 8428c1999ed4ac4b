"""Server settings: declared once, read once, from the CPUs and memory the container was granted (fake cgroup
files here), and the GPU each worker takes."""

from dataclasses import fields
from types import SimpleNamespace

import pytest

from sagebert.container.serve import _pre_fork, choose_gpu, gunicorn_options
from sagebert.errors import SagebertError
from sagebert.serving import resources
from sagebert.serving.settings import ServingSettings, describe


def cgroup(tmp_path, cpu_max="max 100000", memory_max="max", usage=None, inactive=0):
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    (tmp_path / "memory.max").write_text(memory_max + "\n")
    if usage is not None:
        (tmp_path / "memory.current").write_text(f"{usage}\n")
        (tmp_path / "memory.stat").write_text(f"anon 1\ninactive_file {inactive}\n")
    return tmp_path


@pytest.fixture
def eight_cpus(monkeypatch):
    monkeypatch.setattr(resources, "affinity_cpus", lambda: 8)


def test_settings_from_the_environment(tmp_path, eight_cpus):
    settings = ServingSettings.from_env(
        {
            "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": "20",
            "SAGEMAKER_BIND_TO_PORT": "9090",
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
            "SAGEMAKER_MODEL_SERVER_TIMEOUT": "30",
            "SAGEMAKER_BATCH": "true",
        },
        cgroup(tmp_path),
    )
    assert (settings.workers, settings.port, settings.default_accept, settings.timeout) == (3, 9090, "text/csv", 30)
    assert settings.max_concurrent_transforms == 5  # 5 x 20 MB stays within batch transform's 100 MB
    assert settings.batch_transform and settings.torch_threads_per_worker == 2  # 8 CPUs / 3 workers


@pytest.mark.parametrize(
    "cpu_max, memory_max, workers, threads",
    [
        ("max 100000", "max", 8, 1),  # no limits: one worker per CPU
        ("200000 100000", "max", 2, 1),  # docker run --cpus 2
        ("150000 100000", "max", 2, 1),  # --cpus 1.5: rounded up
        ("max 100000", str(1024 * 2**20), 2, 4),  # a 1 GB serverless endpoint: 2 workers
        ("max 100000", str(2048 * 2**20), 7, 1),
        ("max 100000", str(600 * 2**20), 1, 8),  # too little memory for a second worker
    ],
)
def test_default_workers_follow_the_granted_cpus_and_memory(
    tmp_path, eight_cpus, cpu_max, memory_max, workers, threads
):
    settings = ServingSettings.from_env({}, cgroup(tmp_path, cpu_max, memory_max))
    assert (settings.workers, settings.torch_threads_per_worker) == (workers, threads)


def test_cgroup_v1_limits_are_read_too(tmp_path, eight_cpus):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text(f"{2**63 - 4096}\n")  # v1's "no limit"
    assert resources.granted_cpus(tmp_path) == 3 and resources.granted_memory_mb(tmp_path) is None


def test_multi_model_workers_default_to_one_per_model_with_every_cpu(tmp_path, eight_cpus):
    settings = ServingSettings.from_env({"SAGEMAKER_MULTI_MODEL": "true"}, cgroup(tmp_path))
    assert settings.multi_model and settings.workers * settings.torch_threads_per_worker == 8


def test_memory_available_is_the_cgroup_limit_minus_usage_without_page_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "host_available_mb", lambda: 10_000.0)
    base = cgroup(tmp_path, memory_max=str(3000 * 2**20), usage=2000 * 2**20, inactive=500 * 2**20)
    assert resources.memory_available_mb(base) == pytest.approx(1500)
    assert resources.memory_available_mb(cgroup(tmp_path / "..", memory_max="max", usage=0)) == 10_000.0


@pytest.mark.parametrize(
    "name, value, accepted",
    [
        ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "3600", True),  # asynchronous inference runs up to an hour
        ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "3601", False),
        ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "1024", True),  # asynchronous inference takes up to 1 GB
        ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "1025", False),
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "many", False),
        ("SAGEBERT_SERVER_THREADS", "2", False),  # 2 threads are kept for /ping
    ],
)
def test_limits_up_to_what_sagemaker_allows(tmp_path, eight_cpus, name, value, accepted):
    if accepted:
        ServingSettings.from_env({name: value}, cgroup(tmp_path))
    else:
        with pytest.raises(SagebertError, match=name):
            ServingSettings.from_env({name: value}, cgroup(tmp_path))


def test_gunicorn_gets_the_timeout_and_the_sagebert_worker(tmp_path, eight_cpus):
    options = gunicorn_options(ServingSettings.from_env({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "3600"}, cgroup(tmp_path)))
    assert options["timeout"] == 3600 and options["worker_class"] == "sagebert.serving.worker.SagebertWorker"


def test_a_replacement_worker_takes_the_gpu_of_the_worker_it_replaces(monkeypatch):
    import sagebert.container.serve as serve

    monkeypatch.setattr(serve, "gpu_count", lambda: 2)
    server = SimpleNamespace(WORKERS={})  # gunicorn's master: its live workers by pid
    for pid in range(4):  # four workers on two GPUs
        worker = SimpleNamespace()
        _pre_fork(server, worker)
        server.WORKERS[pid] = worker
    assert [w.gpu_slot for w in server.WORKERS.values()] == [0, 1, 0, 1]
    for dead in (1, 0, 3, 1):  # workers die and are replaced, in any order, many times over
        slot = server.WORKERS.pop(dead).gpu_slot
        replacement = SimpleNamespace()
        _pre_fork(server, replacement)
        assert replacement.gpu_slot == slot
        server.WORKERS[dead] = replacement
    assert sorted(w.gpu_slot for w in server.WORKERS.values()) == [0, 0, 1, 1]


def test_choose_gpu_fills_the_least_used():
    assert choose_gpu([], 4) == 0
    assert choose_gpu([0, 1, 2], 4) == 3
    assert choose_gpu([0, 1, 0, 1, None], 2) == 0


def test_an_unset_or_empty_variable_takes_the_declared_default(tmp_path, eight_cpus):
    machine = {"model_dir", "workers", "max_concurrent_transforms", "models_dir", "cpus"}
    declared = ServingSettings()
    for environ in ({}, {v.name: " " for v in describe()}):
        read = ServingSettings.from_env(environ, cgroup(tmp_path))
        for field in fields(ServingSettings):
            if field.name not in machine:
                assert getattr(read, field.name) == getattr(declared, field.name), field.name


@pytest.mark.parametrize(
    "name, value, fix",
    [
        ("SAGEBERT_INFERENCE_PRECISION", "fp8", "one of auto, fp32, bf16, fp16, int8, onnx-int8"),
        ("SAGEMAKER_SAFE_PORT_RANGE", "21000", "a port range LOW-HIGH"),
        ("SAGEMAKER_SAFE_PORT_RANGE", "9-2", "LOW <= HIGH"),
        ("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/html", "one of application/json"),
        ("SAGEBERT_MAX_TEXTS_PER_REQUEST", "1e3", "an integer of at least 1"),
        ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "nan", "a number from 0.001 to 1024"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_it_allows(tmp_path, eight_cpus, name, value, fix):
    with pytest.raises(SagebertError) as raised:
        ServingSettings.from_env({name: value}, cgroup(tmp_path))
    assert raised.value.message == f"{name} is {value!r}." and fix in raised.value.fix


def test_values_are_parsed_once_into_their_types(tmp_path, eight_cpus):
    settings = ServingSettings.from_env(
        {
            "SAGEMAKER_SAFE_PORT_RANGE": "21000-21999",
            "SAGEBERT_INFERENCE_PRECISION": "FP32",
            "SAGEMAKER_MULTI_MODEL": "True",
            "SAGEBERT_METRICS": "off",
            "SAGEBERT_LOG_LEVEL": "debug",
        },
        cgroup(tmp_path),
    )
    assert settings.safe_port_range == (21000, 21999) and settings.precision == "fp32"
    assert settings.multi_model and settings.metrics is False and settings.log_level == "DEBUG"
