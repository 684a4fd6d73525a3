"""The test suite's own rules: what a run may skip, and what the Makefile installs."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", ["tests/security/test_wycheproof_vectors.py",
                                    "tests/security/test_rfc7520_signatures.py"])
def test_vector_modules_fail_under_ci_when_the_vectors_are_missing(tmp_path, module):
    """They skipped whatever CI said, so a CI run without ../shared/testdata passed having checked no vector."""
    checkout = tmp_path / "shared-missing" / "repo"      # no ../shared/testdata next to this copy
    for part in ("tests/__init__.py", "tests/support", module):
        source, target = REPO / part, checkout / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    env = {**os.environ, "PYTHONPATH": f"{checkout}{os.pathsep}{REPO}", "CI": "true"}
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                          "--rootdir", str(checkout), str(checkout / module)], cwd=checkout, env=env,
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode not in (0, 5) and "Wycheproof vectors not found" in ran.stdout, ran.stdout[-2000:]


def test_checkov_stamp_names_the_pinned_version():
    """CHECKOV_STAMP was expanded before CHECKOV_VERSION was set (.installed-), so a version bump never
    reinstalled checkov."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    database = subprocess.run(["make", "-pnq", "-f", str(REPO / "Makefile"), "lint"], cwd=REPO,
                              capture_output=True, text=True, timeout=60).stdout
    version = re.search(r"^CHECKOV_VERSION := (\S+)$", database, re.M).group(1)
    stamp = re.search(r"^CHECKOV_STAMP := (\S+)$", database, re.M).group(1)
    assert stamp == f".venv-checkov/.installed-{version}"
