"""The users' CI workflow (.github/workflows/deploy.yml): linted, and each claim its header makes
checked on its structure — one role per job trusted only for its environment (docs/iam/), no
credentials where tests or unpinned installs run, pull requests test only, CLI-only changes do
not retrain — and its promote script run under bash against a stand-in `sagebert` that checks
every command line with the real parser and answers as a scenario says; the staging load test
run against moto."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sagebert.aws.clients import AwsClients
from sagebert.cli import build_parser

pytestmark = pytest.mark.aws

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "deploy.yml"
TRUST_POLICIES = REPO / "docs" / "iam"
# The role each job assumes, and the GitHub environment whose OIDC subject alone that role trusts.
ROLES = {
    "build-push": ("BUILD_PUSH_ROLE_ARN", "build-push", "trust-build-push.json"),
    "train": ("TRAIN_ROLE_ARN", "train", "trust-train.json"),
    "staging": ("STAGING_ROLE_ARN", "staging", "trust-staging.json"),
    "promote": ("PROMOTE_ROLE_ARN", "production", "trust-promote.json"),
}
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
        stop = next((i for i, w in enumerate(words) if w in (">", "2>", ";", "&&", "||", "|", "then")), len(words))
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


def triggers(paths: list[str], changed: list[str]) -> bool:
    """GitHub's `paths` filter: a file counts when the last pattern that matches it is not a `!`
    one (``**`` crosses folders, ``*`` does not); the run starts when any file counts."""

    def matches(pattern: str, path: str) -> bool:
        parts = [".*" if part == "**" else "[^/]*".join(map(re.escape, part.split("*"))) for part in pattern.split("/")]
        regex = "/".join(parts).replace(".*/", "(?:.*/)?")
        return re.fullmatch(regex, path) is not None

    def counts(path: str) -> bool:
        verdict = False
        for pattern in paths:
            if matches(pattern.removeprefix("!"), path):
                verdict = not pattern.startswith("!")
        return verdict

    return any(counts(path) for path in changed)


@pytest.mark.parametrize(
    "changed, retrains",
    [
        (["src/sagebert/cli/update.py"], False),
        (["src/sagebert/aws/gate.py", "src/sagebert/cli/compare.py", "README.md"], False),
        (["src/sagebert/training/job.py"], True),
        (["src/sagebert/cli/update.py", "src/sagebert/serving/app.py"], True),
        (["src/sagebert/metric_lines.py"], True),  # the image prints the metric lines
        (["Dockerfile"], True),
        (["docs/aws.md"], False),
    ],
)
def test_changes_that_touch_only_the_cli_do_not_retrain(workflow, changed, retrains):
    assert triggers(workflow[True]["push"]["paths"], changed) == retrains


def test_a_pull_request_runs_the_tests_and_nothing_that_reaches_aws(workflow):
    jobs = workflow["jobs"]
    assert "pull_request" in workflow[True]
    assert "if" not in jobs["test"] and "needs" not in jobs["test"]

    def skipped_on_pull_requests(name: str) -> bool:
        job = jobs[name]
        if job.get("if") == "github.event_name != 'pull_request'":
            return True
        needs = job.get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        return any(skipped_on_pull_requests(n) for n in needs)  # a skipped need skips the job

    for name in jobs:
        if name != "test":
            assert skipped_on_pull_requests(name), name


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


def assumed_role(job: dict) -> str:
    [step] = [s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", "")]
    return re.fullmatch(r"\$\{\{ vars\.(\w+) \}\}", step["with"]["role-to-assume"]).group(1)


def test_each_job_assumes_its_own_role_from_its_own_environment(workflow):
    jobs = workflow["jobs"]
    assuming = {name for name, job in jobs.items() if any("configure-aws" in s.get("uses", "") for s in job["steps"])}

    assert assuming == set(ROLES)
    for name, (variable, environment, _) in ROLES.items():
        assert assumed_role(jobs[name]) == variable, name
        assert jobs[name]["environment"] == environment, name
    assert len({assumed_role(jobs[name]) for name in ROLES}) == len(ROLES)


@pytest.mark.parametrize("job", sorted(ROLES))
def test_each_trust_policy_names_only_its_environments_subject(job, clients):
    _, environment, file = ROLES[job]
    policy = json.loads((TRUST_POLICIES / file).read_text())

    [statement] = policy["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {
        "Federated": "arn:aws:iam::ACCOUNT_ID:oidc-provider/token.actions.githubusercontent.com"
    }
    # StringEquals, not StringLike: no wildcard can widen the subject to other environments or branches.
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": f"repo:OWNER/REPO:environment:{environment}",
        }
    }
    # IAM (moto) takes it as a role's trust policy once the placeholders are filled in.
    document = json.dumps(policy).replace("ACCOUNT_ID", "123456789012").replace("OWNER/REPO", "team/sagebert")
    role = clients.session.client("iam").create_role(RoleName=f"sagebert-{job}", AssumeRolePolicyDocument=document)
    assert role["Role"]["Arn"].endswith(f"role/sagebert-{job}")


def test_the_trust_policies_are_exactly_one_per_role():
    assert sorted(path.name for path in TRUST_POLICIES.glob("*.json")) == sorted(f for *_, f in ROLES.values())


def credentials_from(job: dict) -> int:
    """The index of the step from which the job's environment holds AWS credentials."""
    return next(i for i, s in enumerate(job["steps"]) if "configure-aws-credentials" in s.get("uses", ""))


