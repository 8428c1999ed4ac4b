"""The users' CI workflow (.github/workflows/deploy.yml): valid YAML, the right triggers and
permissions, the steps in order, and `sagebert` command lines our own parser accepts."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sagebert.cli import build_parser

pytestmark = pytest.mark.aws

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "deploy.yml"
YAMLLINT_CONFIG = (
    "{extends: default, rules: {line-length: {max: 120}, truthy: {check-keys: false}, "
    "comments: {min-spaces-from-content: 1}}}"
)


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def run_scripts(workflow: dict, job: str) -> list[str]:
    return [step["run"] for step in workflow["jobs"][job]["steps"] if "run" in step]


def sagebert_commands(script: str) -> list[list[str]]:
    """Each ``sagebert ...`` command line in a shell script, variables replaced by a word."""
    joined = re.sub(r"\\\n\s*", " ", script)
    commands = []
    for line in joined.splitlines():
        match = re.search(r"(?:^|\s)sagebert\s+(.*)", line)
        if not match:
            continue
        words = shlex.split(re.sub(r"\$\{[^}]*\}|\$\w+", "VALUE", match.group(1)))
        stop = next((i for i, w in enumerate(words) if w in (">", ";", "&&", "||", "|", "then")), len(words))
        commands.append(words[:stop])
    return commands


def test_the_workflow_passes_yamllint():
    result = subprocess.run(
        [sys.executable, "-m", "yamllint", "-s", "-d", YAMLLINT_CONFIG, str(WORKFLOW)], capture_output=True, text=True
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_it_runs_on_pushes_to_main_with_an_oidc_token(workflow):
    assert workflow[True]["push"]["branches"] == ["main"]  # YAML 1.1 reads the key `on` as True
    assert workflow["permissions"] == {"id-token": "write", "contents": "read"}


def test_the_deploy_job_runs_after_the_tests_and_assumes_the_role_first(workflow):
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "test"
    steps = deploy["steps"]
    uses = [step.get("uses", "") for step in steps]
    credentials = next(i for i, u in enumerate(uses) if u.startswith("aws-actions/configure-aws-credentials@"))
    assert steps[credentials]["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    runs = [(i, step["run"]) for i, step in enumerate(steps) if "run" in step]
    order = [
        next(i for i, run in runs if needle in run)
        for needle in ("./build_and_push.sh", "sagebert train", "sagebert update")
    ]
    assert credentials < order[0] < order[1] < order[2]


def test_the_test_job_runs_the_test_suite(workflow):
    assert any("scripts/test.sh" in run for run in run_scripts(workflow, "test"))


def test_training_waits_so_a_failed_job_stops_the_rollout(workflow):
    train = next(
        cmd for script in run_scripts(workflow, "deploy") for cmd in sagebert_commands(script) if cmd[0] == "train"
    )
    assert "--wait" in train


def test_every_sagebert_command_in_the_workflow_is_accepted_by_the_cli(workflow):
    commands = [
        cmd for job in workflow["jobs"] for script in run_scripts(workflow, job) for cmd in sagebert_commands(script)
    ]
    assert {cmd[0] for cmd in commands} == {"train", "status", "update", "deploy", "invoke"}
    parser = build_parser()
    for command in commands:
        parser.parse_args(command)  # exits (fails the test) on anything it would reject
