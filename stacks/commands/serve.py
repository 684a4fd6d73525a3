"""`authgate serve {forward-auth,token-handler}`: run a runtime service under uvicorn.

    authgate serve forward-auth --policy policies/example.yaml --api orders --listen 127.0.0.1:9100
    authgate serve forward-auth --routes routes.json --api orders          # a table from `authgate render routes`
    authgate serve token-handler --policy FILE --client shop-web           # browser sign-in (lambdas/token_handler)
    authgate serve token-handler                                           # config from AUTHGATE_TOKEN_HANDLER_CONFIG

The token handler's secrets come from the environment (AUTHGATE_CLIENT_SECRET, AUTHGATE_COOKIE_KEYS), as in a
container whose platform injects them.

uvicorn comes from the `serve` extra (`pip install 'authgate[serve]'`). SIGTERM and Ctrl-C stop it gracefully: the
listening socket closes, readiness turns 503, requests in flight finish (within --graceful-seconds), exit 0.
The line `authgate forward-auth listening on http://HOST:PORT` goes to stderr once the socket is bound (with port 0,
the port the system chose).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import sys

from stacks.commands.policy_file import EXIT_USAGE, UsageError, load_policy_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    kinds = parser.add_subparsers(dest="service", metavar="SERVICE", required=True)
    forward = kinds.add_parser("forward-auth", help="the decision service for NGINX auth_request, Traefik "
                               "ForwardAuth and Envoy / Istio ext_authz", description=__doc__.splitlines()[0])
    source = forward.add_mutually_exclusive_group(required=True)
    source.add_argument("--policy", metavar="FILE", help="the auth policy YAML file")
    source.add_argument("--routes", metavar="FILE", help="a route table JSON written by `authgate render routes`")
    forward.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                         help="fill a ${NAME} placeholder in the policy")
    forward.add_argument("--api", required=True, metavar="NAME", help="the API of the policy to decide for")
    forward.add_argument("--listen", default="127.0.0.1:9100", metavar="HOST:PORT",
                         help="address to listen on (default 127.0.0.1:9100; port 0 picks a free port)")
    forward.add_argument("--convention", choices=("auto", "nginx", "traefik", "envoy"),
                         help="which proxy convention to read (default: AUTHGATE_FORWARD_AUTH_CONVENTION or auto)")
    forward.add_argument("--path-prefix", metavar="PATH",
                         help="ext_authz path prefix (default: AUTHGATE_FORWARD_AUTH_PATH_PREFIX or /ext-authz)")
    forward.add_argument("--trusted-proxies", metavar="CIDRS",
                         help="addresses or CIDR ranges of the proxies whose forwarded URL and client certificate "
                              "headers are read, e.g. 127.0.0.1,10.0.0.0/8 (default: "
                              "AUTHGATE_FORWARD_AUTH_TRUSTED_PROXIES, else none)")
    forward.add_argument("--public-origin", metavar="URL",
                         help="the origin clients call, e.g. https://api.example.com, for DPoP proofs' htu "
                              "(default: AUTHGATE_FORWARD_AUTH_PUBLIC_ORIGIN, else from the trusted proxy)")
    forward.add_argument("--graceful-seconds", type=float, default=10.0, metavar="S",
                         help="how long requests in flight may finish after SIGTERM (default 10)")
    handler = kinds.add_parser("token-handler", help="the browser sign-in backend-for-frontend (tokens in HttpOnly "
                               "cookies)")
    handler.add_argument("--policy", metavar="FILE", help="the auth policy YAML file (default: the configuration in "
                         "AUTHGATE_TOKEN_HANDLER_CONFIG)")
    handler.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                         help="fill a ${NAME} placeholder in the policy")
    handler.add_argument("--client", metavar="NAME", help="the policy's kind: web client (with --policy)")
    handler.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT",
                         help="address to listen on (default 127.0.0.1:8080; port 0 picks a free port)")
    handler.add_argument("--graceful-seconds", type=float, default=10.0, metavar="S",
                         help="how long requests in flight may finish after SIGTERM (default 10)")


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--listen {value!r}: write it as HOST:PORT, e.g. 127.0.0.1:9100")
    return host.strip("[]"), int(port)


def _route_table(args: argparse.Namespace):
    from lambdas.validation.route_table import RouteTable
    if args.routes:
        return RouteTable.load(args.routes)
    from stacks.policy.render import render_route_table
    policy = load_policy_file(args.policy, args.var, command="authgate serve")
    if args.api not in policy.apis:
        raise UsageError(f"--api {args.api!r}: the policy has no such API (it has: {', '.join(policy.apis)})")
    return RouteTable.load(render_route_table(policy, apis=[args.api]))


def _token_handler_app(args: argparse.Namespace):
    from lambdas.token_handler.asgi import TokenHandlerApp
    from lambdas.token_handler.config import TokenHandlerConfig
    from lambdas.token_handler.core import TokenHandler

    environ = dict(os.environ)
    if args.policy:
        if not args.client:
            raise UsageError("--policy needs --client: the policy's kind: web client to serve")
        from stacks.policy.render.token_handler import token_handler_json
        policy = load_policy_file(args.policy, args.var, command="authgate serve")
        try:
            environ["AUTHGATE_TOKEN_HANDLER_CONFIG"] = token_handler_json(policy, args.client)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
    return TokenHandlerApp(TokenHandler(TokenHandlerConfig.from_environment(environ)))


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401 - present or not decides what to say
    except ImportError:
        print("authgate serve: uvicorn is not installed; install the serve extra: pip install 'authgate[serve]'",
              file=sys.stderr)
        return EXIT_USAGE
    if args.service == "token-handler":
        try:
            app = _token_handler_app(args)
        except (UsageError, ValueError) as exc:
            print(f"authgate serve: {exc}", file=sys.stderr)
            return EXIT_USAGE
        return _run_under_uvicorn(app, args, "token-handler", "")
    from lambdas.authorizers.runtime import AuthorizerMisconfigured, AuthorizerRuntime
    from lambdas.forward_auth.app import ForwardAuthApp
    from lambdas.forward_auth.proxy_facts import ENV_PUBLIC_ORIGIN, ENV_TRUSTED_PROXIES
    from lambdas.forward_auth.service import (ENV_CONVENTION, ENV_PATH_PREFIX, ForwardAuthService,
                                              ForwardAuthSettings)
    from lambdas.validation.route_table import RouteTableError

    try:
        parse_listen(args.listen)   # a bad --listen is a usage error before anything is built
        environ = dict(os.environ)
        if args.convention:
            environ[ENV_CONVENTION] = args.convention
        if args.path_prefix:
            environ[ENV_PATH_PREFIX] = args.path_prefix
        if args.trusted_proxies is not None:
            environ[ENV_TRUSTED_PROXIES] = args.trusted_proxies
        if args.public_origin is not None:
            environ[ENV_PUBLIC_ORIGIN] = args.public_origin
        service = ForwardAuthService(AuthorizerRuntime(_route_table(args), args.api),
                                     ForwardAuthSettings.from_env(environ))
    except (UsageError, ValueError, RouteTableError, AuthorizerMisconfigured) as exc:
        print(f"authgate serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return _run_under_uvicorn(ForwardAuthApp(service), args, "forward-auth", f" (API {args.api})")


def _run_under_uvicorn(app, args: argparse.Namespace, label: str, detail: str) -> int:
    import uvicorn

    try:
        host, port = parse_listen(args.listen)
    except ValueError as exc:
        print(f"authgate serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
        listener.listen(2048)   # connections queue from now on, so the "listening" line below is true when printed
    except OSError as exc:
        print(f"authgate serve: cannot listen on {args.listen}: {exc.strerror}", file=sys.stderr)
        return 1
    bound_host, bound_port = listener.getsockname()[:2]
    # proxy_headers off: uvicorn would otherwise take the peer address from a client's X-Forwarded-For (a proxy
    # passes it on), and the forward-auth service trusts forwarded URL and certificate headers by that address.
    config = uvicorn.Config(app, lifespan="on", access_log=False, log_level="warning", proxy_headers=False,
                            timeout_graceful_shutdown=args.graceful_seconds, server_header=False)
    server = uvicorn.Server(config)
    print(f"authgate {label} listening on http://{bound_host}:{bound_port}{detail}", file=sys.stderr, flush=True)
    # uvicorn re-raises the signal it caught once its graceful shutdown is done, so that the previous handler
    # decides the exit. The shutdown is complete by then: a stop on SIGTERM or Ctrl-C is a clean exit (0).
    stops: list[int] = []
    previous = {sig: signal.signal(sig, lambda number, _frame: stops.append(number))
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[listener])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        return 1
    if stops:
        print(f"authgate {label} stopped ({signal.Signals(stops[0]).name}); requests in flight were answered",
              file=sys.stderr)
    return 0
