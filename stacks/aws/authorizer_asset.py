"""The Lambda authorizer asset, built without Docker: `lambdas/` plus its runtime wheels for Linux x86_64 or arm64,
compiled to bytecode for exactly the Lambda runtime it targets.

pip can fetch another platform's wheels (`--platform ... --only-binary=:all:`), and the authorizer's only runtime
dependency (cryptography, with what it pulls in) ships binary wheels for both Lambda architectures, so no container
is needed. Wheels are downloaded once into a cache directory per platform; later builds install from there without the
network. The asset is trimmed (dist-info RECORD files, type stubs, C sources, the test-only and CLI-only parts of
lambdas/), and the route table is written into it when given.

Bytecode: Lambda unpacks the asset into a read-only /var/task, so Python cannot write `__pycache__` there and an
asset without bytecode compiles every module it imports on every cold start. Bytecode is only usable by the
interpreter version that wrote it (its magic number and `cpython-3XY` cache tag), and only the interpreter running
the build can write it. So the asset's runtime follows the building interpreter (Python 3.11 to 3.14, each a Lambda
runtime): the wheels are fetched for that version, every .py is compiled by it, and `authgate_asset.json` records
the runtime, so the constructs deploy exactly that runtime and a prebuilt asset built by another Python is refused
rather than deployed with bytecode or binary wheels for the wrong interpreter (compile_bytecode refuses too).
The .pyc files are unchecked-hash ones (PEP 552): the asset never changes after the build, and the zip CDK uploads
does not keep the source mtimes a timestamp-checked .pyc would compare against.

    authorizer_code(route_table, architecture="arm64")          # aws_lambda.Code with local bundling (CDK)
    build_authorizer_asset("build/authorizer-arm64", architecture="arm64", route_table=table)
    python -m stacks.aws.authorizer_asset --architecture arm64 --out build/authorizer-arm64   # prints zipped size
"""
from __future__ import annotations

import argparse
import compileall
import importlib.util
import io
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Mapping

from lambdas.validation.vetted_keys import write_vetted_keys

REPO_ROOT = Path(__file__).resolve().parents[2]
ROUTE_TABLE_FILE = "authgate_routes.json"
MANIFEST_FILE = "authgate_asset.json"
# Lambda's Python runtimes and the glibc of the Amazon Linux each runs on (python3.11: Amazon Linux 2, glibc 2.26;
# later ones: Amazon Linux 2023, glibc 2.34): a manylinux wheel loads there when its tag's glibc is not newer.
LAMBDA_PYTHON_GLIBC = {"3.11": (2, 26), "3.12": (2, 34), "3.13": (2, 34), "3.14": (2, 34)}
_MANYLINUX_GLIBC = {"manylinux2014": (2, 17), "manylinux_2_28": (2, 28), "manylinux_2_34": (2, 34)}
MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}
DEFAULT_CACHE = Path(os.environ.get("AUTHGATE_WHEEL_CACHE", Path.home() / ".cache" / "authgate" / "wheels"))
# Files the Lambda never needs: trimmed from the asset to keep it small. Bytecode the wheels or a copy brought along
# goes too; the asset's own is compiled afterwards, by the runtime's interpreter.
_STRIP_DIRS = {"__pycache__", "tests", "testing"}
_STRIP_SUFFIXES = (".pyc", ".pyi", ".c", ".h")
# Where Lambda puts the asset: compiled-in paths point there, so a traceback names the deployed file.
LAMBDA_TASK_ROOT = "/var/task"


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


def building_python() -> str:
    """The running interpreter's version, "3.X"."""
    major, minor = sys.version_info[:2]
    return f"{major}.{minor}"


def asset_python_version() -> str:
    """The Python version the asset targets: the building interpreter's. Raises AssetBuildError when Lambda has no
    runtime for it, since bytecode and binary wheels for another version would be dead weight or would not load."""
    version = building_python()
    if version not in LAMBDA_PYTHON_GLIBC:
        raise AssetBuildError(
            f"the authorizer asset is built for the interpreter that builds it (its bytecode is only valid there), "
            f"and Lambda has no python{version} runtime; build with one of "
            f"{', '.join('python' + v for v in LAMBDA_PYTHON_GLIBC)}")
    return version


def lambda_runtime_name() -> str:
    """The Lambda runtime the asset built here runs on, e.g. "python3.11"."""
    return f"python{asset_python_version()}"


def platform_tags(architecture: str, python_version: str) -> list[str]:
    """The manylinux tags whose wheels load on the runtime's Amazon Linux for `architecture`."""
    if architecture not in MACHINES:
        raise AssetBuildError(f"architecture must be one of {', '.join(MACHINES)}, got {architecture!r}")
    glibc = LAMBDA_PYTHON_GLIBC[python_version]
    return [f"{tag}_{MACHINES[architecture]}" for tag, needs in _MANYLINUX_GLIBC.items() if needs <= glibc]


def download_wheels(architecture: str, *, cache_dir: Path = DEFAULT_CACHE) -> Path:
    """The platform's wheels in cache_dir/<arch>-cp<ver>/, downloaded only when a pinned one is missing."""
    version = asset_python_version()
    tags = platform_tags(architecture, version)
    target = Path(cache_dir) / f"{architecture}-cp{version.replace('.', '')}"
    requirements = runtime_requirements()
    wanted = [r.split("==")[0].lower() + "-" + r.split("==")[1] for r in requirements]
    have = {p.name.lower() for p in target.glob("*.whl")} if target.is_dir() else set()
    if not all(any(name.startswith(w + "-") for name in have) for w in wanted):
        target.mkdir(parents=True, exist_ok=True)
        platforms = [arg for tag in tags for arg in ("--platform", tag)]
        _pip("download", "--quiet", "--only-binary=:all:", "--implementation", "cp", "--python-version",
             version, *platforms, "--dest", str(target), *requirements)
    return target


