"""What the image holds: the size bound the README states, a Java runtime with only what
multi-model-server needs, no build tools, and bytecode for what `serve` and `train` import.

One `docker run` gathers the facts (module-scoped); the tests read them."""

import json
import subprocess

import pytest

# README "The image" -> Size: the CPU image stays under 1.5 GB, as `docker images` counts (10^9).
CPU_IMAGE_BOUND_BYTES = 1_500_000_000
# Programs a build needs and the image must not carry: compilers, the JDK's tools, installers.
BUILD_TOOLS = ("gcc", "cc", "c++", "javac", "jlink", "jdeps", "jar", "jshell", "pip", "pip3", "wheel")
# What `serve` and `train` import when their modules load (the lazily imported rest is traced by
# benchmarks/image.py imports, which made container/bytecode-modules.txt).
ENTRY_MODULES = (
    "sagebert.container.serve",
    "sagebert.container.training_module",
    "sagebert.container.train_entry",
    "sagebert.serving.app",
    "sagebert.serving.mms_handler_service",
    "sagebert.serving.inference",
    "sagebert.training",
    "sagemaker_training.cli.train",
    "sagemaker_inference.model_server",
)

PROBE = r"""
import json, os, shutil, subprocess, sys, sysconfig
site = sysconfig.get_paths()["purelib"]
verbose = subprocess.run(
    [sys.executable, "-v", "-c", "import " + ", ".join(sys.argv[1:-1])], capture_output=True, text=True
)
loaded = [line.split("code object from ", 1)[1].strip("'") for line in verbose.stderr.splitlines()
          if line.startswith("# code object from ")]
java = os.environ.get("JAVA_HOME", "")
facts = {
    "import_returncode": verbose.returncode,
    "import_error": verbose.stderr[-2000:] if verbose.returncode else "",
    "from_source": sorted(p for p in loaded if p.endswith(".py") and p.startswith(site)),
    "from_bytecode": sum(p.endswith(".pyc") and p.startswith(site) for p in loaded),
    "on_path": {tool: shutil.which(tool) for tool in sys.argv[-1].split(",")},
    "java_home": java,
    "java_modules": subprocess.run([os.path.join(java, "bin", "java"), "--list-modules"],
                                   capture_output=True, text=True).stdout.split() if java else [],
    "java_dirs": sorted(os.listdir(java)) if java else [],
    "other_jvms": os.path.isdir("/usr/lib/jvm"),
    "tests_dirs": [os.path.join(d, n) for d, dirs, _ in os.walk(site) for n in dirs if n == "tests"],
    "packages": sorted(os.listdir(site)),
}
print(json.dumps(facts))
"""


@pytest.fixture(scope="module")
def facts(image):
    done = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "python", image, "-c", PROBE, *ENTRY_MODULES, ",".join(BUILD_TOOLS)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def inspected(image):
    out = subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]


def test_the_cpu_image_stays_under_the_size_the_readme_states(inspected):
    if inspected["Config"]["Labels"].get("sagebert.variant") != "cpu":
        pytest.skip("the bound is the CPU image's; the GPU image carries CUDA torch")
    assert inspected["Size"] <= CPU_IMAGE_BOUND_BYTES, f"{inspected['Size'] / 1e9:.3f} GB"


def test_the_java_runtime_holds_what_mms_needs_and_no_jdk(facts):
    assert facts["java_home"] == "/opt/java"
    modules = {m.split("@")[0] for m in facts["java_modules"]}
    # log4j (java.desktop's java.beans, java.management, java.naming, java.scripting, java.xml),
    # gson (java.sql) and netty (jdk.unsupported), all seen loading classes in an MMS run.
    assert {"java.base", "java.desktop", "java.management", "java.naming", "java.scripting", "java.sql"} <= modules
    assert {"java.xml", "java.logging", "jdk.unsupported"} <= modules
    assert not modules & {"java.compiler", "jdk.compiler", "jdk.jlink", "jdk.jdeps", "jdk.jshell", "java.rmi"}
    assert not {"jmods", "include", "man"} & set(facts["java_dirs"])
    assert not facts["other_jvms"]  # no distribution JRE besides it


def test_no_compiler_jdk_tool_or_installer_is_on_the_path(facts):
    found = {tool: path for tool, path in facts["on_path"].items() if path}
    assert found == {}


def test_what_neither_train_nor_serve_uses_is_left_out(facts):
    assert facts["tests_dirs"] == []
    assert not [p for p in facts["packages"] if p.split("-")[0] in ("pip", "wheel")]
    assert "setuptools" in facts["packages"] and "pkg_resources" in facts["packages"]  # sagemaker-inference


def test_what_serve_and_train_import_at_start_loads_from_bytecode(facts):
    assert facts["import_returncode"] == 0, facts["import_error"]
    assert facts["from_bytecode"] > 1000
    # A module here was imported from source: container/bytecode-modules.txt is older than the
    # locks. Regenerate it: .venv/bin/python benchmarks/image.py imports IMAGE --output ...
    assert facts["from_source"] == []
