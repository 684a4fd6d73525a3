"""The NGINX renderer: one API of the policy -> an NGINX configuration (for the `http {}` context) that asks the
forward-auth service about every protected request through `auth_request`.

What it writes, and why:
- `upstream` blocks for the backend and the forward-auth service, and one `server` with a `location` per route path,
  ordered from the most specific path to the least (NGINX takes the first regex location that matches, the route
  table takes the most specific route: the same route wins either way).
- Protected locations: `auth_request` to an internal location that proxies to the forward-auth service with
  `X-Original-Method` / `X-Original-URI` set (the client's values of those, and of the other conventions' headers,
  replaced or cleared, so the service never sees two descriptions); the identity headers of its answer are copied
  with `auth_request_set` and passed to the backend with `proxy_set_header`, which also drops any copy the client
  sent. A 403's challenge (`error="insufficient_scope"`, `scope=`) is added to the answer; NGINX copies a 401's itself.
  A path with a `dpop_nonce: required` route also passes the service's `DPoP-Nonce` header back to the client.
- Public locations: a path whose every route is public is served without `auth_request`, limited to its methods
  (`limit_except`), with the identity headers cleared. A path with both public and protected routes is decided by
  the service, which admits the public ones without a token.
- Everything else: `location /` answers 404 without reaching the backend (a route the table does not know is refused).
- Request facts for bound tokens: the subrequest carries `X-Forwarded-Proto` / `X-Forwarded-Host` ($scheme,
  $http_host: the URL the client called, a DPoP proof's htu) and `X-Client-Cert` ($ssl_client_escaped_cert, empty
  and so not sent without a client certificate), each replacing any copy the client sent, and clears a client's
  `X-Forwarded-Client-Cert`. The service reads them only from its trusted proxies
  (AUTHGATE_FORWARD_AUTH_TRUSTED_PROXIES: NGINX's address).
- TLS: with `tls_certificate`/`tls_key` the server listens with TLS; when the API can receive certificate-bound
  tokens (a `proof: mtls` route, or an issuer with `binding.mtls`) it asks for client certificates
  (`ssl_verify_client optional`, checked against `client_ca` when given, else `optional_no_ca`: RFC 8705 binds the
  token to the certificate's thumbprint, not to a CA). Such an API without TLS here is refused: NGINX sees no client
  certificate when TLS ends in front of it.
The forward-auth service must read the `nginx` convention (AUTHGATE_FORWARD_AUTH_CONVENTION=nginx).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from lambdas.forward_auth.identity_headers import DEFAULT_NAMES
from lambdas.validation.route_table import GREEDY, LITERAL, PathTemplate
from stacks.policy.model import AuthPolicy
from stacks.policy.render.in_cluster import certificate_binding_needs, http_api

AUTH_LOCATION = "/_authgate/auth"
FORWARD_AUTH_PATH = "/nginx-auth-request"
# Headers a client may send that describe "the original request" under some convention; cleared on the subrequest.
FOREIGN_CONVENTION_HEADERS = ("X-Forwarded-Method", "X-Forwarded-Uri")
# What the subrequest tells the service about the client's connection (lambdas/forward_auth/proxy_facts.py).
REQUEST_FACT_HEADERS = (("X-Forwarded-Proto", "$scheme"), ("X-Forwarded-Host", "$http_host"),
                        ("X-Client-Cert", "$ssl_client_escaped_cert"), ("X-Forwarded-Client-Cert", '""'))
# A file path NGINX reads unquoted in a directive.
_FILE_PATH = re.compile(r"/[A-Za-z0-9._/+-]+")
_HOST_PORT = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}")
_NAME = re.compile(r"(?:_|[A-Za-z0-9*](?:[A-Za-z0-9.*-]{0,251}[A-Za-z0-9])?)")
# Path characters NGINX reads as part of an unquoted `location` regex: the route table's literal segment characters
# without ';' (it ends the directive) and "'" (it opens a quoted string). re.escape covers their regex meaning.
_LITERAL_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&()*+,=:@-]+")
INDENT = "    "


@dataclass(frozen=True)
class _PathGroup:
    """The routes of one path template (NGINX locations are per path; the service decides per method)."""

    template: PathTemplate
    routes: tuple[dict, ...]

    @property
    def all_public(self) -> bool:
        return all(route["public"] for route in self.routes)

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(sorted({route["method"] for route in self.routes}))


def _check_host_port(value: str, option: str) -> str:
    if not isinstance(value, str) or not _HOST_PORT.fullmatch(value) or not 0 < int(value.rsplit(":", 1)[1]) < 65536:
        raise ValueError(f"{option} {value!r}: write it as HOST:PORT (a DNS name or IP address and a port 1-65535), "
                         f"e.g. orders.default.svc.cluster.local:8080")
    return value


def _location_regex(template: PathTemplate) -> str:
    """A case-sensitive NGINX regex for the path template, one trailing '/' allowed as the route table allows it."""
    parts = []
    for kind, literal in template.segments:
        if kind == LITERAL:
            if not _LITERAL_SEGMENT.fullmatch(literal):
                raise ValueError(f"path {template.path!r}: segment {literal!r} has characters an NGINX location "
                                 f"cannot hold unquoted (';' ends a directive, \"'\" opens a string); use letters, "
                                 f"digits and -._~!$&()*+,=:@")
            parts.append("/" + re.escape(literal))
        elif kind == GREEDY:
            parts.append("/.+")
        else:
            parts.append("/[^/]+")
    return "^" + "".join(parts) + "/?$"


def _groups(routes: list[dict]) -> list[_PathGroup]:
    by_path: dict[str, list[dict]] = {}
    templates: dict[str, PathTemplate] = {}
    for route in routes:
        if route.get("path") is None:
            raise ValueError(f"route {route['route_key']!r} has no path; NGINX fronts HTTP APIs only")
        by_path.setdefault(route["path"], []).append(route)
        templates.setdefault(route["path"], PathTemplate.parse(route["path"], where=route["route_key"]))
    groups = [_PathGroup(templates[path], tuple(entries)) for path, entries in by_path.items()]
    # Most specific first (literal over {param} over {greedy+}, segment by segment), as the route table selects.
    return sorted(groups, key=lambda g: (g.template.specificity, g.template.path), reverse=True)


def _variable(field: str) -> str:
    return f"$authgate_{field}"


def _describe(route: dict) -> str:
    if route["public"]:
        return f"{route['route_key']}: public"
    needs = [f"issuers {','.join(route['issuers'])}"]
    for name in ("scopes", "scopes_all", "roles", "roles_all", "groups", "groups_all"):
        if route.get(name):
            needs.append(f"{name} {','.join(route[name])}")
    for claim, values in (route.get("claims") or {}).items():
        needs.append(f"claim {claim} in {','.join(str(v) for v in values)}")
    return f"{route['route_key']}: {'; '.join(needs)}"


def _proxy_to_backend(upstream: str, *, identity: bool) -> list[str]:
    lines = []
    for field, header in DEFAULT_NAMES.items():
        lines.append(f"proxy_set_header {header} {_variable(field) if identity else chr(34) * 2};")
    lines += ["proxy_set_header Host $host;", "proxy_set_header X-Forwarded-Proto $scheme;",
              "proxy_http_version 1.1;", 'proxy_set_header Connection "";', f"proxy_pass http://{upstream};"]
    return lines


def _tls_lines(policy: AuthPolicy, api: str, routes: list[dict], tls_certificate: str | None, tls_key: str | None,
               client_ca: str | None) -> list[str]:
    for value, option in ((tls_certificate, "--tls-certificate"), (tls_key, "--tls-key"), (client_ca, "--client-ca")):
        if value is not None and not _FILE_PATH.fullmatch(value):
            raise ValueError(f"{option} {value!r}: an absolute file path of letters, digits and ._/+-")
    if (tls_certificate is None) != (tls_key is None):
        raise ValueError("--tls-certificate and --tls-key go together: the server's certificate and its key")
    needs = certificate_binding_needs(policy, api)
    if tls_certificate is None:
        if needs:
            raise ValueError(f"API {api!r} receives certificate-bound tokens ({'; '.join(needs)}), and NGINX sees "
                             f"the client certificate only when it terminates TLS itself: give --tls-certificate "
                             f"and --tls-key (and --client-ca to check client certificates against a CA)")
        if client_ca is not None:
            raise ValueError("--client-ca needs --tls-certificate and --tls-key: client certificates come with TLS")
        return []
    lines = [f"ssl_certificate {tls_certificate};", f"ssl_certificate_key {tls_key};"]
    if needs:
        # optional: routes that take unbound tokens stay reachable without a certificate.
        lines += ([f"ssl_client_certificate {client_ca};", "ssl_verify_client optional;"] if client_ca
                  else ["ssl_verify_client optional_no_ca;"])
    elif client_ca is not None:
        raise ValueError(f"--client-ca: API {api!r} has no route or issuer that binds tokens to certificates, so "
                         f"NGINX would ask for client certificates no decision reads")
    return lines


def render_nginx(policy: AuthPolicy, api: str, *, backend: str, forward_auth: str, listen: str = "8080",
                 server_name: str = "_", tls_certificate: str | None = None, tls_key: str | None = None,
                 client_ca: str | None = None) -> str:
    """The NGINX configuration for `api`: include it in the `http {}` context (e.g. /etc/nginx/conf.d/).

    backend        HOST:PORT of the service behind NGINX
    forward_auth   HOST:PORT of the forward-auth decision service (`authgate serve forward-auth`, the k8s Service)
    listen         what the server listens on (an NGINX `listen` value: a port, or ADDRESS:PORT)
    tls_certificate, tls_key   PEM files: the server terminates TLS (needed for certificate-bound tokens)
    client_ca      PEM file of the CA(s) client certificates must chain to (default: any, optional_no_ca)
    """
    from stacks.policy.render.route_table import render_route_table

    http_api(policy, api)
    _check_host_port(backend, "--backend")
    _check_host_port(forward_auth, "--forward-auth")
    if not re.fullmatch(r"(?:[0-9]{1,5}|(?:[0-9.]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5})", listen):
        raise ValueError(f"--listen {listen!r}: write a port (8080) or ADDRESS:PORT (127.0.0.1:8080)")
    if not _NAME.fullmatch(server_name):
        raise ValueError(f"--server-name {server_name!r}: a DNS name, a wildcard name or _")
    routes = render_route_table(policy, apis=[api])["apis"][api]["routes"]
    tls = _tls_lines(policy, api, routes, tls_certificate, tls_key, client_ca)
    safe_api = re.sub(r"[^A-Za-z0-9_]", "_", api)
    backend_upstream, auth_upstream = f"authgate_{safe_api}_backend", f"authgate_{safe_api}_forward_auth"
    challenge_var = f"$authgate_{safe_api}_forbidden_challenge"

    out: list[str] = [
        f"# authgate: NGINX in front of API {api!r}, rendered from the policy by `authgate render nginx`. Re-render",
        "# instead of editing. Include it in the http {} context. Protected routes are decided by the forward-auth",
        "# service (auth_request); it must run with AUTHGATE_FORWARD_AUTH_CONVENTION=nginx.",
        f"upstream {backend_upstream} {{", f"{INDENT}server {backend};", f"{INDENT}keepalive 16;", "}",
        f"upstream {auth_upstream} {{", f"{INDENT}server {forward_auth};", f"{INDENT}keepalive 32;", "}",
        "# NGINX copies a 401's WWW-Authenticate from the decision itself; a 403's is added here.",
        f"map $status {challenge_var} {{", f"{INDENT}403 $authgate_challenge;", f'{INDENT}default "";', "}",
        "server {", f"{INDENT}listen {listen}{' ssl' if tls else ''};", f"{INDENT}server_name {server_name};",
        *(f"{INDENT}{line}" for line in tls), "",
        f"{INDENT}location = {AUTH_LOCATION} {{", f"{INDENT * 2}internal;",
        f"{INDENT * 2}proxy_pass http://{auth_upstream}{FORWARD_AUTH_PATH};",
        f"{INDENT * 2}proxy_pass_request_body off;", f'{INDENT * 2}proxy_set_header Content-Length "";',
        f"{INDENT * 2}proxy_set_header X-Original-Method $request_method;",
        f"{INDENT * 2}proxy_set_header X-Original-URI $request_uri;",
        *(f'{INDENT * 2}proxy_set_header {h} "";' for h in FOREIGN_CONVENTION_HEADERS),
        *(f"{INDENT * 2}proxy_set_header {h} {value};" for h, value in REQUEST_FACT_HEADERS),
        f"{INDENT * 2}proxy_http_version 1.1;", f'{INDENT * 2}proxy_set_header Connection "";',
        f"{INDENT * 2}proxy_connect_timeout 2s;", f"{INDENT * 2}proxy_read_timeout 5s;",
        f"{INDENT}}}",
    ]
    for group in _groups(routes):
        out.append("")
        out.extend(f"{INDENT}# {_describe(route)}" for route in group.routes)
        out.append(f"{INDENT}location ~ {_location_regex(group.template)} {{")
        body: list[str] = []
        if group.all_public:
            if "ANY" not in group.methods:
                body.append(f"limit_except {' '.join(group.methods)} {{ deny all; }}")
            body += _proxy_to_backend(backend_upstream, identity=False)
        else:
            body += [f"auth_request {AUTH_LOCATION};",
                     *(f"auth_request_set {_variable(field)} $upstream_http_{header.lower().replace('-', '_')};"
                       for field, header in DEFAULT_NAMES.items()),
                     "auth_request_set $authgate_decision $upstream_http_x_authgate_decision;",
                     "auth_request_set $authgate_challenge $upstream_http_www_authenticate;",
                     f"add_header WWW-Authenticate {challenge_var} always;"]
            if any(route.get("dpop_nonce", "none") != "none" for route in group.routes):
                # RFC 9449 9: the service's use_dpop_nonce 401 carries the nonce to retry with; auth_request passes
                # only WWW-Authenticate on by itself (add_header leaves an empty value out).
                body += ["auth_request_set $authgate_dpop_nonce $upstream_http_dpop_nonce;",
                         "add_header DPoP-Nonce $authgate_dpop_nonce always;"]
            body += _proxy_to_backend(backend_upstream, identity=True)
        out.extend(f"{INDENT * 2}{line}" for line in body)
        out.append(f"{INDENT}}}")
    out += ["", f"{INDENT}# Not a route of API {api!r}: refused here, the backend never sees it.",
            f"{INDENT}location / {{", f"{INDENT * 2}return 404;", f"{INDENT}}}", "}"]
    return "\n".join(out) + "\n"
