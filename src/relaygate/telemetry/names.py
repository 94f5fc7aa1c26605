"""Attribute and metric names: the GenAI semantic conventions (v1.41) and relaygate's own namespace.

The GenAI names are written out rather than imported from ``opentelemetry.semconv._incubating``: that
module is private and its names move between releases, while these are what backends search on.
"""

from __future__ import annotations

# The instrumentation scope of relaygate's tracer and meter (the recorder's meter takes it too).
INSTRUMENTATION = "relaygate"

# GenAI semantic conventions v1.41.0 (docs/gen-ai/gen-ai-spans.md, gen-ai-metrics.md)
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
CONVERSATION_ID = "gen_ai.conversation.id"
OUTPUT_TYPE = "gen_ai.output.type"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_STREAM = "gen_ai.request.stream"
REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"
REQUEST_SEED = "gen_ai.request.seed"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
REQUEST_TOP_P = "gen_ai.request.top_p"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_FREQUENCY_PENALTY = "gen_ai.request.frequency_penalty"
REQUEST_PRESENCE_PENALTY = "gen_ai.request.presence_penalty"
REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
REQUEST_ENCODING_FORMATS = "gen_ai.request.encoding_formats"
RESPONSE_ID = "gen_ai.response.id"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_CREATION = "gen_ai.usage.cache_creation.input_tokens"
USAGE_REASONING = "gen_ai.usage.reasoning.output_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
CONTENT_TRUNCATED = "relaygate.content.truncated"
TOKEN_TYPE = "gen_ai.token.type"
# execute_tool spans (gen-ai-spans.md, "Execute tool span"); the MCP conventions (mcp.md) name the method.
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
MCP_METHOD = "mcp.method.name"
EXECUTE_TOOL = "execute_tool"
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
HTTP_METHOD = "http.request.method"
HTTP_ROUTE = "http.route"
HTTP_STATUS = "http.response.status_code"
URL_PATH = "url.path"

METRIC_TOKEN_USAGE = "gen_ai.client.token.usage"
METRIC_DURATION = "gen_ai.client.operation.duration"
METRIC_TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
# Bucket boundaries the conventions advise.
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]

# relaygate's own; the conventions have no run id, so it lives here rather than under gen_ai.*. The
# thread is gen_ai.conversation.id and the routed model gen_ai.request.model: not repeated here.
PROJECT_ID = "relaygate.project.id"
KEY_ID = "relaygate.key.id"
RUN_ID = "relaygate.run.id"
LABEL = "relaygate.label"
TAGS_PREFIX = "relaygate.tags."
USER_ID = "relaygate.user.id"
USER_NAME = "relaygate.user.name"
USER_TAGS = "relaygate.user.tags"
REQUESTED_MODEL = "relaygate.request.model"
ROUTE_PROVIDER = "relaygate.route.provider"
# The attempt's number among the request's calls to providers (set from the second one on).
ATTEMPT = "relaygate.attempt"
COST_USD = "relaygate.cost.usd"
ERROR_CODE = "relaygate.error"
# Calls a provider billed beyond what the limits reserved for them (usage above max_tokens).
METRIC_OVERBILLED = "relaygate.limits.overbilled"

# Guards: on the request's span, the ids that ran, failed (a violation or a redaction) and errored, and
# one event per guard run with the rest. Reasons never quote what was found.
GUARD_IDS = "relaygate.guard.ids"
GUARD_FAILED_IDS = "relaygate.guard.failed_ids"
GUARD_ERROR_IDS = "relaygate.guard.error_ids"
GUARD_EVENT = "relaygate.guard"
GUARD_ID = "relaygate.guard.id"
GUARD_TYPE = "relaygate.guard.type"
GUARD_STAGE = "relaygate.guard.stage"
GUARD_ACTION = "relaygate.guard.action"
GUARD_PASSED = "relaygate.guard.passed"
GUARD_REASON = "relaygate.guard.reason"
GUARD_ERROR = "relaygate.guard.error"
GUARD_REDACTIONS = "relaygate.guard.redactions"
GUARD_DURATION = "relaygate.guard.duration"
GUARD_PROVIDER = "relaygate.guard.provider"
GUARD_MODEL = "relaygate.guard.model"

# LangDB's names, emitted too when telemetry.langdb_attributes is on.
LANGDB = {CONVERSATION_ID: "langdb.thread_id", RUN_ID: "langdb.run_id", LABEL: "langdb.label"}

# What relaygate calls a provider kind, as gen_ai.provider.name spells it.
PROVIDER_NAMES = {"openai": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini", "mock": "relaygate.mock"}
# Hosts of OpenAI-compatible APIs whose provider the conventions name (host, or the host's domain).
OPENAI_COMPATIBLE_HOSTS = (
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
    ("openai.azure.com", "azure.ai.openai"),
    ("services.ai.azure.com", "azure.ai.inference"),
    ("api.groq.com", "groq"),
    ("api.mistral.ai", "mistral_ai"),
    ("api.deepseek.com", "deepseek"),
    ("api.x.ai", "x_ai"),
    ("api.perplexity.ai", "perplexity"),
    ("api.cohere.ai", "cohere"),
)
OPERATIONS = {"chat": "chat", "embeddings": "embeddings", "images": "generate_content"}

# The MCP server an execute_tool span's tool belongs to.
MCP_SERVER = "relaygate.mcp.server"
