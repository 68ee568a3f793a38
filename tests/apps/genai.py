"""GenAI CLIENT spans shaped exactly as the GenAI instrumentations shape them."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import SpanKind

TRACER = "tests.apps.genai"

# The current GenAI semantic conventions (semantic-conventions-genai, model/gen-ai/registry.yaml):
# input_tokens includes cache_read.input_tokens, output_tokens includes reasoning.output_tokens.
CURRENT_START = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "server.address": "api.openai.com",
    "server.port": 443,
}
CURRENT_END = {
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.cache_read.input_tokens": 600,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.reasoning.output_tokens": 200,
}

# The older names, as OpenLLMetry's instrumentations write them (semconv_ai SpanAttributes:
# LLM_USAGE_PROMPT_TOKENS, LLM_USAGE_COMPLETION_TOKENS, LLM_USAGE_CACHE_READ_INPUT_TOKENS,
# LLM_USAGE_REASONING_TOKENS; prompt_tokens includes the cached ones).
OLDER_START = {
    "gen_ai.system": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "llm.request.type": "chat",
}
OLDER_END = {
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.usage.prompt_tokens": 500,
    "gen_ai.usage.completion_tokens": 50,
    "gen_ai.usage.cache_read_input_tokens": 100,
    "gen_ai.usage.reasoning_tokens": 20,
    "llm.usage.total_tokens": 550,
}


def chat(name: str, start: dict[str, object], end: dict[str, object]) -> None:
    """One GenAI CLIENT span under the current span: start attributes, then usage at the end."""
    tracer = trace.get_tracer(TRACER)
    with tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=start) as span:  # type: ignore[arg-type]
        span.set_attributes(end)  # type: ignore[arg-type]
