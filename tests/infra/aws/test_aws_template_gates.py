"""Quality gates on every synthesized AWS template: cdk-nag AwsSolutions, cfn-lint and checkov."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.required import unavailable

REPO = Path(__file__).resolve().parents[3]
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
# W3005 (a DependsOn that a Ref/GetAtt already implies) is emitted by CDK itself (a function depends on its role,
# custom-resource providers on theirs); it is redundant, not wrong, and cannot be removed from outside CDK.
CFN_LINT_IGNORED = ["W3005"]


def test_cdk_nag_aws_solutions_reports_no_unacknowledged_finding(synthesized):
    code, output, out = synthesized
    assert code == 0, output
    report = json.loads((out / "validation-report.json").read_text())
    violations = [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])]
    assert violations == []


def test_cdk_nag_runs_on_this_app_and_fails_it_on_a_finding(tmp_path):
    """The gate can fail: an unacknowledged finding stops synthesis."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from aws_cdk import App, Stack, aws_sqs as sqs

    from stacks.aws.app import add_nag_checks
    app = App(outdir=str(tmp_path))
    sqs.Queue(Stack(app, "Probe"), "Unencrypted")
    add_nag_checks(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()


def _templates(out: Path) -> list[Path]:
    found = sorted((out / "assembly-dev").glob("*.template.json"))
    assert len(found) == 8
    return found


def test_cfn_lint_reports_no_error_or_warning(synthesized):
    _, _, out = synthesized
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), "--format", "parseable",
                             "--ignore-checks", *CFN_LINT_IGNORED, "--", *map(str, _templates(out))],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_has_no_failed_check_that_is_not_skipped_with_a_reason(synthesized):
    _, _, out = synthesized
    if not CHECKOV.exists():
        unavailable(f"{CHECKOV} is not installed; `make setup` installs it")
    result = subprocess.run([str(CHECKOV), "-d", str(out / "assembly-dev"), "--framework", "cloudformation",
                             "--skip-download", "--compact", "-o", "json"],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [(f["check_id"], f["resource"], f["file_path"]) for r in reports for f in r["results"]["failed_checks"]]
    assert failed == []
    skipped = [s for r in reports for s in r["results"]["skipped_checks"]]
    assert skipped, "expected the documented skips to be seen by checkov"
    for check in skipped:
        assert len((check.get("check_result") or {}).get("suppress_comment") or "") >= 20, check["check_id"]
