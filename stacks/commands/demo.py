"""`authgate demo` and `authgate local`: run the local sandbox (sandbox/demo.py) as a child process.

Nothing may import the sandbox (it sits above stacks in the layering), so the CLI starts it with
`python -m sandbox.demo` and passes its exit status through. Ctrl-C reaches the child too (same process group),
and the child stops every server it started; SIGTERM is passed on to the child for the same reason.
"""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# The sandbox is its own issuer, so it runs only policies shaped like policies/local.yaml (sandbox/environment.py
# check_sandbox_inputs refuses anything else before starting a server). One text for both command lines.
POLICY_HELP = ("a policy shaped like policies/local.yaml: an issuer named local at ${LOCAL_ISSUER_URL}, a spa and a "
               "service client of it (default: policies/local.yaml; policies/example.yaml names real IdPs and is "
               "refused)")
API_HELP = "an HTTP API of that policy whose routes accept issuer local (default: orders)"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", help=POLICY_HELP)
    parser.add_argument("--api", help=API_HELP)
    parser.add_argument("--no-color", action="store_true", help="plain output")


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser)


def add_local_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser)


def _sandbox_command(args: argparse.Namespace, *, keep_running: bool) -> list[str]:
    command = [sys.executable, "-m", "sandbox.demo"]
    if args.policy:
        command += ["--policy", str(Path(args.policy).resolve())]
    if args.api:
        command += ["--api", args.api]
    if args.no_color:
        command.append("--no-color")
    if keep_running:
        command.append("--keep-running")
    return command


def _run(command: list[str]) -> int:
    if not (REPO_ROOT / "sandbox" / "demo.py").is_file():
        print(f"authgate: the sandbox is not in {REPO_ROOT}; run from a clone of the repository", file=sys.stderr)
        return 2
    process = subprocess.Popen(command, cwd=REPO_ROOT)
    # SIGTERM (a supervisor, `timeout`) reaches only this process: pass it on so the sandbox stops its servers
    # instead of being orphaned.
    previous = signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        return process.wait()
    except KeyboardInterrupt:
        # The child got the same Ctrl-C and is stopping its servers; wait for it rather than orphan them.
        try:
            return process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_demo(args: argparse.Namespace) -> int:
    return _run(_sandbox_command(args, keep_running=False))


def run_local(args: argparse.Namespace) -> int:
    return _run(_sandbox_command(args, keep_running=True))


# The dispatcher's defaults for a module with one command.
add_arguments = add_demo_arguments
run = run_demo
