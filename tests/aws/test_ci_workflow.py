"""The users' CI workflow (.github/workflows/deploy.yml): linted, and each claim its header makes
checked on its structure — and its promote script run under bash against a stand-in `sagebert`
that checks every command line with the real parser and answers as a scenario says."""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sagebert.cli import build_parser

pytestmark = pytest.mark.aws

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "deploy.yml"
YAMLLINT_CONFIG = (
    "{extends: default, rules: {line-length: {max: 120}, truthy: {check-keys: false}, "
    "comments: {min-spaces-from-content: 1}}}"
)
# Each action at the commit of its release tag (read from the actions' own repositories' tags).
PINNED = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "aws-actions/configure-aws-credentials": ("e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3"),
    "aws-actions/amazon-ecr-login": ("03f1aad4c6c7ffd436567f42f9384779290529bd", "v2.1.7"),
}


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps(workflow: dict, job: str) -> list[dict]:
    return workflow["jobs"][job]["steps"]


def step_index(workflow: dict, job: str, needle: str) -> int:
    """The index of the first step whose run script or `uses` contains ``needle``."""
    return next(i for i, s in enumerate(steps(workflow, job)) if needle in s.get("run", "") + s.get("uses", ""))


def expand_arrays(script: str) -> str:
    """``"${name[@]}"`` replaced by every word the script ever puts into the bash array ``name``."""
    words: dict[str, list[str]] = {}
    for name, body in re.findall(r"(\w+)\+?=\(([^)]*)\)", script):
        words.setdefault(name, []).extend(shlex.split(body))
    return re.sub(r'"\$\{(\w+)\[@\]\}"', lambda m: " ".join(shlex.quote(w) for w in words.get(m.group(1), [])), script)


def defaults(workflow: dict) -> dict[str, str]:
    """The workflow-level variables' defaults (``${{ vars.X || 'd' }}`` → d)."""
    found = {}
    for name, expression in workflow["env"].items():
        default = re.search(r"\|\| '([^']*)'", str(expression))
        if default and default.group(1):
            found[name] = default.group(1)
    return found


def sagebert_commands(script: str, values: dict[str, str] | None = None) -> list[list[str]]:
    """Each ``sagebert ...`` command line in a shell script, variables replaced by their default
    (``values``) or a word."""
    joined = re.sub(r"\\\n\s*", " ", expand_arrays(script))
    commands = []
    for line in joined.splitlines():
        # a command at the start of a line or in $(...), not a word in a message
        match = re.search(r"\$\(sagebert\s+([^)]*)\)", line) or re.search(r"^\s*sagebert\s+(.*)", line)
        if not match:
            continue

        def value(variable: re.Match) -> str:
            return (values or {}).get(variable.group(0).strip("${}"), "VALUE")

        words = shlex.split(re.sub(r"\$\{[^}]*\}|\$\w+", value, match.group(1)))
        stop = next((i for i, w in enumerate(words) if w in (">", ";", "&&", "||", "|", "then")), len(words))
        commands.append(words[:stop])
    return commands


