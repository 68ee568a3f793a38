"""The Flask service: the same routes as the FastAPI one, in Flask's route syntax."""

from __future__ import annotations

import httpx
import requests
from flask import Flask, jsonify
from flask.typing import ResponseReturnValue

from tests.apps import genai


def make_app(stub_url: str) -> Flask:
    """Routes: /items/<item_id>, /upstream/<int:code>, /broken (503), /chat (a GenAI span)."""
    app = Flask("flask_app")
    client = httpx.Client()
    session = requests.Session()

    @app.get("/items/<item_id>")
    def item(item_id: str) -> ResponseReturnValue:
        a = client.get(f"{stub_url}/ok").status_code
        b = session.get(f"{stub_url}/ok").status_code
        return jsonify(item=item_id, upstream=[a, b])

    @app.get("/upstream/<int:code>")
    def upstream(code: int) -> ResponseReturnValue:
        a = client.get(f"{stub_url}/status/{code}").status_code
        b = session.get(f"{stub_url}/status/{code}").status_code
        return jsonify(upstream=[a, b])

    @app.get("/broken")
    def broken() -> ResponseReturnValue:
        return jsonify(error="unavailable"), 503

    @app.get("/chat")
    def chat() -> ResponseReturnValue:
        genai.chat("openai.chat", genai.OLDER_START, genai.OLDER_END)
        return jsonify(reply="hi")

    return app
