"""The atheris fuzz target in `make test`: a bounded coverage-guided run of each mode finds no crash, and the target
is sound (its committed seeds are its seeds and verify, an empty signed-mode input is a valid token, a tampered seed
is refused, and an exception other than TokenRejected escapes it as a crash).

Long runs: tests/fuzz/README.md.
"""
from __future__ import annotations

import platform
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

# Loaded before the target so the target's instrument_imports() leaves this process's validation module alone.
import lambdas.validation  # noqa: F401
from lambdas.validation import Principal
from lambdas.validation.compact import decode_token

# atheris ships wheels for Linux x86-64 only (pyproject pins it there); elsewhere it needs a clang/libFuzzer build.
if sys.platform == "linux" and platform.machine() == "x86_64":
    import atheris  # noqa: F401
else:
    pytest.importorskip("atheris", reason="atheris has no wheel for this platform; see tests/fuzz/README.md")

from tests.fuzz import fuzz_token_verification as target
from tests.support.tokens import json_nesting_depth

REPO = Path(__file__).resolve().parents[2]
# Bounded so both runs together take about 6 s here (raw ~6,000 inputs/s, signed ~1,000 inputs/s, plus start-up).
BOUNDED_RUNS = {"raw": 10_000, "signed": 3_000}


def test_committed_seeds_are_the_targets_seeds_and_verify():
    target.prime_raw_mode()
    files = sorted(target.SEED_DIR.glob("seed-*.jwt"))
    assert len(files) == len(target.seed_tokens())
    contents = []
    for path in files:
        data = path.read_bytes()
        assert isinstance(target.check_raw_token(data), Principal), f"{path.name} no longer verifies"
        header, claims, _, _ = decode_token(data)
        contents.append((header, claims))
    assert sorted(map(repr, contents)) == sorted(map(repr, target.SIGNED_CONTENT)), \
        "the committed seeds differ from the target's: run --write-seeds tests/fuzz/corpus/raw"


def test_a_tampered_seed_is_refused_in_raw_mode():
    target.prime_raw_mode()
    seed = min(target.SEED_DIR.glob("seed-*.jwt")).read_text()
    head, body, signature = seed.split(".")
    assert target.check_raw_token(f"{head}.{body}.{signature[::-1]}".encode()) is None
    assert target.check_raw_token(f"{head}.{body[:-2]}.{signature}".encode()) is None


def test_the_empty_signed_mode_input_is_a_valid_token_and_inputs_reach_every_profile():
    assert isinstance(target.check_signed_claims(b""), Principal)
    accepted_by = {principal.issuer_name for n in range(len(target.PROFILES))
                   if (principal := target.check_signed_claims(bytes([n]))) is not None}
    assert accepted_by == set(target.PROFILES)


def test_signed_mode_generates_claims_nested_past_the_decoders_bound():
    # Issue 18: the fuzz run must reach deep nesting (past the 32-level bound, and hundreds of levels), or it cannot
    # find a recursion that only deep input triggers. The deepest generated token is refused, not raised on.
    generator = random.Random(18)
    inputs = [generator.randbytes(96) for _ in range(400)]
    depths = [json_nesting_depth(target.signed_case(data)[2]) for data in inputs]
    assert any(33 <= d <= 64 for d in depths) and any(d > 300 for d in depths), sorted(depths)[-20:]
    assert target.check_signed_claims(inputs[depths.index(max(depths))]) is None


def test_an_exception_other_than_token_rejected_escapes_the_target(monkeypatch):
    target.prime_raw_mode()

    def broken_decoder(*args, **kwargs):
        raise KeyError("decoder bug")
    monkeypatch.setattr(target, "decode_token_fast", broken_decoder)
    with pytest.raises(KeyError):
        target.check_raw_token(b"x.y.z")


@pytest.mark.parametrize("mode", sorted(BOUNDED_RUNS))
def test_a_bounded_fuzz_run_finds_no_crash(mode, tmp_path):
    runs = BOUNDED_RUNS[mode]
    corpus = tmp_path / "corpus"  # libFuzzer writes new inputs into the first directory; the seeds stay untouched
    corpus.mkdir()
    seeds = [str(target.SEED_DIR)] if mode == "raw" else []
    done = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.fuzz_token_verification", f"--mode={mode}", f"-runs={runs}", "-seed=1",
         "-max_len=1024", f"-artifact_prefix={tmp_path}/", str(corpus), *seeds],
        cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
    crashes = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-")))
    report = "\n".join(line for line in done.stderr.splitlines()[-40:]
                       if not line.startswith(("Base64:", "0x", "INFO: Instrumenting")))
    assert done.returncode == 0 and not crashes, f"{mode} fuzzing found a crash {crashes}:\n{report}"
    assert re.search(rf"^Done {runs} runs in \d+ second", done.stderr, re.MULTILINE), report
    if mode == "raw":
        assert f"seed corpus: files: {len(list(target.SEED_DIR.iterdir()))} " in done.stderr, report
