"""Reading resource properties the way the policy engine passes them (camelCase, read-only mappings and sequences)."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any


def get_path(props: Any, *path: str) -> Any:
    """props[a][b]... or None when any step is missing or not a mapping."""
    value = props
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def as_list(value: Any) -> list[Any]:
    """A sequence property as a list; None or a missing property as []; a lone string as [string]."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence):
        return list(value)
    return [value]


def is_type(resource_type: str, module: str, name: str) -> bool:
    """Match a type token, including azure-native's versioned ones (azure-native:apimanagement/v20240501:Api)."""
    provider_module, _, resource = resource_type.rpartition(":")
    if resource != name:
        return False
    return provider_module == module or re.fullmatch(re.escape(module) + r"/v[0-9a-z]+", provider_module) is not None
