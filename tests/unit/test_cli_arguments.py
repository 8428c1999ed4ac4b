"""The `sagebert` command line itself: what argparse accepts and refuses, before any AWS call."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sagebert.cli import build_parser, main

COMMANDS = (
    "upload-data",
    "train",
    "tune",
    "stop",
    "compare",
    "register",
    "deploy",
    "update",
    "rollback",
    "autoscale",
    "invoke",
    "transform",
    "status",
    "delete",
)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(capsys, command):
    code, out, _ = run(capsys, command, "--help")

    assert code == 0 and out.startswith(f"usage: sagebert {command}")


def test_train_help_lists_the_hyperparameter_flags_with_the_image_defaults(capsys):
    _, out, _ = run(capsys, "train", "--help")

    assert "--processes-per-host VALUE" in out and "--learning-rate VALUE" in out
    assert "(image default: 2)" in " ".join(out.split())  # epochs


def test_a_name_value_option_without_equals_is_a_usage_error(capsys):
    code, _, err = run(capsys, "train", "--image", "i", "--role", "r", "--data", "s3://bucket/d", "-H", "epochs")

    assert code == 2
    assert "argument -H/--hyperparameter: expected NAME=VALUE, got 'epochs'" in err


def test_deploy_takes_exactly_one_model_source(capsys):
    code, _, err = run(
        capsys, "deploy", "--endpoint", "ep", "--training-job", "j", "--model-data", "s3://bucket/m.tar.gz"
    )

    assert code == 2 and "not allowed with argument" in err


def test_counts_must_be_positive(capsys):
    code, _, err = run(capsys, "deploy", "--endpoint", "ep", "--training-job", "j", "--instance-count", "0")

    assert code == 2 and "must be at least 1, got 0" in err


def test_a_hyperparameter_given_twice_with_different_values_is_refused(capsys):
    code, _, err = run(
        capsys, "train", "--image", "i", "--role", "r", "--data", "s3://bucket/d", "--epochs", "2", "-H", "epochs=3"
    )

    assert code == 1
    assert "Hyperparameter epochs is given twice (--epochs 2 and --hyperparameter epochs=3)" in err


def test_global_options_work_before_and_after_the_command(capsys):
    for argv in (("--region", "eu-west-1", "status", "--help"), ("status", "--region", "eu-west-1", "--help")):
        assert run(capsys, *argv)[0] == 0


def test_the_cli_imports_neither_torch_nor_transformers_nor_the_training_code():
    probe = (
        "import sys, sagebert.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers', 'accelerate') or m in ('sagebert.training', 'sagebert.modeling', "
        "'sagebert.training.data')))"
    )

    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "[]"


def _subcommands() -> dict:
    import argparse

    from sagebert.cli import build_parser

    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


@pytest.mark.parametrize("command", COMMANDS)
def test_docs_aws_md_lists_every_option_of_every_command(command):
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "aws.md").read_text()
    heading = f"## sagebert {command}\n"
    assert heading in docs, heading
    section = docs.split(heading, 1)[1].split("\n## ", 1)[0]
    parser = _subcommands()[command]
    options = [
        option
        for action in parser._actions
        for option in action.option_strings
        if option not in ("-h", "--help", "--region", "--profile", "--debug")
    ]
    missing = [option for option in options if f"`{option}" not in section]
    assert missing == [], f"docs/aws.md, sagebert {command}: {missing}"


def test_every_exit_code_is_in_the_help_epilog_and_the_readme():
    import re
    from pathlib import Path

    from sagebert.cli import output

    codes = [output.OK, output.FAILED, output.USAGE, output.NOT_BETTER, output.NOT_COMPARABLE, output.INTERRUPTED]
    epilog = build_parser().epilog
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### The promotion gate and exit codes", 1)[1].split("\n### ", 1)[0]
    for code in codes:
        assert re.search(rf"^  {code} +\S", epilog, re.MULTILINE), code
        assert f"\n| {code} | " in section, code


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "-inf", "soon"])
def test_a_poll_interval_that_is_not_a_finite_non_negative_number_is_a_usage_error(capsys, value):
    code = main(["status", "--training-job", "job-1", "--follow", "--poll-interval", value])

    assert code == 2
    err = capsys.readouterr().err
    assert "argument --poll-interval:" in err and "Traceback" not in err
