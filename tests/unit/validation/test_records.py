"""Record: what the decision path's value objects keep of @dataclass(frozen=True) without importing dataclasses."""
from __future__ import annotations

import pytest

from lambdas.validation.config import BindingConfig, IssuerConfig
from lambdas.validation.records import Record, set_field
from lambdas.validation.route_table import PathTemplate


class Pair(Record):
    __slots__ = ("left", "right", "_cache")

    def __init__(self, left, right=0) -> None:
        set_field(self, "left", left)
        set_field(self, "right", right)
        set_field(self, "_cache", object())


def test_fields_are_the_public_slots_and_equality_hash_and_repr_use_them():
    assert Pair._fields == ("left", "right")
    assert Pair(1, 2) == Pair(1, 2) and hash(Pair(1, 2)) == hash(Pair(1, 2))  # _cache differs, ignored
    assert Pair(1, 2) != Pair(2, 1)
    assert Pair(1, 2) != (1, 2), "a record equals only a record of its own class"
    assert repr(Pair(1, "x")) == "Pair(left=1, right='x')"
    assert Pair(1, 2).field_values() == {"left": 1, "right": 2}


def test_records_cannot_be_assigned_or_deleted():
    pair = Pair(1)
    with pytest.raises(AttributeError, match="immutable"):
        pair.left = 5
    with pytest.raises(AttributeError, match="immutable"):
        del pair.left
    with pytest.raises(AttributeError, match="immutable"):
        IssuerConfig("https://idp.example.test", ["api"]).issuer = "https://evil.example"


def test_replace_builds_through_init_so_its_checks_still_run():
    config = IssuerConfig("https://idp.example.test", ["api"])
    assert config.replace(leeway_seconds=5).leeway_seconds == 5
    assert config.replace(leeway_seconds=5).issuer == config.issuer
    with pytest.raises(ValueError, match="leeway_seconds"):
        config.replace(leeway_seconds=10_000)
    with pytest.raises(TypeError, match="no field"):
        config.replace(accepted_issuers=("https://evil.example",))
    with pytest.raises(ValueError, match="binding.dpop"):
        BindingConfig().replace(dpop="yes")


def test_records_stay_hashable_as_sets_of_routes_need():
    template = PathTemplate.parse("/orders/{id}", where="test")
    assert {template, PathTemplate.parse("/orders/{id}", where="test")} == {template}


def test_no_module_of_the_validation_package_or_the_authorizers_imports_dataclasses():
    # Remote keys (fetcher, jwks_cache, discovery), DPoP proofs and logout tokens are on some deployments' decision
    # path too; none of them may bring back the ~10 ms import of dataclasses (and inspect, ast, dis, tokenize).
    # explain.py is left out: only the CLI and `Verifier.explain` load it, never a decision.
    import pathlib
    import subprocess
    import sys
    root = pathlib.Path(__file__).resolve().parents[3]
    modules = sorted(f"lambdas.{path.parent.name}.{path.stem}" for folder in ("validation", "authorizers")
                     for path in (root / "lambdas" / folder).glob("*.py") if path.stem not in ("__init__", "explain"))
    code = (f"import importlib, sys\nfor name in {modules!r}:\n    importlib.import_module(name)\n"
            "print(sorted(m for m in ('dataclasses', 'inspect') if m in sys.modules))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert found.stdout.strip() == "[]", found.stdout
