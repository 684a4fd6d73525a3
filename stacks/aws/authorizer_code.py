"""The Lambda authorizer's code for one deployment: the authorizer asset with this policy's route table inside."""
from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import aws_lambda as lambda_

from stacks.aws.authorizer_asset import (MANIFEST_FILE, ROUTE_TABLE_FILE, lambda_runtime_name, read_manifest,
                                         stale_bytecode)
from lambdas.validation.vetted_keys import write_vetted_keys
from stacks.aws.refusals import UnsupportedConfiguration


def route_table_bytes(route_table: Mapping) -> bytes:
    return (json.dumps(route_table, indent=2, sort_keys=False, ensure_ascii=False) + "\n").encode()


def prebuilt_authorizer_code(prebuilt_dir: str | Path, route_table: Mapping, *, staging_root: str | Path,
                             architecture: str) -> lambda_.Code:
    """A prebuilt asset directory (lambdas/ plus its runtime dependencies) with the route table added.

    The copy lives under staging_root, named after its content, so the same policy and asset give the same
    asset hash on every synth and the prebuilt directory itself is never modified.

    An asset built by stacks/aws/authorizer_asset.py says in its manifest which runtime and architecture it was built
    for; it must be the runtime the functions deploy (the one this interpreter builds for) and their architecture,
    else it is refused: its bytecode and binary wheels fit only that runtime. Its bytecode is kept, once every source
    is checked to be what its (unchecked) bytecode was compiled from. A directory
    without a manifest (a bare copy of lambdas/) is deployed without bytecode, since nothing says whom it is for.
    """
    source = Path(prebuilt_dir)
    if not (source / "lambdas" / "authorizers").is_dir():
        raise UnsupportedConfiguration(
            f"authorizer asset directory {source} has no lambdas/authorizers; build it with the authorizer asset "
            "builder (stacks/aws/authorizer_asset.py) or point authgate:authorizer_asset_dir at its output")
    manifest = read_manifest(source)
    if manifest is not None:
        built_for = (manifest["runtime"], manifest.get("architecture"))
        wanted = (lambda_runtime_name(), architecture)
        if built_for != wanted:
            raise UnsupportedConfiguration(
                f"authorizer asset {source} was built for {built_for[0]} on {built_for[1]} ({MANIFEST_FILE}), but "
                f"the authorizer functions deploy {wanted[0]} on {wanted[1]}; rebuild it with "
                f"python{wanted[0].removeprefix('python')} -m stacks.aws.authorizer_asset --architecture "
                f"{architecture} --out {source}, or run synth with the interpreter that built it")
        stale = stale_bytecode(source)
        if stale:
            raise UnsupportedConfiguration(
                f"authorizer asset {source}: {len(stale)} source file(s) do not match their bytecode (edited after "
                f"the build?), e.g. {', '.join(stale[:3])}; Lambda would run the old bytecode. Rebuild the asset with "
                f"python -m stacks.aws.authorizer_asset --architecture {architecture} --out {source}")

    def shipped(path: Path) -> bool:
        bytecode = "__pycache__" in path.parts or path.suffix == ".pyc"
        return path.is_file() and (manifest is not None or not bytecode)

    table = route_table_bytes(route_table)
    digest = hashlib.sha256(table)
    for path in sorted(p for p in source.rglob("*") if shipped(p)):
        digest.update(str(path.relative_to(source)).encode())
        digest.update(path.read_bytes())
    staged = Path(staging_root) / f"authorizer-{digest.hexdigest()[:16]}"
    if not staged.is_dir():
        partial = staged.with_name(staged.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        ignore = None if manifest is not None else shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(source, partial, ignore=ignore)
        (partial / ROUTE_TABLE_FILE).write_bytes(table)
        write_vetted_keys(partial, route_table)
        partial.rename(staged)
    return lambda_.Code.from_asset(str(staged))
