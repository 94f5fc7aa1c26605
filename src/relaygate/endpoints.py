"""The routes :class:`~relaygate.proxy.ProxyApp` serves: the OpenAI endpoints, the model list and health.

Each is declared once here, with its documentation; the proxy dispatches on them and the OpenAPI
document is built from them (see :mod:`relaygate.routes`).
"""

from __future__ import annotations

from relaygate.requests import ChatCompletionRequest, EmbeddingRequest, ImageGenerationRequest
from relaygate.responses import (
    ChatCompletion,
    ChatCompletionChunk,
    EmbeddingList,
    Health,
    ImagesResponse,
    ModelInfo,
    ModelList,
)
from relaygate.routes import Route

__all__ = ["CHAT", "EMBEDDINGS", "HEALTH", "IMAGES", "MODEL", "MODELS", "PROXY_ROUTES", "ROOT_MODELS"]

CHAT = Route(
    "POST",
    "/v1/chat/completions",
    "createChatCompletion",
    "Create a chat completion",
    "Model calls",
    description=(
        "OpenAI Chat Completions in front of every provider: name the model as `provider/model` "
        "(`mock/echo`, `openai/gpt-4o-mini`, `anthropic/claude-sonnet-4`) or as a virtual model of the config. "
        "Every OpenAI parameter the gateway does not read is passed to the provider as it came. With "
        '`"stream": true` the answer is a `text/event-stream` of `chat.completion.chunk` events ending with '
        '`data: [DONE]`; an error once the stream has started is its last event, `data: {"error": {...}}`. '
        "`extra.guards` names guards to run, `extra.user` the end user the call is for."
    ),
    body=ChatCompletionRequest,
    answer=ChatCompletion,
    streams=ChatCompletionChunk,
    model_call=True,
    examples={
        "whole": {"model": "mock/echo", "messages": [{"role": "user", "content": "Hello"}]},
        "stream": {
            "model": "mock/echo",
            "messages": [{"role": "user", "content": "Hello"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        "tool": {
            "model": "mock/echo",
            "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                    },
                }
            ],
            "tool_choice": "required",
        },
    },
)
EMBEDDINGS = Route(
    "POST",
    "/v1/embeddings",
    "createEmbedding",
    "Create embeddings",
    "Model calls",
    description="OpenAI Embeddings: one vector per input, from any provider's embedding model.",
    body=EmbeddingRequest,
    answer=EmbeddingList,
    model_call=True,
    examples={"texts": {"model": "mock/text-embedding", "input": ["Hello", "world"]}},
)
IMAGES = Route(
    "POST",
    "/v1/images/generations",
    "createImage",
    "Generate images",
    "Model calls",
    description="OpenAI image generation: images from a text prompt, as URLs or base64.",
    body=ImageGenerationRequest,
    answer=ImagesResponse,
    model_call=True,
    examples={"png": {"model": "mock/image", "prompt": "A red square", "response_format": "b64_json"}},
)
MODELS = Route(
    "GET",
    "/v1/models",
    "listModels",
    "List models",
    "Models",
    description=(
        "The models the gateway can call: each provider's (`provider/model`), the config's virtual models, "
        "its `model_aliases` and those an admin registered, with their prices where the gateway knows them. Asked "
        "with an `anthropic-version` header (the anthropic SDKs send one), the same models in Anthropic's list "
        "shape (`data` of `{type: model, id, display_name, created_at}`, `first_id`, `last_id`, `has_more`; "
        "`limit`, `after_id`, `before_id`)."
    ),
    answer=ModelList,
)
# LangDB's API reference lists the models at the root base URL too (seed 002: GET /models).
ROOT_MODELS = Route(
    "GET",
    "/models",
    "listModelsAtRoot",
    "List models (root)",
    "Models",
    description=(
        "`GET /v1/models` at the root base URL, as LangDB's API reference has it. With `public_catalogue: true` "
        "both answer without a key: the gateway's models and prices, without any project's registered models."
    ),
    answer=ModelList,
    scoped=False,
)
MODEL = Route(
    "GET",
    "/v1/models/{model}",
    "retrieveModel",
    "Retrieve a model",
    "Models",
    description="One entry of the model list; the id holds a `/` (`mock/echo`), which may be sent as is.",
    answer=ModelInfo,
    errors=(404,),
    # Model ids are provider/model: the rest of the path, less a trailing slash.
    patterns={"model": r".+?"},
)
HEALTH = Route(
    "GET",
    "/health",
    "health",
    "Health check",
    "Service",
    description="Answers 200 while the process serves; it needs no key and checks no provider.",
    access="public",
    answer=Health,
)

PROXY_ROUTES = (CHAT, EMBEDDINGS, IMAGES, MODELS, ROOT_MODELS, MODEL, HEALTH)
