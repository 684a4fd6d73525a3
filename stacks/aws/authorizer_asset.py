"""The Lambda authorizer asset, built without Docker: `lambdas/` plus its runtime wheels for Linux x86_64 or arm64.

pip can fetch another platform's wheels (`--platform ... --only-binary=:all:`), and the authorizer's only runtime
dependency (cryptography, with what it pulls in) ships binary wheels for both Lambda architectures, so no container
is needed. Wheels are downloaded once into a cache directory per platform; later builds install from there without the
network. The asset is trimmed (bytecode caches, dist-info RECORD files, type stubs, the test-only and CLI-only parts
of lambdas/), and the route table is written into it when given.

    authorizer_code(route_table, architecture="arm64")          # aws_lambda.Code with local bundling (CDK)
    build_authorizer_asset("build/authorizer-arm64", architecture="arm64", route_table=table)
    python -m stacks.aws.authorizer_asset --architecture arm64 --out build/authorizer-arm64   # prints zipped size
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Mapping

REPO_ROOT = Path(__file__).resolve().parents[2]
ROUTE_TABLE_FILE = "authgate_routes.json"
PYTHON_VERSION = "3.12"          # the Lambda runtime the asset targets
# Lambda's python3.12 runtime runs on Amazon Linux 2023 (glibc 2.34): any manylinux tag up to 2.34 loads there.
PLATFORM_TAGS = {
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64"),
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64"),
}
DEFAULT_CACHE = Path(os.environ.get("AUTHGATE_WHEEL_CACHE", Path.home() / ".cache" / "authgate" / "wheels"))
# Files the Lambda never needs: trimmed from the asset to keep it small.
_STRIP_DIRS = {"__pycache__", "tests", "testing"}
_STRIP_SUFFIXES = (".pyc", ".pyi", ".c", ".h")


class AssetBuildError(RuntimeError):
    """The asset could not be built; the message says which step failed and how to fix it."""


def runtime_requirements() -> list[str]:
    """The pinned runtime dependencies of lambdas/: cryptography, exactly as pyproject.toml pins it."""
    text = (REPO_ROOT / "pyproject.toml").read_text()
    match = re.search(r'"(cryptography==[^"]+)"', text)
    if not match:
        raise AssetBuildError("pyproject.toml does not pin cryptography==X; the asset needs an exact version")
    return [match.group(1)]


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssetBuildError(f"pip {args[0]} failed (exit {result.returncode}):\n{result.stderr[-2000:]}")


def download_wheels(architecture: str, *, cache_dir: Path = DEFAULT_CACHE) -> Path:
    """The platform's wheels in cache_dir/<arch>-cp<ver>/, downloaded only when a pinned one is missing."""
    if architecture not in PLATFORM_TAGS:
        raise AssetBuildError(f"architecture must be one of {', '.join(PLATFORM_TAGS)}, got {architecture!r}")
    target = Path(cache_dir) / f"{architecture}-cp{PYTHON_VERSION.replace('.', '')}"
    requirements = runtime_requirements()
    wanted = [r.split("==")[0].lower() + "-" + r.split("==")[1] for r in requirements]
    have = {p.name.lower() for p in target.glob("*.whl")} if target.is_dir() else set()
    if not all(any(name.startswith(w + "-") for name in have) for w in wanted):
        target.mkdir(parents=True, exist_ok=True)
        platforms = [arg for tag in PLATFORM_TAGS[architecture] for arg in ("--platform", tag)]
        _pip("download", "--quiet", "--only-binary=:all:", "--implementation", "cp", "--python-version",
             PYTHON_VERSION, *platforms, "--dest", str(target), *requirements)
    return target


def build_authorizer_asset(out_dir: str | Path, *, architecture: str = "x86_64",
                           route_table: Mapping[str, Any] | None = None, cache_dir: Path = DEFAULT_CACHE) -> Path:
    """Write the asset into out_dir (replaced if it exists) and return it."""
    out = Path(out_dir)
    wheels = download_wheels(architecture, cache_dir=cache_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    platforms = [arg for tag in PLATFORM_TAGS[architecture] for arg in ("--platform", tag)]
    _pip("install", "--quiet", "--no-index", "--find-links", str(wheels), "--only-binary=:all:", "--implementation",
         "cp", "--python-version", PYTHON_VERSION, *platforms, "--target", str(out), "--no-compile",
         *runtime_requirements())
    shutil.copytree(REPO_ROOT / "lambdas", out / "lambdas",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "README.md"))
    _trim(out)
    if route_table is not None:
        (out / ROUTE_TABLE_FILE).write_text(json.dumps(route_table, indent=2) + "\n")
    return out


def _trim(root: Path) -> None:
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and path.name in _STRIP_DIRS:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and (path.suffix in _STRIP_SUFFIXES or
                                 (path.name == "RECORD" and path.parent.name.endswith(".dist-info"))):
            path.unlink()
    shutil.rmtree(root / "bin", ignore_errors=True)


def zipped_size(directory: str | Path) -> int:
    """The size in bytes of the asset zipped the way CDK uploads it (deflate)."""
    buffer = io.BytesIO()
    root = Path(directory)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            archive.write(path, path.relative_to(root))
    return buffer.tell()


def authorizer_code(route_table: Mapping[str, Any] | None = None, *, architecture: str = "x86_64",
                    cache_dir: Path = DEFAULT_CACHE):
    """aws_lambda.Code for the authorizer: CDK runs `AuthorizerBundling` locally (no Docker) at synth time."""
    import jsii
    from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
    from aws_cdk import aws_lambda as lambda_

    @jsii.implements(ILocalBundling)
    class AuthorizerBundling:
        def try_bundle(self, output_dir: str, *, image: Any = None, **_options: Any) -> bool:
            build_authorizer_asset(output_dir, architecture=architecture, route_table=route_table,
                                   cache_dir=cache_dir)
            return True

    # The image is required by the API but never used: try_bundle always succeeds or raises.
    options = BundlingOptions(image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.12"),
                              local=AuthorizerBundling())
    return lambda_.Code.from_asset(str(REPO_ROOT / "lambdas"), bundling=options,
                                   asset_hash=_asset_hash(route_table, architecture),
                                   asset_hash_type=_custom_hash_type())


def _custom_hash_type():
    from aws_cdk import AssetHashType
    return AssetHashType.CUSTOM


def _asset_hash(route_table: Mapping[str, Any] | None, architecture: str) -> str:
    import hashlib
    digest = hashlib.sha256(architecture.encode() + json.dumps(runtime_requirements()).encode())
    digest.update(json.dumps(route_table, sort_keys=True).encode() if route_table is not None else b"")
    for path in sorted((REPO_ROOT / "lambdas").rglob("*.py")):
        digest.update(str(path.relative_to(REPO_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the Lambda authorizer asset and print its zipped size.")
    parser.add_argument("--architecture", choices=sorted(PLATFORM_TAGS), default="x86_64")
    parser.add_argument("--out", required=True, help="directory to write the asset to (replaced)")
    parser.add_argument("--route-table", help="route table JSON to put in the asset")
    args = parser.parse_args(argv)
    table = json.loads(Path(args.route_table).read_text()) if args.route_table else None
    try:
        out = build_authorizer_asset(args.out, architecture=args.architecture, route_table=table)
    except AssetBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    size = zipped_size(out)
    print(f"authorizer asset {args.architecture}: {out} zipped {size} bytes ({size / 1024 / 1024:.2f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
