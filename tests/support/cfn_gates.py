"""cfn-lint and checkov over a cloud assembly's templates, for the infra tests that synthesize an app of their own
(the full app's gates are tests/infra/aws/test_aws_template_gates.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.required import unavailable

REPO = Path(__file__).resolve().parents[2]
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
# W3005 (a DependsOn that a Ref/GetAtt already implies) is emitted by CDK itself; redundant, not wrong.
CFN_LINT_IGNORED = ("W3005",)


def assert_cfn_lint_and_checkov_pass(stage_dir: Path) -> None:
    """cfn-lint reports nothing and checkov fails no check (skips carry their reasons in the templates)."""
    templates = sorted(map(str, stage_dir.glob("*.template.json")))
    assert templates, f"no templates in {stage_dir}"
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    lint = subprocess.run([str(cfn_lint), "--format", "parseable", "--ignore-checks", *CFN_LINT_IGNORED, "--",
                           *templates], capture_output=True, text=True, timeout=240)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    if not CHECKOV.exists():
        unavailable(f"{CHECKOV} is not installed; `make setup` installs it")
    result = subprocess.run([str(CHECKOV), "-d", str(stage_dir), "--framework", "cloudformation", "--skip-download",
                             "--compact", "-o", "json"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert [(f["check_id"], f["resource"]) for r in reports for f in r["results"]["failed_checks"]] == []
