"""The Docker-free authorizer asset: right-platform wheels, trimmed, route table inside, bytecode for exactly its
runtime, runnable as Lambda runs it (read-only, nothing compiled at run time)."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lambdas.validation.vetted_keys import VETTED_KEYS_FILE, vetted_keys_record
from stacks.aws.authorizer_asset import (MANIFEST_FILE, ROUTE_TABLE_FILE, AssetBuildError, build_authorizer_asset,
                                         compile_bytecode, lambda_runtime_name, read_manifest, zipped_size)
from tests.support.route_tables import route, table_document

ELF_MACHINE = {"x86_64": 0x3E, "arm64": 0xB7}


def _machine(shared_object: Path) -> int:
    header = shared_object.read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    return int.from_bytes(header[18:20], "little")


@pytest.fixture(scope="module")
def table(tmp_path_factory, key):
    document = table_document(key, [route("GET /orders", scopes=["orders:read"])],
                              extra_apis={"stream": {"routes": [route("$connect", scopes=["orders:read"])]}})
    return key, document


@pytest.mark.parametrize("architecture", ["x86_64", "arm64"])
def test_asset_holds_platform_wheels_and_the_route_table(tmp_path, table, architecture):
    out = build_authorizer_asset(tmp_path / "asset", architecture=architecture, route_table=table[1])
    assert json.loads((out / ROUTE_TABLE_FILE).read_text()) == table[1]
    assert (out / "lambdas" / "authorizers" / "rest.py").is_file()
    assert (out / "lambdas" / "validation" / "verifier.py").is_file()
    [rust] = list((out / "cryptography" / "hazmat" / "bindings").glob("_rust*.so"))
    assert _machine(rust) == ELF_MACHINE[architecture]
    assert not list(out.rglob("RECORD"))
    assert zipped_size(out) < 8 * 1024 * 1024


# The bytecode magic of each Lambda Python runtime's CPython (importlib.util.MAGIC_NUMBER of its final releases), as
# an oracle independent of the interpreter the tests run on; python3.14's is read from a python3.14 when present.
RUNTIME_MAGIC = {"python3.11": 3495, "python3.12": 3531, "python3.13": 3571}


def runtime_magic(runtime: str) -> bytes:
    """The 4-byte bytecode magic of the Lambda runtime `runtime`, from the table or from that interpreter itself."""
    if runtime in RUNTIME_MAGIC:
        return RUNTIME_MAGIC[runtime].to_bytes(2, "little") + b"\r\n"
    interpreter = shutil.which(runtime)
    if interpreter is None:
        pytest.skip(f"no {runtime} here to ask for its bytecode magic")
    out = subprocess.run([interpreter, "-I", "-c", "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"],
                         capture_output=True, text=True, check=True)
    return bytes.fromhex(out.stdout.strip())


@pytest.fixture(scope="module")
def built(tmp_path_factory, table) -> Path:
    """One asset for this machine's architecture, shared by the bytecode tests (it takes seconds to build)."""
    architecture = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
    return build_authorizer_asset(tmp_path_factory.mktemp("built") / "asset", architecture=architecture,
                                  route_table=table[1])