def build_authorizer_asset(out_dir: str | Path, *, architecture: str = "x86_64",
                           route_table: Mapping[str, Any] | None = None, cache_dir: Path = DEFAULT_CACHE) -> Path:
    """Write the asset into out_dir (replaced if it exists) and return it."""
    out = Path(out_dir)
    version = asset_python_version()
    wheels = download_wheels(architecture, cache_dir=cache_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    platforms = [arg for tag in platform_tags(architecture, version) for arg in ("--platform", tag)]
    _pip("install", "--quiet", "--no-index", "--find-links", str(wheels), "--only-binary=:all:", "--implementation",
         "cp", "--python-version", version, *platforms, "--target", str(out), "--no-compile",
         *runtime_requirements())
    shutil.copytree(REPO_ROOT / "lambdas", out / "lambdas",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "README.md"))
    _trim(out)
    compile_bytecode(out, python_version=version)
    if route_table is not None:
        (out / ROUTE_TABLE_FILE).write_text(json.dumps(route_table, indent=2) + "\n")
        write_vetted_keys(out, route_table)
    write_manifest(out, architecture=architecture, python_version=version)
    return out


def compile_bytecode(root: Path, *, python_version: str) -> int:
    """Compile every .py under root for `python_version` and return how many were compiled. Refuses (AssetBuildError)
    unless the running interpreter is that version: bytecode written by another would be mislabelled for the runtime
    (and ignored by it, so every cold start would compile again)."""
    if building_python() != python_version:
        raise AssetBuildError(f"cannot compile bytecode for python{python_version} with Python {building_python()}: "
                              f"run the build with python{python_version}")
    sources = sum(1 for _ in root.rglob("*.py"))
    ok = compileall.compile_dir(str(root), quiet=1, ddir=LAMBDA_TASK_ROOT, optimize=0, workers=1,
                                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    if not ok:
        raise AssetBuildError(f"compiling the asset in {root} failed (a module does not compile with Python "
                              f"{python_version}); see the errors above")
    return sources


def stale_bytecode(root: str | Path) -> list[str]:
    """Sources under root whose .pyc was not compiled from them as they are now (edited after the build, or never
    compiled). Unchecked-hash bytecode is used without looking at the source, so an edited source would silently
    not run; whoever deploys a prebuilt asset checks this first. Call with the interpreter that built the asset."""
    root = Path(root)
    stale = []
    for source in sorted(root.rglob("*.py")):
        cached = Path(importlib.util.cache_from_source(str(source)))
        header = cached.read_bytes()[:16] if cached.is_file() else b""
        if (len(header) < 16 or header[:4] != importlib.util.MAGIC_NUMBER
                or header[8:16] != importlib.util.source_hash(source.read_bytes())):
            stale.append(str(source.relative_to(root)))
    return stale


def write_manifest(root: Path, *, architecture: str, python_version: str) -> None:
    """Record what the asset was built for, so whoever deploys it picks the runtime its bytecode and wheels fit."""
    manifest = {"runtime": f"python{python_version}", "architecture": architecture,
                "bytecode_cache_tag": sys.implementation.cache_tag,
                "bytecode_magic": importlib.util.MAGIC_NUMBER.hex()}
    (root / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")


def read_manifest(root: str | Path) -> dict[str, str] | None:
    """The asset's manifest, or None for a directory without one (e.g. a bare copy of lambdas/)."""
    path = Path(root) / MANIFEST_FILE
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text())
    if not isinstance(manifest, dict) or not isinstance(manifest.get("runtime"), str):
        raise AssetBuildError(f"{path} is not an authorizer asset manifest (no runtime); rebuild the asset")
    return manifest


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
    options = BundlingOptions(image=DockerImage.from_registry(f"public.ecr.aws/sam/build-{lambda_runtime_name()}"),
                              local=AuthorizerBundling())
    return lambda_.Code.from_asset(str(REPO_ROOT / "lambdas"), bundling=options,
                                   asset_hash=_asset_hash(route_table, architecture),
                                   asset_hash_type=_custom_hash_type())


def _custom_hash_type():
    from aws_cdk import AssetHashType
    return AssetHashType.CUSTOM


def _asset_hash(route_table: Mapping[str, Any] | None, architecture: str) -> str:
    import hashlib
    digest = hashlib.sha256(architecture.encode() + lambda_runtime_name().encode()
                            + json.dumps(runtime_requirements()).encode())
    digest.update(json.dumps(route_table, sort_keys=True).encode() if route_table is not None else b"")
    for path in sorted((REPO_ROOT / "lambdas").rglob("*.py")):
        digest.update(str(path.relative_to(REPO_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the Lambda authorizer asset and print its zipped size.")
    parser.add_argument("--architecture", choices=sorted(MACHINES), default="x86_64")
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
    print(f"authorizer asset {args.architecture} {lambda_runtime_name()} (bytecode {sys.implementation.cache_tag}): "
          f"{out} zipped {size} bytes ({size / 1024 / 1024:.2f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
