"""Project Wycheproof JOSE vectors through the command line: `authgate verify --signature-only --jwks FILE --json`.

The same vectors, expected verdicts and overridden labels as test_wycheproof_vectors.py (its case generator and
override table are imported, not copied), but each vector goes through the CLI entry function with its group's key
set written to a JWKS file, so argument parsing, JWKS file loading and the JSON report are on the path too. One
batch of vectors also goes through the installed console script in a subprocess. The raw RSA PKCS#1, RSA-PSS,
ECDSA P1363 and Ed25519 files are message/signature pairs, not JWS, so they cannot be given to the CLI; the last
test checks that every vector file in the directory is run by one of the two modules.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stacks.cli import main
from tests.security.test_wycheproof_vectors import ALL_ALGS, RAW_FILES, WYCHEPROOF, _jose_cases, _load, _public_keyset

JOSE_FILES = ("json_web_signature_test.json", "json_web_key_test.json")
REJECTION_CODES = {"malformed", "unsupported_alg", "alg_not_allowed", "unknown_kid", "bad_signature", "token_too_large"}


@pytest.fixture(scope="module")
def jwks_files(tmp_path_factory):
    """A function: Wycheproof test group -> path of a JWKS file holding the group's public keys (one file a group)."""
    directory = tmp_path_factory.mktemp("wycheproof-jwks")
    paths: dict[int, str] = {}

    def path_for(group: dict) -> str:
        if id(group) not in paths:
            path = directory / f"group-{len(paths)}.jwks.json"
            path.write_text(json.dumps(_public_keyset(group)))
            paths[id(group)] = str(path)
        return paths[id(group)]
    return path_for


def signature_only(jwks_file: str) -> list[str]:
    return ["verify", "--signature-only", "--jwks", jwks_file, "--algorithms", ",".join(ALL_ALGS), "--json"]


@pytest.mark.parametrize("group,test,expected", list(_jose_cases()))
def test_jose_vector_through_the_cli(group, test, expected, jwks_files, capsys):
    status = main([*signature_only(jwks_files(group)), "--", test["jws"]])
    captured = capsys.readouterr()
    assert status in (0, 1), f"tcId {test['tcId']}: usage error {captured.err.strip()}"
    report = json.loads(captured.out)
    verdict = "valid" if report["valid"] else "invalid"
    assert verdict == expected, f"tcId {test['tcId']} {test['comment']}: {verdict} ({report['code']}), " \
                                f"expected {expected}"
    assert status == (0 if report["valid"] else 1)
    if not report["valid"]:
        assert report["code"] in REJECTION_CODES and report["status"] == 401
        if len(test["jws"]) > 16:
            assert test["jws"] not in captured.out, "a report must never echo the token"


def test_a_batch_of_vectors_through_the_console_script(jwks_files, tmp_path):
    """The installed `authgate` script, one JSONL batch: each line's verdict is the vector's expected verdict."""
    script = shutil.which("authgate", path=str(Path(sys.executable).parent))
    assert script, "the authgate console script is not installed next to this Python (pip install -e .)"
    cases = [param.values for param in _jose_cases()]
    by_group: dict[int, list] = {}
    for group, test, expected in cases:
        by_group.setdefault(id(group), [group]).append((test, expected))
    # The first group holding both verdicts, so the script's exit status and every line's verdict matter.
    group, *batch = next(entries for entries in by_group.values()
                         if {expected for _, expected in entries[1:]} == {"valid", "invalid"})
    lines = tmp_path / "vectors.jsonl"
    lines.write_text("".join(json.dumps({"token": test["jws"]}) + "\n" for test, _ in batch))
    done = subprocess.run([script, *signature_only(jwks_files(group)), "--batch", str(lines)], check=False,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr  # some vectors are invalid
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [("valid" if r["valid"] else "invalid") for r in results] == [expected for _, expected in batch]


def test_every_vector_file_goes_through_the_cli_or_the_signature_layer():
    present = {path.name for path in WYCHEPROOF.glob("*.json")}
    assert present == set(JOSE_FILES) | set(RAW_FILES), "a Wycheproof file is not run by any test"
    assert len(list(_jose_cases())) == sum(len(g["tests"]) for name in JOSE_FILES for g in _load(name)["testGroups"])
