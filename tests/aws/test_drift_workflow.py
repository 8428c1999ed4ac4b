"""The example drift workflow (.github/workflows/drift-report.yml): linted, off until the
repository variable turns it on, pinned like the deploy workflow, and its command accepted by
the CLI's real parser."""

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

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "drift-report.yml"
DEPLOY = REPO / ".github" / "workflows" / "deploy.yml"
YAMLLINT_CONFIG = (
    "{extends: default, rules: {line-length: {max: 120}, truthy: {check-keys: false}, "
    "comments: {min-spaces-from-content: 1}}}"
)


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_the_workflow_passes_yamllint():
    result = subprocess.run(
        [sys.executable, "-m", "yamllint", "-d", YAMLLINT_CONFIG, str(WORKFLOW)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_is_scheduled_but_off_until_the_variable_turns_it_on(workflow):
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as true
    assert triggers["schedule"] and "workflow_dispatch" in triggers
    assert workflow["jobs"]["report"]["if"] == "vars.DRIFT_REPORT == 'true'"


def test_its_actions_are_pinned_to_the_commits_the_deploy_workflow_uses():
    pinned = set(re.findall(r"uses: (\S+@[0-9a-f]{40})  # v", DEPLOY.read_text()))
    used = re.findall(r"uses: (\S+)", WORKFLOW.read_text())
    assert used and all(action in pinned for action in used)


def test_the_report_command_is_accepted_by_the_cli_and_fails_on_drift(workflow):
    script = workflow["jobs"]["report"]["steps"][-1]["run"]
    line = next(line for line in script.splitlines() if line.strip().startswith("sagebert "))
    values = {"$ENDPOINT_NAME": "ep", "$DRIFT_SINCE": "24h"}
    args = build_parser().parse_args([values.get(word, word) for word in shlex.split(line)][1:])
    assert args.command == "report" and args.fail_on_drift and args.endpoint == "ep"
