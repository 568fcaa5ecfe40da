"""Real model API clients against mcp-coherence's fake model endpoint.

Usage: python3 clients.py BASE_URL

Sends, with the official `anthropic` and `openai` Python SDKs, the same conversation whole and
streamed through each API, offering two tools, and prints one JSON line per request with what the
SDK made of the answer. The Rust test that runs this checks both what the endpoint logged and what
the SDKs parsed.
"""

import json
import sys

import anthropic
import openai

BASE = sys.argv[1]
TOOLS = [
    ("gmail__create_draft", "Create a draft in Gmail."),
    ("calendar__authenticate", "Authenticate the calendar connector."),
]
SYSTEM = "You are a coding assistant."
ASK = "Draft an email to Ada."


def say(api, stream, **seen):
    print(json.dumps({"api": api, "stream": stream, **seen}, sort_keys=True), flush=True)


def anthropic_blocks(message):
    calls = [{"name": b.name, "input": b.input} for b in message.content if b.type == "tool_use"]
    text = "".join(b.text for b in message.content if b.type == "text")
    return {"calls": calls, "text": text, "stop": message.stop_reason}


a = anthropic.Anthropic(base_url=BASE, api_key="coherence", max_retries=0)
tools = [{"name": n, "description": d, "input_schema": {"type": "object"}} for n, d in TOOLS]
messages = [{"role": "user", "content": ASK}]
whole = a.messages.create(model="m", max_tokens=64, system=SYSTEM, tools=tools, messages=messages)
say("anthropic", False, **anthropic_blocks(whole))
with a.messages.stream(model="m", max_tokens=64, system=SYSTEM, tools=tools, messages=messages) as s:
    streamed = s.get_final_message()
say("anthropic", True, **anthropic_blocks(streamed))

o = openai.OpenAI(base_url=BASE + "/v1", api_key="coherence", max_retries=0)
tools = [{"type": "function", "function": {"name": n, "description": d, "parameters": {"type": "object"}}} for n, d in TOOLS]
messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": ASK}]
whole = o.chat.completions.create(model="m", tools=tools, messages=messages)
choice = whole.choices[0]
calls = [{"name": c.function.name, "input": json.loads(c.function.arguments)} for c in choice.message.tool_calls or []]
say("openai", False, calls=calls, text=choice.message.content or "", stop=choice.finish_reason)
chunks = o.chat.completions.create(
    model="m", tools=tools, messages=messages, stream=True, stream_options={"include_usage": True}
)
text, names, arguments, stop, usage = "", {}, {}, None, None
for chunk in chunks:
    if chunk.usage is not None:
        usage = chunk.usage.total_tokens
    for c in chunk.choices:
        text += c.delta.content or ""
        for call in c.delta.tool_calls or []:
            if call.function.name:
                names[call.index] = call.function.name
            arguments[call.index] = arguments.get(call.index, "") + (call.function.arguments or "")
        stop = c.finish_reason or stop
calls = [{"name": names[i], "input": json.loads(arguments[i])} for i in sorted(names)]
say("openai", True, calls=calls, text=text, stop=stop, usage=usage is not None)
