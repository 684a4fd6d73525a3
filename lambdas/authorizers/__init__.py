"""API Gateway Lambda authorizers (REST, HTTP API, WebSocket) over the shared validation module and route table."""
