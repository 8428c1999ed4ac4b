"""Every shell script of the project passes shellcheck and is executable."""

import os
import shutil
import subprocess

import pytest

from support import REPO, skip_or_fail

SCRIPTS = sorted(
    {
        *REPO.glob("container/*.sh"),
        *REPO.glob("local_test/*.sh"),
        *REPO.glob("scripts/*.sh"),
        REPO / ".ci" / "run",
        REPO / "requirements" / "update-locks.sh",
        REPO / "build_and_push.sh",
    }
)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_shell_script_passes_shellcheck(script):
    if not shutil.which("shellcheck"):
        skip_or_fail("shellcheck is not installed", "scripts/setup.sh installs it (apt-get install shellcheck)")
    result = subprocess.run(["shellcheck", "-x", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert os.access(script, os.X_OK), f"{script} is not executable"


@pytest.mark.parametrize(
    "value, ci", [("true", True), ("1", True), ("YES", True), ("false", False), ("0", False), ("", False)]
)
def test_only_a_true_ci_value_means_ci(monkeypatch, value, ci):
    from support import in_ci

    monkeypatch.setenv("CI", value)
    assert in_ci() is ci


def test_setup_fails_when_pip_fails_and_does_not_record_the_lock_as_installed(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy2(REPO / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    (tmp_path / "requirements").mkdir()
    # A requirement pip refuses at once, without the network: --require-hashes wants a hash.
    (tmp_path / "requirements" / "dev.lock").write_text("./no-such-project\n")
    done = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "setup.sh"), "--python-only"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0, done.stdout + done.stderr
    assert "setup done" not in done.stdout
    assert "ERROR" in done.stdout + done.stderr  # pip's own message is shown
    assert not (tmp_path / ".venv" / ".dev.lock").exists()