# ---- lint and triggers ----------------------------------------------------------------------------------
def test_the_workflow_passes_yamllint():
    result = subprocess.run(
        [sys.executable, "-m", "yamllint", "-s", "-d", YAMLLINT_CONFIG, str(WORKFLOW)], capture_output=True, text=True
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_it_runs_on_pushes_to_main_that_change_the_model_and_on_demand(workflow):
    on = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert on["push"]["branches"] == ["main"]
    assert {"src/**", "container/**", "Dockerfile", "requirements/**", ".github/workflows/deploy.yml"} <= set(
        on["push"]["paths"]
    )
    assert "workflow_dispatch" in on


def test_every_action_is_pinned_to_its_release_commit_with_the_version_beside_it():
    uses = re.findall(r"uses: ([\w-]+/[\w-]+)@(\S+)(.*)", WORKFLOW.read_text())

    assert uses
    for action, ref, comment in uses:
        assert action in PINNED, action
        sha, version = PINNED[action]
        assert (ref, comment.strip()) == (sha, f"# {version}"), action


# ---- permissions: an OIDC token only where a job assumes the role -----------------------------------------
def test_only_the_jobs_that_assume_the_role_may_request_an_oidc_token(workflow):
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        assumes = any("configure-aws-credentials" in s.get("uses", "") for s in job["steps"])
        token = job.get("permissions", {}).get("id-token")
        assert (token == "write") == assumes, name
    assert "permissions" not in workflow["jobs"]["test"]


def test_each_sessions_duration_covers_its_job(workflow):
    for name, job in workflow["jobs"].items():
        for step in job["steps"]:
            if "configure-aws-credentials" in step.get("uses", ""):
                assert int(step["with"]["role-duration-seconds"]) >= 60 * job["timeout-minutes"], name


# ---- build once, test that image, push it by digest -----------------------------------------------------------
def test_the_pushed_image_is_the_one_the_container_tests_ran_on(workflow):
    build = step_index(workflow, "image", "container/build-image.sh")
    tests = step_index(workflow, "image", "scripts/test.sh")
    push = step_index(workflow, "image", "./build_and_push.sh")
    check = step_index(workflow, "image", 'docker pull "$PUSHED"')
    job = steps(workflow, "image")
    tag = re.search(r"build-image\.sh (\S+)", job[build]["run"]).group(1)

    assert build < tests < push < check
    assert job[tests]["env"]["SAGEBERT_TEST_IMAGE"] == tag and "-m container" in job[tests]["run"]
    assert f"--source-image {tag}" in job[push]["run"]
    assert job[check]["env"]["PUSHED"] == "${{ steps.push.outputs.image_digest_uri }}"
    assert "tested-image-id" in job[check]["run"] and "tested-image-id" in job[build]["run"]
    assert workflow["jobs"]["image"]["outputs"]["image"] == "${{ steps.push.outputs.image_digest_uri }}"


def test_the_test_job_runs_everything_but_the_container_tests_which_run_on_the_image(workflow):
    assert 'scripts/test.sh -m "not container"' in steps(workflow, "test")[-1]["run"]


def test_training_and_promotion_use_the_pushed_digest_and_training_waits(workflow):
    train = next(s for s in steps(workflow, "train") if s.get("id") == "train")
    assert train["env"]["IMAGE"] == "${{ needs.image.outputs.image }}"
    [command] = sagebert_commands(train["run"])
    assert command[0] == "train" and "--wait" in command
    promote = next(s for s in steps(workflow, "promote") if "sagebert update" in s.get("run", ""))
    assert promote["env"]["IMAGE"] == "${{ needs.image.outputs.image }}"


def test_pip_and_docker_layers_are_cached(workflow):
    for name in workflow["jobs"]:
        setup = next(s for s in steps(workflow, name) if "setup-python" in s.get("uses", ""))
        assert setup["with"]["cache"] == "pip", name
    build = steps(workflow, "image")[step_index(workflow, "image", "container/build-image.sh")]
    assert "--cache-from $CACHE" in build["run"] and "BUILDKIT_INLINE_CACHE=1" in build["run"]


def test_promotion_waits_for_the_environments_reviewers(workflow):
    promote = workflow["jobs"]["promote"]
    assert promote["environment"]["name"] == "${{ vars.DEPLOY_ENVIRONMENT || 'production' }}"
    assert promote["needs"] == ["image", "train"]


def test_every_sagebert_command_in_the_workflow_is_accepted_by_the_cli(workflow):
    commands = [
        cmd
        for job in workflow["jobs"]
        for step in steps(workflow, job)
        for cmd in sagebert_commands(step.get("run", ""), {**defaults(workflow), "pair": "NAME=VALUE"})
    ]
    assert {cmd[0] for cmd in commands} == {"train", "status", "update", "deploy", "invoke"}
    parser = build_parser()
    for command in commands:
        parser.parse_args(command)  # exits (fails the test) on anything it would reject


# ---- the promote script, run under bash --------------------------------------------------------------------
STAND_IN = """#!{python}
# A stand-in `sagebert`: checks the command line with the real parser, records it, answers as told.
import os, sys
from sagebert.cli import build_parser
build_parser().parse_args(sys.argv[1:])
with open(os.environ["CALLS"], "a") as calls:
    calls.write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[1:2] == ["status"]:
    print(os.environ["ENDPOINT_STATE"])
elif sys.argv[1:2] == ["update"]:
    sys.exit(int(os.environ["UPDATE_EXIT"]))
"""


@pytest.fixture
def promote(workflow, tmp_path):
    """Run the promote step's script: ``promote(state, update_exit=0, **variables)`` → (code, stdout, calls)."""
    script = next(s for s in steps(workflow, "promote") if "sagebert update" in s.get("run", ""))["run"]
    stand_in = tmp_path / "bin" / "sagebert"
    stand_in.parent.mkdir()
    stand_in.write_text(STAND_IN.format(python=sys.executable))
    stand_in.chmod(stand_in.stat().st_mode | stat.S_IEXEC)

    def run(state: str, update_exit: int = 0, **variables: str):
        calls = tmp_path / "calls"
        calls.write_text("")
        env = {
            **os.environ,
            "PATH": f"{stand_in.parent}:{os.environ['PATH']}",
            "PYTHONPATH": str(REPO / "src"),
            "CALLS": str(calls),
            "ENDPOINT_STATE": state,
            "UPDATE_EXIT": str(update_exit),
            "ENDPOINT_NAME": "disaster-tweets",
            "JOB": "sagebert-abc1234-99-1",
            "IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sagebert@sha256:" + "0" * 64,
            "ENDPOINT_INSTANCE_TYPE": "ml.c5.xlarge",
            "ENDPOINT_INSTANCE_COUNT": "2",
            "ENDPOINT_ENV": "",
            "MIN_F1_GAIN": "0",
            "ROLLBACK_ALARMS": "",
            **variables,
        }
        done = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout + done.stderr, calls.read_text().splitlines()

    return run


def test_the_first_run_deploys_with_the_same_variables_update_uses(promote):
    code, out, calls = promote("missing", ENDPOINT_ENV="SAGEMAKER_MODEL_SERVER_WORKERS=2")

    assert code == 0, out
    assert calls[1].startswith("deploy --endpoint disaster-tweets --training-job sagebert-abc1234-99-1 --image ")
    assert "--instance-type ml.c5.xlarge --env SAGEMAKER_MODEL_SERVER_WORKERS=2 --instance-count 2" in calls[1]


def test_an_in_service_endpoint_is_updated_only_if_better_with_the_alarms_configured(promote):
    code, out, calls = promote(
        "InService",
        ROLLBACK_ALARMS="sagebert-5xx sagebert-latency",
        MIN_F1_GAIN="0.005",
        ENDPOINT_ENV="SAGEMAKER_MODEL_SERVER_WORKERS=2",
    )

    assert code == 0, out
    update = calls[1]
    assert update.startswith("update --endpoint disaster-tweets --training-job sagebert-abc1234-99-1 --image ")
    assert "--instance-type ml.c5.xlarge --env SAGEMAKER_MODEL_SERVER_WORKERS=2" in update
    assert "--alarm sagebert-5xx --alarm sagebert-latency" in update
    assert "--require-better eval:f1 --min-delta 0.005" in update


def test_a_model_that_is_not_better_ends_the_run_green_with_a_notice(promote):
    code, out, _ = promote("InService", update_exit=3)

    assert code == 0
    assert (
        "::notice::sagebert-abc1234-99-1 is not better than the model disaster-tweets serves: nothing was changed."
        in out
    )


def test_a_failed_update_fails_the_run(promote):
    assert promote("InService", update_exit=1)[0] == 1


def test_a_failed_endpoint_stops_with_the_documented_way_out(promote):
    code, out, calls = promote("Failed")

    assert code == 1
    assert "::error::Endpoint disaster-tweets is Failed" in out
    assert "sagebert delete --endpoint disaster-tweets --with-models --yes" in out
    assert [call.split()[0] for call in calls] == ["status"]


def test_an_endpoint_in_the_middle_of_a_change_is_left_alone(promote):
    code, out, calls = promote("Updating")

    assert code == 1 and "is Updating; re-run this workflow once it is InService" in out
    assert len(calls) == 1
