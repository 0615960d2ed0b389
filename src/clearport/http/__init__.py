"""The HTTP API: FastAPI routers, schemas, authentication, error mapping."""
