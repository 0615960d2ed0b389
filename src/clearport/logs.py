"""JSON logs through structlog, with redaction as the very last step.

Every record, from our code or a library's (uvicorn, asyncpg) through the standard `logging`
module, is rendered to a string and then passed through `redact`, which masks Luhn-valid card
numbers and anything carrying a secret-key prefix. Masking the final text, rather than chosen
fields, is what makes it hold for exception tracebacks and for code paths nobody thought of.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from clearport.core.redaction import redact


def _redacting(renderer: Any) -> Any:
    def render(logger: Any, method_name: str, event_dict: Any) -> str:
        return redact(str(renderer(logger, method_name, event_dict)))

    return render


def configure_logging(level: str = "INFO", fmt: str = "json", stream: Any = None) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redacting(renderer),
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's own handlers would bypass redaction: route its loggers to the root handler.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "fastapi"):
        lib_logger = logging.getLogger(name)
        lib_logger.handlers.clear()
        lib_logger.propagate = True
    # Libraries that narrate routine work at INFO: one line per pg_ctl call, per migration
    # step. Their warnings still show.
    for name in ("pgserver", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").disabled = True  # we log one line per request ourselves
