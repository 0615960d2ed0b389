"""Response models: the JSON of every object and list the API returns, for the OpenAPI document.

The bodies themselves are built by the `*_json` functions (`http/representation.py`,
`http/schemas*.py`, the routers); these models describe them exactly (no field left out, none
extra, `tests/integration/test_openapi_responses.py` checks real answers against them). Endpoints
return their JSON directly, so a model never reshapes, reorders or drops what is sent.
"""
