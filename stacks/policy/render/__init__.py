"""Renderers: pure functions from a validated policy to gateway artefacts (route table, OpenAPI 2.0, APIM XML)."""
from stacks.policy.render.apim import render_apim, render_apim_operations
from stacks.policy.render.openapi import render_openapi
from stacks.policy.render.route_table import render_route_table, route_table_json

__all__ = ["render_apim", "render_apim_operations", "render_openapi", "render_route_table",
           "route_table_json"]
