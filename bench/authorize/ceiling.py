"""The stack's ceiling: a minimal endpoint in the same FastAPI + uvicorn (uvloop, httptools,
2 workers) + asyncpg pool setup as `clearport serve`, doing one durable INSERT per request
(autocommit, fsync and synchronous_commit on). bench/authorize serves it and loads it with wrk
beside the real endpoints, so their ratio to it says what the platform's own work costs.

    DATABASE_URL=... uvicorn bench.authorize.ceiling:app --workers 2 --loop uvloop --http httptools
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from clearport.db.database import Database

_db = Database(os.environ["DATABASE_URL"], min_size=2, max_size=20)


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    await _db.open()
    yield
    await _db.close()


app = FastAPI(lifespan=_lifespan)


@app.post("/ceiling", status_code=201)
async def ceiling(request: Request) -> JSONResponse:
    body = await request.body()
    async with _db.autocommit() as tx:
        from clearport.db.database import conn_of

        row_id = await conn_of(tx).fetchval(
            "INSERT INTO bench_ceiling (body) VALUES ($1) RETURNING id", body
        )
    return JSONResponse({"id": row_id}, status_code=201)