def test_asset_bytecode_is_for_exactly_the_runtime_it_targets(built):
    manifest = read_manifest(built)
    runtime = manifest["runtime"]
    assert runtime == lambda_runtime_name() == f"python{sys.version_info.major}.{sys.version_info.minor}"
    tag = "cpython-" + runtime.removeprefix("python").replace(".", "")
    magic = runtime_magic(runtime)
    assert manifest["bytecode_cache_tag"] == tag and manifest["bytecode_magic"] == magic.hex()
    sources = sorted(built.rglob("*.py"))
    for package in ("lambdas", "cryptography", "cffi", "pycparser"):
        assert any(path.relative_to(built).parts[0] == package for path in sources), package
    missing = [str(p.relative_to(built)) for p in sources
               if not (p.parent / "__pycache__" / f"{p.stem}.{tag}.pyc").is_file()]
    assert not missing, f"sources without bytecode for {runtime}: {missing[:10]}"
    bytecode = sorted(built.rglob("*.pyc"))
    assert len(bytecode) == len(sources)   # nothing for another interpreter or optimisation level
    for path in bytecode:
        header = path.read_bytes()[:8]
        assert path.name.endswith(f".{tag}.pyc") and path.parent.name == "__pycache__", path
        assert header[:4] == magic, f"{path.relative_to(built)}: magic {header[:4].hex()}, {runtime} is {magic.hex()}"
        # PEP 552 flags: 0b01 = hash-based, unchecked. Lambda's zip keeps no source mtimes to check against.
        assert int.from_bytes(header[4:8], "little") == 0b01, path


def test_bytecode_compile_refuses_to_write_another_interpreters_bytecode(tmp_path):
    (tmp_path / "m.py").write_text("x = 1\n")
    other = "3.12" if sys.version_info[:2] == (3, 11) else "3.11"
    with pytest.raises(AssetBuildError, match=f"cannot compile bytecode for python{other} with Python"):
        compile_bytecode(tmp_path, python_version=other)
    assert not list(tmp_path.rglob("*.pyc"))


@pytest.mark.parametrize("version_info", [(3, 10, 14), (3, 15, 0)])
def test_an_interpreter_lambda_has_no_runtime_for_is_refused(monkeypatch, version_info):
    monkeypatch.setattr(sys, "version_info", version_info)
    with pytest.raises(AssetBuildError, match=r"Lambda has no python3\.1[05] runtime; build with one of python3.11"):
        lambda_runtime_name()


