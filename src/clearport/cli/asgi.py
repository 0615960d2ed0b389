"""The ASGI entry point uvicorn imports in each API process: the API and, under `/console`,
the operator console, over one container."""

from __future__ import annotations

import os

from fastapi import FastAPI

from clearport.config import load_settings
from clearport.console.app import mount_console
from clearport.http.app import create_app
from clearport.logs import configure_logging
from clearport.wiring import Container, build_container


def create() -> FastAPI:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    url = settings.database_url or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("DATABASE_URL is not set; start through `clearport serve`")
    return build_app(build_container(settings, url))


def build_app(container: Container) -> FastAPI:
    """The API with the console mounted (tests build it over a container of their own)."""
    app = create_app(container)
    mount_console(app, container)
    return app
