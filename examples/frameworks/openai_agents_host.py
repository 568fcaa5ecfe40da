#!/usr/bin/env python3
"""The OpenAI Agents SDK as an MCP host, driven by `coherence conform --host` (SPEC.md §11.5).

The driver adds no logic of its own: the agent is the SDK's `Agent`, with one `MCPServerStdio` or
`MCPServerStreamableHttp` per entry of the `mcpServers` file in `MCP_CONFIG` (the SDK reads no such
file itself; each is connected at start), and its model is the Chat Completions API at
`OPENAI_BASE_URL`. The SDK's default lists every server's tools at each model step; with
`--cache-tools-list` it caches them (`cache_tools_list=True`: fetched once, kept until the
application calls `invalidate_tools_cache()`, which no user line can make it do). Each user line is
one `Runner.run` over the conversation so far; the turn's final text (or the error that ended the
run, as the SDK raised it) is printed as `turn_end`.

    coherence conform --host 'target/frameworks/bin/python examples/frameworks/openai_agents_host.py'
"""
import argparse
import asyncio
import json
import os
from contextlib import AsyncExitStack

from agents import Agent, OpenAIChatCompletionsModel, Runner, set_tracing_disabled
from agents.mcp import MCPServerStdio, MCPServerStreamableHttp
from driver import serve
from openai import AsyncOpenAI


def servers(path, cache):
    with open(path) as file:
        config = json.load(file)["mcpServers"]
    for name, entry in config.items():
        if "command" in entry:
            params = {"command": entry["command"], "args": entry.get("args", []), "env": entry.get("env")}
            yield MCPServerStdio(params, name=name, cache_tools_list=cache)
        else:
            yield MCPServerStreamableHttp({"url": entry["url"]}, name=name, cache_tools_list=cache)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-tools-list", action="store_true", help="cache each server's tools list")
    args = parser.parse_args()
    set_tracing_disabled(True)  # no trace export: the only network is the stage's
    client = AsyncOpenAI(base_url=os.environ["OPENAI_BASE_URL"], api_key=os.environ["OPENAI_API_KEY"])
    model = OpenAIChatCompletionsModel(model="gpt-4.1", openai_client=client)
    async with AsyncExitStack() as stack:
        mcp = [await stack.enter_async_context(s) for s in servers(os.environ["MCP_CONFIG"], args.cache_tools_list)]
        agent = Agent(name="host", instructions="You are a helpful assistant.", mcp_servers=mcp, model=model)
        history = []

        async def turn(text):
            nonlocal history
            result = await Runner.run(agent, history + [{"role": "user", "content": text}])
            history = result.to_input_list()
            return str(result.final_output)

        await serve(turn)


if __name__ == "__main__":
    asyncio.run(main())
