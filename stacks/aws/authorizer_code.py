"""The Lambda authorizer's code for one deployment: the authorizer asset with this policy's route table inside."""
from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import aws_lambda as lambda_

from stacks.aws.authorizer_asset import ROUTE_TABLE_FILE
from stacks.aws.refusals import UnsupportedConfiguration



def route_table_bytes(route_table: Mapping) -> bytes:
    return (json.dumps(route_table, indent=2, sort_keys=False, ensure_ascii=False) + "\n").encode()


def prebuilt_authorizer_code(prebuilt_dir: str | Path, route_table: Mapping, *, staging_root: str | Path
                             ) -> lambda_.Code:
    """A prebuilt asset directory (lambdas/ plus its runtime dependencies) with the route table added.

    The copy lives under staging_root, named after its content, so the same policy and asset give the same
    asset hash on every synth and the prebuilt directory itself is never modified.
    """
    source = Path(prebuilt_dir)
    if not (source / "lambdas" / "authorizers").is_dir():
        raise UnsupportedConfiguration(
            f"authorizer asset directory {source} has no lambdas/authorizers; build it with the authorizer asset "
            "builder (stacks/aws/authorizer_asset.py) or point authgate:authorizer_asset_dir at its output")
    table = route_table_bytes(route_table)
    digest = hashlib.sha256(table)
    for path in sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(source)).encode())
        digest.update(path.read_bytes())
    staged = Path(staging_root) / f"authorizer-{digest.hexdigest()[:16]}"
    if not staged.is_dir():
        partial = staged.with_name(staged.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(source, partial, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (partial / ROUTE_TABLE_FILE).write_bytes(table)
        partial.rename(staged)
    return lambda_.Code.from_asset(str(staged))
