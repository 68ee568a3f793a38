"""The FastAPI service: every route calls the stub through httpx and requests."""

from __future__ import annotations

import httpx
import requests
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from tests.apps import genai


def make_app(stub_url: str) -> FastAPI:
    """Routes: /items/{item_id}, /upstream/{code}, /broken (503), /chat (a GenAI span)."""
    app = FastAPI()
    client = httpx.Client()
    session = requests.Session()

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, object]:
        a = client.get(f"{stub_url}/ok").status_code
        b = session.get(f"{stub_url}/ok").status_code
        return {"item": item_id, "upstream": [a, b]}

    @app.get("/upstream/{code}")
    def upstream(code: int) -> dict[str, object]:
        a = client.get(f"{stub_url}/status/{code}").status_code
        b = session.get(f"{stub_url}/status/{code}").status_code
        return {"upstream": [a, b]}

    @app.get("/broken")
    def broken() -> JSONResponse:
        return JSONResponse({"error": "unavailable"}, status_code=503)

    @app.get("/chat")
    def chat() -> dict[str, str]:
        genai.chat("chat gpt-4o", genai.CURRENT_START, genai.CURRENT_END)
        return {"reply": "hi"}

    return app
