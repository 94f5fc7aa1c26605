// A tool-using agent on the Vercel AI SDK's default OpenAI provider (the Responses API), run by the tests
// against `relaygate serve`: node agent.mjs <baseURL> <apiKey> <model>. Prints one JSON line.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const [baseURL, apiKey, model] = process.argv.slice(2);
const paths = [];
const openai = createOpenAI({
  baseURL,
  apiKey,
  fetch: async (url, init) => {
    paths.push(`${init?.method ?? "GET"} ${new URL(url).pathname}`);
    return fetch(url, init);
  },
});
const calls = [];
const tools = {
  get_weather: tool({
    description: "The weather in a city",
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      calls.push(city);
      return `sunny in ${city}`;
    },
  }),
};
const ask = { model: openai(model), prompt: "What is the weather in Paris?", tools, stopWhen: stepCountIs(5) };

const whole = await generateText(ask);
const streamed = streamText(ask);
let streamedText = "";
for await (const part of streamed.textStream) streamedText += part;
const steps = await streamed.steps;

console.log(
  JSON.stringify({
    text: whole.text,
    steps: whole.steps.length,
    toolCalls: whole.steps.flatMap((step) => step.toolCalls.map((call) => call.toolName)),
    executed: calls,
    streamedText,
    streamedSteps: steps.length,
    finishReason: whole.finishReason,
    usage: whole.totalUsage,
    paths: [...new Set(paths)],
  }),
);
