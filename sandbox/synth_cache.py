"""The AWS templates the sandbox emulates: `authgate synth` run on the sandbox policy in its deployable shape, cached.

Why a placeholder issuer: the deploy path refuses http:// issuers and `local_development` issuers (rightly: a cloud
gateway cannot reach a loopback IdP), and the compiler sends every route of such an issuer to the Lambda authorizer.
So the sandbox synthesizes the policy exactly as it would be deployed for a real https issuer
(PLACEHOLDER_ISSUER, with `local_development` removed), which gives the real template shape (native JWT authorizer
where the compiler chooses it, Lambda authorizer elsewhere), and substitutes the running provider's URL for the
placeholder afterwards (`localize`). No switch is added to the deploy path, and the synthesized templates do not
depend on the provider's ephemeral port, so they can be cached: the cache key is a hash of every input of the synth
(the deploy-shaped policy, cdk.json, the code under stacks/aws, stacks/policy, lambdas, the synth command, the pins).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_ROOT = REPO_ROOT / ".cache" / "sandbox-synth"
# A reserved name (RFC 2606 .invalid): it can never resolve, so a template that escaped the sandbox unlocalized
# could not point at anybody's real issuer.
PLACEHOLDER_ISSUER = "https://sandbox-issuer.authgate.invalid"
STAGE = "sandbox"
CACHE_ENTRIES_KEPT = 3
SYNTH_TIMEOUT_SECONDS = 300
# What the templates depend on besides the policy; any change here gives a new cache entry.
SYNTH_INPUT_DIRS = ("stacks/aws", "stacks/policy", "lambdas")
SYNTH_INPUT_FILES = ("cdk.json", "pyproject.toml", "stacks/commands/synth.py", "stacks/cli.py")
CACHE_FORMAT = "authgate.sandbox-synth/v1"


class SynthError(RuntimeError):
    """`authgate synth` failed on the sandbox policy; the message carries its output."""


def deploy_shaped_policy(policy_path: Path, *, variable: str) -> str:
    """The policy as it would be deployed: `${variable}` -> PLACEHOLDER_ISSUER and `local_development` removed from
    the issuers that use it. Issuers with a fixed loopback URL cannot be stood in for and are refused."""
    text = Path(policy_path).read_text(encoding="utf-8").replace("${" + variable + "}", PLACEHOLDER_ISSUER)
    data = yaml.safe_load(text)
    for name, issuer in (data.get("issuers") or {}).items():
        if not isinstance(issuer, dict) or not issuer.get("local_development"):
            continue
        if not str(issuer.get("issuer", "")).startswith(PLACEHOLDER_ISSUER):
            raise SynthError(f"issuer {name!r} in {policy_path} is a local_development issuer whose URL is not "
                             f"${{{variable}}}; the sandbox can only stand in for issuers written as "
                             f"issuer: ${{{variable}}}")
        del issuer["local_development"]
        if issuer.get("jwks_file"):
            issuer["jwks_file"] = str((Path(policy_path).parent / issuer["jwks_file"]).resolve())
    data.pop("$schema", None)
    return yaml.safe_dump(data, sort_keys=False)


def localize(value: Any, issuer_url: str) -> Any:
    """`value` (a template, a route table, XML text) with the placeholder issuer replaced by the running one."""
    if isinstance(value, str):
        return value.replace(PLACEHOLDER_ISSUER, issuer_url.rstrip("/"))
    if isinstance(value, dict):
        return {k: localize(v, issuer_url) for k, v in value.items()}
    if isinstance(value, list):
        return [localize(v, issuer_url) for v in value]
    return value


def localize_route_table(table: dict, issuer_url: str) -> dict:
    """The asset's route table pointed at the running provider: its issuers may fetch keys over loopback http."""
    local = localize(table, issuer_url)
    for name, spec in (table.get("issuers") or {}).items():
        if str(spec.get("issuer", "")).startswith(PLACEHOLDER_ISSUER):
            local["issuers"][name]["allow_insecure_http"] = True
    return local


@dataclass(frozen=True)
class SynthesizedApp:
    """A cloud assembly in the cache: the sandbox stage's templates and the assets they reference."""

    out_dir: Path
    cached: bool
    seconds: float

    @property
    def assembly_dir(self) -> Path:
        return self.out_dir / f"assembly-{STAGE}"

    def template_path(self, stack_id: str) -> Path:
        """The template of stack `stack_id` (HttpApi, RestApi): CDK names it <stage><id><hash>.template.json."""
        found = list(self.assembly_dir.glob(f"{STAGE}{stack_id}" + "?" * 8 + ".template.json"))
        if len(found) != 1:
            raise SynthError(f"expected one {stack_id} template in {self.assembly_dir}, found {len(found)}")
        return found[0]

    def template(self, stack_id: str) -> dict:
        return json.loads(self.template_path(stack_id).read_text(encoding="utf-8"))

    def function_asset_dir(self, stack_id: str, template: dict, function_logical_id: str) -> Path:
        """The directory a function's code was bundled from (what Lambda unpacks to /var/task)."""
        code = ((template.get("Resources", {}).get(function_logical_id) or {}).get("Properties") or {}).get("Code")
        key = (code or {}).get("S3Key")
        if not isinstance(key, str) or not key.endswith(".zip"):
            raise SynthError(f"{stack_id}: function {function_logical_id} has no asset S3Key")
        manifest_path = self.template_path(stack_id).with_name(
            self.template_path(stack_id).name.replace(".template.json", ".assets.json"))
        files = json.loads(manifest_path.read_text(encoding="utf-8")).get("files", {})
        entry = files.get(key[:-len(".zip")])
        if entry is None:
            raise SynthError(f"{manifest_path.name} does not list the asset {key}")
        return (manifest_path.parent / entry["source"]["path"]).resolve()


