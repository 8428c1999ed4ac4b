"""The README documents what the code does: every hyperparameter with its default, every metric
regex, every server setting as declared, and its two commands exist."""

import os
import re

from sagebert.hyperparameters import describe
from sagebert.metric_lines import METRIC_DEFINITIONS
from sagebert.serving import settings
from support import REPO

README = (REPO / "README.md").read_text()


def test_every_hyperparameter_is_in_the_table_with_its_default():
    for name, default, _ in describe():
        shown = f"`{default}`" if default else "(empty)"
        assert re.search(rf"^\| `{name}` \| {re.escape(shown)} \|", README, re.M), name


def test_every_metric_definition_is_documented_verbatim():
    for definition in METRIC_DEFINITIONS:
        row = f"| `{definition['Name']}` | `{definition['Regex'].replace('|', chr(92) + '|')}` |"
        assert row in README, definition["Name"]


def test_the_server_settings_table_is_the_declared_variables():
    rows = set(re.findall(r"^\| `SAGE\w+` \|.*\|$", README, re.M))
    declared = {f"| `{v.name}` | {v.help} | {v.default} |" for v in settings.describe()}
    assert len(declared) > 20 and rows == declared


def test_the_two_commands_exist():
    for command in ("scripts/demo.sh", "scripts/test.sh"):
        assert f"{command} " in README and os.access(REPO / command, os.X_OK)
