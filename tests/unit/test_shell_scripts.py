import os
import shutil
import subprocess

import pytest

from support import REPO

SCRIPTS = sorted(
    [
        *REPO.glob("container/*.sh"),
        *REPO.glob("local_test/*.sh"),
        *REPO.glob("scripts/*.sh"),
        REPO / ".ci" / "run",
        REPO / "requirements" / "update-locks.sh",
        REPO / "container" / "entrypoint.sh",
    ]
)


@pytest.mark.parametrize("script", sorted(set(SCRIPTS)), ids=lambda p: str(p.relative_to(REPO)))
def test_shell_script_passes_shellcheck(script):
    if not shutil.which("shellcheck"):
        if os.environ.get("CI"):
            pytest.fail("shellcheck is missing; scripts/setup.sh installs it")
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    result = subprocess.run(["shellcheck", "-x", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert os.access(script, os.X_OK), f"{script} is not executable"