def cache_key(policy_text: str, api: str, context: Mapping[str, Any] | None = None) -> str:
    digest = hashlib.sha256()
    for part in (CACHE_FORMAT, sys.version.split()[0], api, policy_text,
                 json.dumps(dict(context or {}), sort_keys=True)):
        digest.update(part.encode())
        digest.update(b"\0")
    paths = [REPO_ROOT / f for f in SYNTH_INPUT_FILES]
    for directory in SYNTH_INPUT_DIRS:
        paths += sorted(p for p in (REPO_ROOT / directory).rglob("*")
                        if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".json"))
    for path in paths:
        digest.update(str(path.relative_to(REPO_ROOT)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
    return digest.hexdigest()[:24]


def synthesize(policy_path: Path, api: str, *, variable: str, log: Callable[[str], None] = lambda line: None,
               cache_root: Path = CACHE_ROOT, context: Mapping[str, Any] | None = None) -> SynthesizedApp:
    """The HttpApi and RestApi templates for `api` of the policy, from the cache or from a fresh `authgate synth`.
    `context` adds CDK context keys (e.g. authgate:mtls_domain) to the project's cdk.json for this synth."""
    started = time.monotonic()
    policy_text = deploy_shaped_policy(policy_path, variable=variable)
    key = cache_key(policy_text, api, context)
    entry = cache_root / key
    if (entry / "done").is_file():
        os.utime(entry)   # most recently used: kept by the pruning below
        return SynthesizedApp(entry / "cdk.out", cached=True, seconds=time.monotonic() - started)
    log(f"synthesizing the HttpApi and RestApi stacks with `authgate synth` (first run for these inputs: cache "
        f"key {key})")
    cache_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{key}.", suffix=".partial", dir=cache_root))
    try:
        _synth_into(work, policy_text, api, context)
        (work / "done").write_text(json.dumps({"format": CACHE_FORMAT, "policy": str(policy_path), "api": api}))
        try:
            work.rename(entry)
        except OSError:
            # Another sandbox finished the same synth first; its result is identical.
            if not (entry / "done").is_file():
                raise
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _prune(cache_root, keep=entry)
    return SynthesizedApp(entry / "cdk.out", cached=False, seconds=time.monotonic() - started)


def _synth_into(work: Path, policy_text: str, api: str, context: Mapping[str, Any] | None = None) -> None:
    policy = work / "policy.yaml"
    policy.write_text(policy_text, encoding="utf-8")
    # The project's cdk.json (feature flags and defaults) minus the optional sections the sandbox does not emulate.
    cdk = json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8"))
    for optional in ("authgate:cognito", "authgate:alb", "authgate:eks", "authgate:github", "authgate:backend_url"):
        cdk.get("context", {}).pop(optional, None)
    cdk.setdefault("context", {}).update(dict(context or {}))
    (work / "cdk.json").write_text(json.dumps(cdk, indent=2), encoding="utf-8")
    # The authorizer asset: the lambdas package without its Linux wheels. The sandbox runs the handler in this
    # process, so the arm64 cryptography wheels (a pip download) would never be used.
    shutil.copytree(REPO_ROOT / "lambdas", work / "authorizer-src" / "lambdas",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    command = [sys.executable, "-m", "stacks.cli", "synth", "--project-dir", str(work), "--policy", str(policy),
               "--api", api, "--stage", STAGE, "--authorizer-asset", str(work / "authorizer-src"),
               "-o", str(work / "cdk.out")]
    env = dict(os.environ, JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20", CDK_DISABLE_CLI_TELEMETRY="true",
               TMPDIR=str(work))
    try:
        done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                              timeout=SYNTH_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise SynthError(f"`authgate synth` took longer than {SYNTH_TIMEOUT_SECONDS}s") from None
    if done.returncode != 0:
        raise SynthError(f"`authgate synth` exited {done.returncode}: {(done.stderr or done.stdout).strip()[-1500:]}")


def _prune(cache_root: Path, *, keep: Path) -> None:
    entries = sorted((p for p in cache_root.iterdir() if p.is_dir() and not p.name.endswith(".partial")),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in [p for p in entries if p != keep][CACHE_ENTRIES_KEPT - 1:]:
        shutil.rmtree(stale, ignore_errors=True)
