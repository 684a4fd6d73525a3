"""GCP resource-id rules the components check before Pulumi sends anything to Google, so mistakes fail at preview."""
from __future__ import annotations

import re

# Service account ids, API Gateway api/gateway ids, workload identity pool and provider ids share this shape
# (RFC 1035 label, lower case); only the length bounds differ.
_LABEL = re.compile(r"[a-z]([a-z0-9-]*[a-z0-9])?")

# Members that make a resource public. Granting either one on a private backend defeats the gateway in front of it.
PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})


def require_id(value: str, *, field: str, min_len: int, max_len: int, example: str) -> str:
    """Return value if it is a valid GCP resource id of the given length, else raise ValueError naming the field."""
    if not isinstance(value, str) or not (min_len <= len(value) <= max_len) or not _LABEL.fullmatch(value):
        raise ValueError(
            f"{field} must be {min_len}-{max_len} characters of lower-case letters, digits and hyphens, starting "
            f"with a letter and not ending with a hyphen (for example {example!r}); got {value!r}"
        )
    return value


def require_region(value: str, *, field: str, service: str) -> str:
    """Return value if it names a region, else raise ValueError naming the field and the service it is a region of."""
    if not value:
        raise ValueError(f"{field} must name the {service} region to deploy to, for example 'europe-west1'")
    return value


def require_members(members, *, field: str) -> tuple:
    """Check IAM member strings: at least one, each 'kind:identity', never allUsers/allAuthenticatedUsers."""
    members = tuple(members)
    if not members:
        raise ValueError(f"{field} must name at least one IAM member, for example 'group:web-users@example.com'")
    for member in members:
        if not isinstance(member, str):
            continue  # an Output (e.g. a service account's email) is checked by the policy pack at preview time
        if member in PUBLIC_MEMBERS:
            raise ValueError(
                f"{field} contains {member!r}, which makes the resource public; name the users, groups or "
                "service accounts that need access instead"
            )
        if ":" not in member:
            raise ValueError(
                f"{field} entry {member!r} is not an IAM member; use 'user:a@example.com', 'group:g@example.com', "
                "'serviceAccount:sa@project.iam.gserviceaccount.com' or 'domain:example.com'"
            )
    return members


_DOMAIN = re.compile(r"(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def require_domain(value: str, *, field: str, allow_localhost: bool = False) -> str:
    """Return value if it is a bare lower-case host name (no scheme, port or path), else raise ValueError."""
    if allow_localhost and value == "localhost":
        return value
    if not isinstance(value, str) or not _DOMAIN.fullmatch(value):
        raise ValueError(f"{field} entry {value!r} is not a bare host name such as 'app.example.com' "
                         "(no scheme, port or path)")
    return value