@pytest.mark.skipif(platform.machine() != "x86_64", reason="runs the x86_64 wheels on this interpreter")
def test_asset_runs_from_its_bytecode_and_compiles_nothing(tmp_path, built, table):
    """The handler's own source is replaced by a module that fails: the import still works because the unchecked
    bytecode is what runs, and with -B (as on a read-only /var/task) nothing new is compiled or written."""
    from tests.support.tokens import mint
    key, _ = table
    asset = tmp_path / "asset"
    shutil.copytree(built, asset)
    (asset / "lambdas" / "authorizers" / "rest.py").write_text('raise SystemExit("compiled from source")\n')
    before = sorted(asset.rglob("*.pyc"))
    event = {"type": "TOKEN", "authorizationToken": f"Bearer {mint(key, scope='orders:read')}",
             "methodArn": "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/orders"}
    script = ("import json, sys; sys.path.insert(0, sys.argv[1]); import lambdas.authorizers.rest as r; "
              "print(json.dumps(r.handler(json.loads(sys.argv[2]))))")
    env = {"PATH": os.environ.get("PATH", ""), "AUTHGATE_POLICY": str(asset / ROUTE_TABLE_FILE),
           "AUTHGATE_API": "orders"}
    result = subprocess.run([sys.executable, "-I", "-S", "-B", "-c", script, str(asset), json.dumps(event)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert sorted(asset.rglob("*.pyc")) == before


# Loaded only when a decision needs them: remote keys (bundled here), explanations, DPoP proofs (no route or token
# here uses them), logging, URL parsing, TLS and HTTP clients. Never: dataclasses (and the inspect, ast, dis and
# tokenize it loads), which the decision path's records (lambdas/validation/records.py) replace for cold start.
NOT_FOR_A_DECISION = ("lambdas.validation.explain", "lambdas.validation.fetcher", "lambdas.validation.jwks_cache",
                      "lambdas.validation.discovery", "lambdas.validation.dpop", "http.client", "ssl", "socket",
                      "logging", "email", "urllib.parse", "urllib.request", "ipaddress", "yaml", "pydantic", "jwt",
                      "dataclasses", "inspect", "ast", "dis", "tokenize")


@pytest.mark.skipif(platform.machine() != "x86_64", reason="runs the x86_64 wheels on this interpreter")
@pytest.mark.parametrize("kind", ["http_api", "rest", "websocket"])
def test_a_cold_decision_imports_only_what_it_needs(built, table, kind):
    from tests.support.tokens import mint
    raw = mint(table[0], scope="orders:read")
    arn = "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod"
    event, api = {
        "http_api": ({"version": "2.0", "type": "REQUEST", "routeArn": f"{arn}/GET/orders", "routeKey": "GET /orders",
                      "rawPath": "/orders", "headers": {"authorization": f"Bearer {raw}"},
                      "requestContext": {"http": {"method": "GET", "path": "/orders"}, "requestId": "r"}}, "orders"),
        "rest": ({"type": "TOKEN", "authorizationToken": f"Bearer {raw}", "methodArn": f"{arn}/GET/orders"},
                 "orders"),
        "websocket": ({"type": "REQUEST", "methodArn": f"{arn}/$connect", "headers": {},
                       "queryStringParameters": {"access_token": raw},
                       "requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "requestId": "r"}},
                      "stream"),
    }[kind]
    script = ("import json, sys; sys.path.insert(0, sys.argv[1]); import importlib; "
              "handler = importlib.import_module('lambdas.authorizers.' + sys.argv[2]).handler; "
              "response = handler(json.loads(sys.argv[3])); "
              "print(json.dumps({'response': response, 'modules': sorted(sys.modules)}))")
    env = {"PATH": os.environ.get("PATH", ""), "AUTHGATE_POLICY": str(built / ROUTE_TABLE_FILE), "AUTHGATE_API": api}
    result = subprocess.run([sys.executable, "-I", "-S", "-B", "-c", script, str(built), kind, json.dumps(event)],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    response = report["response"]
    assert response.get("isAuthorized") is True or response["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    loaded = set(report["modules"])
    assert "lambdas.validation.verifier" in loaded
    assert not loaded.intersection(NOT_FOR_A_DECISION), sorted(loaded.intersection(NOT_FOR_A_DECISION))


@pytest.mark.skipif(platform.machine() != "x86_64" or sys.version_info[:2] < (3, 11),
                    reason="runs the x86_64 abi3 wheel on this interpreter")
def test_asset_runs_the_rest_handler_from_its_own_files(tmp_path, table):
    from tests.support.tokens import mint
    key, document = table
    out = build_authorizer_asset(tmp_path / "asset", architecture="x86_64", route_table=document)
    event = {"type": "TOKEN", "authorizationToken": f"Bearer {mint(key, scope='orders:read')}",
             "methodArn": "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/orders"}
    script = ("import json, sys, lambdas.authorizers.rest as r, cryptography; "
              "assert cryptography.__file__.startswith(sys.argv[1]), cryptography.__file__; "
              "print(json.dumps(r.handler(json.loads(sys.argv[2]))))")
    env = {"PATH": os.environ.get("PATH", ""), "AUTHGATE_POLICY": str(out / ROUTE_TABLE_FILE),
           "AUTHGATE_API": "orders", "PYTHONPATH": str(out)}
    result = subprocess.run([sys.executable, "-I", "-c", script.replace("import json", "import sys; sys.path.insert("
                             "0, sys.argv[1]); import json"), str(out), json.dumps(event)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout.strip().splitlines()[-1])
    assert response["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_cdk_local_bundling_builds_the_asset_without_docker(tmp_path, table, monkeypatch):
    monkeypatch.setenv("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_

    from stacks.aws.authorizer_asset import authorizer_code
    app = cdk.App(outdir=str(tmp_path / "cdk.out"))
    stack = cdk.Stack(app, "AssetTest")
    lambda_.Function(stack, "Authorizer", runtime=lambda_.Runtime(lambda_runtime_name()),
                     architecture=lambda_.Architecture.ARM_64,
                     handler="lambdas.authorizers.rest.handler",
                     code=authorizer_code(table[1], architecture="arm64"))
    assembly = app.synth()
    staged = [p for p in Path(assembly.directory).glob("asset.*") if p.is_dir()]
    assert len(staged) == 1
    assert json.loads((staged[0] / ROUTE_TABLE_FILE).read_text()) == table[1]
    [rust] = list((staged[0] / "cryptography" / "hazmat" / "bindings").glob("_rust*.so"))
    assert _machine(rust) == ELF_MACHINE["arm64"]


# ----- a prebuilt asset handed to synth (authgate:authorizer_asset_dir) ---------------------------------------------

def test_prebuilt_asset_keeps_its_bytecode_when_built_for_the_deployed_runtime(tmp_path, built, table):
    from stacks.aws.authorizer_code import prebuilt_authorizer_code
    architecture = read_manifest(built)["architecture"]
    code = prebuilt_authorizer_code(built, table[1], staging_root=tmp_path, architecture=architecture)
    [staged] = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert Path(code.path) == staged
    assert len(list(staged.rglob("*.pyc"))) == len(list(built.rglob("*.pyc"))) > 100
    assert json.loads((staged / VETTED_KEYS_FILE).read_text()) == vetted_keys_record(table[1])


def test_the_asset_records_the_bundled_keys_it_vetted_beside_the_route_table(built, table):
    record = json.loads((built / VETTED_KEYS_FILE).read_text())
    modulus = base64.urlsafe_b64decode(table[0].jwk()["n"] + "==")
    assert record["rsa_moduli_sha256"] == [hashlib.sha256(modulus).hexdigest()]


@pytest.mark.parametrize("change", [{"runtime": "python3.14"}, {"architecture": "sparc"}])
def test_prebuilt_asset_built_for_another_runtime_or_architecture_is_refused(tmp_path, built, table, change):
    from stacks.aws.authorizer_code import prebuilt_authorizer_code
    from stacks.aws.refusals import UnsupportedConfiguration
    asset = tmp_path / "asset"
    shutil.copytree(built, asset)
    manifest = {**read_manifest(built), **change}
    if manifest["runtime"] == lambda_runtime_name():
        manifest["runtime"] = "python3.12"
    (asset / MANIFEST_FILE).write_text(json.dumps(manifest))
    architecture = read_manifest(built)["architecture"]
    with pytest.raises(UnsupportedConfiguration, match="was built for .* but the authorizer functions deploy"):
        prebuilt_authorizer_code(asset, table[1], staging_root=tmp_path / "staging", architecture=architecture)


def test_prebuilt_asset_whose_source_was_edited_after_the_build_is_refused(tmp_path, built, table):
    from stacks.aws.authorizer_code import prebuilt_authorizer_code
    from stacks.aws.refusals import UnsupportedConfiguration
    asset = tmp_path / "asset"
    shutil.copytree(built, asset)
    verifier = asset / "lambdas" / "validation" / "verifier.py"
    verifier.write_text(verifier.read_text() + "\n# a local fix\n")
    with pytest.raises(UnsupportedConfiguration, match=r"1 source file\(s\) do not match their bytecode .*"
                                                       r"lambdas/validation/verifier\.py"):
        prebuilt_authorizer_code(asset, table[1], staging_root=tmp_path / "staging",
                                 architecture=read_manifest(built)["architecture"])


def test_prebuilt_directory_without_a_manifest_is_deployed_without_bytecode(tmp_path, built, table):
    from stacks.aws.authorizer_code import prebuilt_authorizer_code
    asset = tmp_path / "asset"
    shutil.copytree(built, asset)
    (asset / MANIFEST_FILE).unlink()
    prebuilt_authorizer_code(asset, table[1], staging_root=tmp_path / "staging", architecture="arm64")
    [staged] = list((tmp_path / "staging").iterdir())
    assert (staged / "lambdas" / "authorizers" / "rest.py").is_file() and not list(staged.rglob("*.pyc"))
