"""Stack configuration: read and check every `authgate:*` key, and say which key is wrong and what to set instead."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

CLOUDS = ("gcp", "azure")
NAMESPACE = "authgate"


class StackConfigError(ValueError):
    """A missing or invalid stack config value; the message names the key and shows a command that sets it."""

    def __init__(self, key: str, problem: str, example: str, *, set_key: str | None = None,
                 command: str | None = None):
        self.key = key
        target = set_key or key
        if command is None:
            nested = "." in target.partition(":")[2] or "[" in target
            command = (f"pulumi config set --path '{target}' {example}" if nested
                       else f"pulumi config set {target} {example}")
        super().__init__(f"stack config {key}: {problem}. Fix it with: {command}")


class ConfigSource:
    """The few reads the settings need, over pulumi.Config (or a plain dict in unit tests)."""

    def __init__(self, get: Callable[[str], str | None], get_secret: Callable[[str], Any] | None = None):
        self._get = get
        self._get_secret = get_secret

    @classmethod
    def from_pulumi(cls) -> "ConfigSource":
        import pulumi

        namespaces: dict[str, pulumi.Config] = {}

        def config(ns: str) -> "pulumi.Config":
            return namespaces.setdefault(ns, pulumi.Config(ns))

        def get(key: str) -> str | None:
            ns, _, name = key.partition(":")
            return config(ns).get(name)

        def get_secret(key: str):
            ns, _, name = key.partition(":")
            return config(ns).get_secret(name)

        return cls(get, get_secret)

    def text(self, key: str, *, example: str, required: bool = True, default: str | None = None) -> str | None:
        value = self._get(key)
        if value is None or value == "":
            if required:
                raise StackConfigError(key, "is required", example)
            return default
        return value

    def choice(self, key: str, choices: tuple[str, ...], *, default: str | None = None) -> str:
        value = self.text(key, example=choices[0], required=default is None, default=default)
        if value not in choices:
            raise StackConfigError(key, f"must be one of {', '.join(choices)}, not {value!r}", choices[0])
        return value

    def object(self, key: str, *, example: str, required: bool = False) -> dict[str, Any] | None:
        raw = self.text(key, example=f"'{example}'", required=required)
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            raise StackConfigError(key, "is not a structured value (YAML mapping / JSON object)",
                                   f"'{example}'") from None
        if not isinstance(value, dict):
            raise StackConfigError(key, "must be a mapping of settings", f"'{example}'")
        return value

    def secret(self, key: str):
        return self._get_secret(key) if self._get_secret else self._get(key)


def field_of(obj: dict[str, Any], key: str, name: str, kind: type | tuple, *, example: str, required: bool = True,
             default: Any = None) -> Any:
    """One field of a structured config value, type-checked, with errors naming key.name."""
    if name not in obj or obj[name] is None:
        if required:
            raise StackConfigError(f"{key}.{name}", "is required", example)
        return default
    value = obj[name]
    if kind is list and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
        raise StackConfigError(f"{key}.{name}", f"must be a list of strings, not {value!r}", example,
                               set_key=f"{key}.{name}[0]")
    if kind is not list and not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise StackConfigError(f"{key}.{name}", f"must be a {getattr(kind, '__name__', kind)}, not {value!r}",
                               example)
    return value


def unknown_fields(obj: dict[str, Any], key: str, allowed: tuple[str, ...]) -> None:
    extra = sorted(set(obj) - set(allowed))
    if extra:
        raise StackConfigError(f"{key}.{extra[0]}", f"is not a setting here (allowed: {', '.join(allowed)})", "",
                               command=f"pulumi config rm --path '{key}.{extra[0]}'")


def checked(key: str, build: Callable[[], Any]) -> Any:
    """Run a component's args constructor; its ValueError (which names the field) becomes a StackConfigError."""
    try:
        return build()
    except StackConfigError:
        raise
    except ValueError as exc:
        raise StackConfigError(key, str(exc), "", command=f"pulumi config set --path '{key}.<field>' <value> "
                                                          f"(or edit {key} in Pulumi.<stack>.yaml)") from None


def project_root(start: Path | None = None) -> Path:
    """The directory holding Pulumi.yaml: relative paths in stack config are relative to it, wherever pulumi runs."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "Pulumi.yaml").is_file():
            return directory
    return here


@dataclass(frozen=True)
class CommonSettings:
    cloud: str
    policy_path: Path
    api_name: str


def read_common(source: ConfigSource, root: Path | None = None) -> CommonSettings:
    cloud = source.choice(f"{NAMESPACE}:cloud", CLOUDS)
    policy_text = source.text(f"{NAMESPACE}:policy", example="policies/example.yaml")
    policy_path = Path(policy_text)
    if not policy_path.is_absolute():
        policy_path = project_root(root) / policy_path
    if not policy_path.is_file():
        raise StackConfigError(f"{NAMESPACE}:policy", f"no policy file at {policy_path}",
                               "policies/example.yaml")
    api_name = source.text(f"{NAMESPACE}:api", example="orders")
    return CommonSettings(cloud, policy_path, api_name)


def gcp_id_from_name(name: str) -> str:
    """A policy API name as a GCP resource id (lower case, hyphens)."""
    return re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")


# The AlarmThresholds fields a Pulumi stack may set in authgate:monitoring, with their camelCase config names.
THRESHOLD_FIELDS = {"keyFetchFailureMinutes": "key_fetch_failure_minutes", "latencyP99Ms": "latency_p99_ms",
                    "unauthorizedSharePercent": "unauthorized_share_percent"}


def alarm_thresholds(value: dict[str, Any], key: str):
    """stacks.alarms.AlarmThresholds from the THRESHOLD_FIELDS of a monitoring section (defaults for the rest)."""
    from stacks.alarms import AlarmThresholds

    defaults = AlarmThresholds()
    chosen = {field: field_of(value, key, name, int, example=str(int(getattr(defaults, field))), required=False,
                              default=getattr(defaults, field))
              for name, field in THRESHOLD_FIELDS.items()}
    return checked(key, lambda: AlarmThresholds(**chosen))
