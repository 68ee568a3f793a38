"""Real instrumented services for the integration tests: a FastAPI app and a Flask app, each
calling a stub HTTP server through httpx and requests, served together by ``serve.py`` in a
subprocess (the HTTP instrumentations read OTEL_SEMCONV_STABILITY_OPT_IN once per process)."""