def test_the_container_tests_run_before_any_credentials_exist_in_their_job(workflow):
    job = workflow["jobs"]["build-push"]
    tests = step_index(workflow, "build-push", "scripts/test.sh")

    assert tests < credentials_from(job)
    assert not any(name.startswith("AWS_") for name in job["steps"][tests].get("env", {}))


def test_no_global_extra_index_and_none_where_credentials_are_held(workflow):
    assert "PIP_EXTRA_INDEX_URL" not in workflow.get("env", {})
    for name, job in workflow["jobs"].items():
        assert "PIP_EXTRA_INDEX_URL" not in job.get("env", {}), name
        if name in ROLES:
            for step in job["steps"][credentials_from(job) :]:
                assert "PIP_EXTRA_INDEX_URL" not in step.get("env", {}), name
                assert "--extra-index-url" not in step.get("run", ""), name


def test_jobs_holding_credentials_install_only_hash_pinned_packages(workflow):
    for name in ROLES:
        for step in workflow["jobs"][name]["steps"]:
            for line in re.sub(r"\\\n\s*", " ", step.get("run", "")).splitlines():
                if "pip install" not in line:
                    continue
                words = line.split()
                hashed = "--require-hashes" in words and all(
                    words[i + 1].startswith("requirements/") for i, w in enumerate(words) if w == "-r"
                )
                local = words[-1] == "." and {"--no-deps", "--no-build-isolation"} <= set(words)
                assert hashed or local, f"{name}: {line.strip()}"


def test_the_cli_lock_pins_exactly_boto3s_dependencies_with_hashes():
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    def closure(name: str, seen: set[str]) -> set[str]:
        key = name.lower()
        if key not in seen:
            seen.add(key)
            for text in requires(name) or ():
                requirement = Requirement(text)
                if not requirement.marker or requirement.marker.evaluate({"extra": ""}):
                    closure(requirement.name, seen)
        return seen

    lock = (REPO / "requirements" / "cli.lock").read_text()
    pins = re.findall(r"^([a-z0-9_.-]+)==\S+ \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", lock, re.M)
    assert {name for name, _ in pins} == closure("boto3", set())
    assert len(pins) == len(re.findall(r"^[a-z0-9_.-]+==", lock, re.M))  # every pin has its hashes


def test_each_sessions_duration_covers_its_job(workflow):
    for name, job in workflow["jobs"].items():
        for step in job["steps"]:
            if "configure-aws-credentials" in step.get("uses", ""):
                assert int(step["with"]["role-duration-seconds"]) >= 60 * job["timeout-minutes"], name


