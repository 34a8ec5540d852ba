"""The floor under a Python gateway, by upstream HTTP client: the thinnest FastAPI proxy
(parse the JSON body, POST it upstream, parse the answer, return it), with httpx (what
turnout uses) or aiohttp. Exploratory, for docs/benchmarks-gateway.md; not part of turnout.

Needs a throwaway venv with both clients, not the project's:

    python3 -m venv /tmp/floor && /tmp/floor/bin/pip install 'uvicorn[standard]' fastapi \\
        httpx aiohttp orjson
    .venv/bin/python -m turnout.providers.standin --port 9100 &
    /tmp/floor/bin/python benches/client_floor.py httpx 9101 http://127.0.0.1:9100/v1 &
    wrk -t2 -c50 -d6s -s benches/wrk_post.lua http://127.0.0.1:9101/v1/chat/completions -- BODY

and read the proxy's CPU time from /proc/PID/stat before and after (utime + stime).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
import orjson
import uvicorn
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response


def build(kind: str, upstream: str) -> FastAPI:
    clients: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if kind == "httpx":
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
            clients["c"] = httpx.AsyncClient(base_url=upstream, limits=limits)
        else:
            connector = aiohttp.TCPConnector(limit=200)
            clients["c"] = aiohttp.ClientSession(base_url=upstream + "/", connector=connector)
        yield
        await (clients["c"].aclose() if kind == "httpx" else clients["c"].close())

    app = FastAPI(lifespan=lifespan)
    headers = {"content-type": "application/json"}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        data = orjson.dumps(orjson.loads(await request.body()))
        client = clients["c"]
        if kind == "httpx":
            answer = (await client.post("/chat/completions", content=data, headers=headers)).content
        else:
            async with client.post("chat/completions", data=data, headers=headers) as r:
                answer = await r.read()
        return Response(orjson.dumps(orjson.loads(answer)), media_type="application/json")

    return app


if __name__ == "__main__":
    kind, port, upstream = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if kind not in ("httpx", "aiohttp"):
        sys.exit("usage: client_floor.py {httpx|aiohttp} PORT UPSTREAM_BASE_URL")
    uvicorn.run(
        build(kind, upstream), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
