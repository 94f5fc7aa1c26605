// The Vercel AI SDK against relaygate's built-in mock: generateObject with a zod schema, and a multi-step
// tool-using agent (generateText and streamText), run by tests/mock_agent/test_vercel.py:
// node mock.mjs <baseURL> <apiKey> <model> <api: chat|responses>. Prints one JSON line.
import { createOpenAI } from "@ai-sdk/openai";
import { generateObject, generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const [baseURL, apiKey, model, api] = process.argv.slice(2);
const paths = [];
const provider = createOpenAI({
  baseURL,
  apiKey,
  fetch: async (url, init) => {
    paths.push(`${init?.method ?? "GET"} ${new URL(url).pathname}`);
    return fetch(url, init);
  },
});
const languageModel = api === "chat" ? provider.chat(model) : provider.responses(model);

const { object, usage: objectUsage } = await generateObject({
  model: languageModel,
  schema: z.object({
    city: z.string(),
    days: z.number().int().min(1).max(14),
    units: z.enum(["celsius", "fahrenheit"]),
    stops: z.array(z.object({ name: z.string(), nights: z.number().int() })),
    note: z.string().nullable(),
  }),
  prompt: "Plan 3 days in Lisbon, in fahrenheit.",
});

const calls = [];
const tools = {
  get_weather: tool({
    description: "The weather in a city",
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      calls.push(`weather:${city}`);
      return `sunny in ${city}`;
    },
  }),
  get_time: tool({
    description: "The local time in a city",
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      calls.push(`time:${city}`);
      return `noon in ${city}`;
    },
  }),
};
const ask = {
  model: languageModel,
  prompt: "What is the weather and the time in Paris?",
  tools,
  stopWhen: stepCountIs(5),
};
const whole = await generateText(ask);
const streamed = streamText(ask);
let streamedText = "";
for await (const part of streamed.textStream) streamedText += part;
const steps = await streamed.steps;

console.log(
  JSON.stringify({
    object,
    objectTokens: objectUsage.totalTokens,
    text: whole.text,
    steps: whole.steps.length,
    toolCalls: whole.steps.flatMap((step) => step.toolCalls.map((call) => call.toolName)),
    executed: calls,
    streamedText,
    streamedSteps: steps.length,
    usage: whole.totalUsage,
    paths: [...new Set(paths)],
  }),
);