# ---- build once, test that image, push it by digest -----------------------------------------------------------
def test_the_pushed_image_is_the_one_the_container_tests_ran_on(workflow):
    build = step_index(workflow, "build-push", "container/build-image.sh")
    tests = step_index(workflow, "build-push", "scripts/test.sh")
    push = step_index(workflow, "build-push", "./build_and_push.sh")
    check = step_index(workflow, "build-push", 'docker pull "$PUSHED"')
    job = steps(workflow, "build-push")
    tag = re.search(r"build-image\.sh (\S+)", job[build]["run"]).group(1)

    assert build < tests < push < check
    assert job[tests]["env"]["SAGEBERT_TEST_IMAGE"] == tag and "-m container" in job[tests]["run"]
    assert f"--source-image {tag}" in job[push]["run"]
    assert job[check]["env"]["PUSHED"] == "${{ steps.push.outputs.image_digest_uri }}"
    assert "tested-image-id" in job[check]["run"] and "tested-image-id" in job[build]["run"]
    assert workflow["jobs"]["build-push"]["outputs"]["image"] == "${{ steps.push.outputs.image_digest_uri }}"


def test_the_test_job_runs_everything_but_the_container_tests_which_run_on_the_image(workflow):
    assert 'scripts/test.sh -m "not container"' in steps(workflow, "test")[-1]["run"]


def test_training_and_promotion_use_the_pushed_digest_and_training_waits(workflow):
    train = next(s for s in steps(workflow, "train") if s.get("id") == "train")
    assert train["env"]["IMAGE"] == "${{ needs.build-push.outputs.image }}"
    [command] = sagebert_commands(train["run"])
    assert command[0] == "train" and "--wait" in command
    for job in ("staging", "promote"):
        rollout = next(s for s in steps(workflow, job) if "sagebert update" in s.get("run", ""))
        assert rollout["env"]["IMAGE"] == "${{ needs.build-push.outputs.image }}", job


def test_pip_is_cached(workflow):
    for name in workflow["jobs"]:
        setup = next(s for s in steps(workflow, name) if "setup-python" in s.get("uses", ""))
        assert setup["with"]["cache"] == "pip", name


def test_production_waits_for_staging_to_pass_its_load_test_and_for_the_reviewers(workflow):
    promote, staging = workflow["jobs"]["promote"], workflow["jobs"]["staging"]
    load = steps(workflow, "staging")[step_index(workflow, "staging", "scripts/load_test.py")]
    rollout = step_index(workflow, "staging", "sagebert update")

    assert promote["environment"] == "production"
    assert "staging" in promote["needs"] and staging["needs"] == ["build-push", "train"]
    assert rollout < step_index(workflow, "staging", "scripts/load_test.py")
    for flag in ('--endpoint "$STAGING_ENDPOINT_NAME"', "--p95-ms", "--max-error-rate", "--requests"):
        assert flag in load["run"], flag
    assert '--summary "$GITHUB_STEP_SUMMARY"' in load["run"]


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
    code = int(os.environ["UPDATE_EXIT"])
    if code:
        print("warning: the serving model predates the test-data digest", file=sys.stderr)
        print(os.environ.get("UPDATE_ERROR") or f"error: exit {{code}}", file=sys.stderr)
    sys.exit(code)
"""


@pytest.fixture
def promote(workflow, tmp_path):
    """Run the promote step's script: ``promote(state, update_exit=0, **variables)`` → (code, stdout,
    calls); what it writes to the job summary is in ``tmp_path / "summary"``."""
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
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
            **variables,
        }
        done = subprocess.run(
            ["bash", "-e", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
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


NOT_BETTER = (
    "error: Not promoted: eval:f1 0.8001 is not higher than 0.7993 by at least 0.01 (change +0.0008). Nothing was "
    "created; disaster-tweets keeps serving job-1."
)


def test_a_model_that_is_not_better_ends_the_run_green_with_a_summary_saying_why(promote, tmp_path):
    code, out, _ = promote("InService", update_exit=3, UPDATE_ERROR=NOT_BETTER)

    assert code == 0
    assert "::notice::Nothing was promoted: sagebert-abc1234-99-1 is not better than the model disaster-tweets" in out
    summary = (tmp_path / "summary").read_text()
    assert summary.startswith("### Nothing was promoted\n")
    assert "> Not promoted: eval:f1 0.8001 is not higher than 0.7993 by at least 0.01" in summary


def test_a_gate_that_cannot_compare_fails_the_run_with_a_summary(promote, tmp_path):
    why = "error: Cannot compare: the candidate has no eval:f1 recorded, so it cannot be shown to be better."
    code, out, _ = promote("InService", update_exit=4, UPDATE_ERROR=why)

    assert code == 4
    assert "::error::The gate cannot compare sagebert-abc1234-99-1 with the model disaster-tweets serves" in out
    assert "> Cannot compare: the candidate has no eval:f1 recorded" in (tmp_path / "summary").read_text()


@pytest.mark.parametrize("status", [1, 2, 130])
def test_every_other_failure_fails_the_run(promote, tmp_path, status):
    assert promote("InService", update_exit=status)[0] == status
    assert f"failed (exit {status})" in (tmp_path / "summary").read_text()


def test_a_promoted_model_is_said_in_the_summary(promote, tmp_path):
    assert promote("InService")[0] == 0
    assert (tmp_path / "summary").read_text() == "### sagebert-abc1234-99-1 promoted to disaster-tweets\n"


def test_an_update_rollback_failed_endpoint_gets_the_new_update_it_needs(promote):
    code, out, calls = promote("UpdateRollbackFailed")

    assert code == 0, out
    assert calls[1].startswith("update --endpoint disaster-tweets --training-job sagebert-abc1234-99-1")


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


# ---- the staging load test, against moto ---------------------------------------------------------------------
@pytest.fixture
def load_test():
    spec = importlib.util.spec_from_file_location("load_test", REPO / "scripts" / "load_test.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


GOOD = json.dumps(
    {"predictions": [{"label": "Real disaster", "score": 0.9}, {"label": "Not a disaster", "score": 0.8}]}
)


def test_the_load_test_passes_an_endpoint_within_budget(load_test, endpoint_answers, aws, tmp_path, capsys):
    endpoint_answers([GOOD] * 24)
    summary = tmp_path / "summary.md"

    code = load_test.main(
        ["--endpoint", "staging", "--requests", "24", "--concurrency", "4", "--summary", str(summary)],
        clients=AwsClients(),
    )

    assert code == 0, capsys.readouterr().out
    assert summary.read_text().startswith("### Load test of staging: within budget")
    assert "| 24 | 0 |" in summary.read_text()


def test_the_load_test_fails_over_its_error_budget_and_says_what_went_wrong(load_test, endpoint_answers, aws, capsys):
    endpoint_answers([GOOD] * 18)  # the rest get moto's default body, which is not predictions

    code = load_test.main(
        ["--endpoint", "staging", "--requests", "24", "--max-error-rate", "0.1"], clients=AwsClients()
    )

    out = capsys.readouterr().out
    assert code == 1
    assert "OVER BUDGET: error rate 25.00% (6 of 24) is over 10.00%" in out
    assert "First error: `The endpoint's answer is not sagebert predictions" in out


def test_the_load_test_fails_over_its_latency_budget(load_test, endpoint_answers, aws, capsys):
    endpoint_answers([GOOD] * 8)

    code = load_test.main(["--endpoint", "staging", "--requests", "8", "--p95-ms", "0.001"], clients=AwsClients())

    assert code == 1
    assert "OVER BUDGET: p95 latency" in capsys.readouterr().out


def test_the_load_test_budget_arithmetic(load_test):
    outcome = load_test.Outcome(tuple(float(ms) for ms in range(1, 101)), ("boom",))
    budget = load_test.Budget(p95_ms=95, max_error_rate=0.01)

    assert outcome.percentile_ms(0.95) == 95.0 and outcome.percentile_ms(0.5) == 50.0
    assert load_test.problems(outcome, budget) == []
    assert load_test.problems(outcome, load_test.Budget(94, 0.0)) == [
        "error rate 0.99% (1 of 101) is over 0.00%",
        "p95 latency 95 ms is over 94 ms",
    ]
