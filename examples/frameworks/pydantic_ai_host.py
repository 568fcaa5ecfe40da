#!/usr/bin/env python3
"""Pydantic AI as an MCP host, driven by `coherence conform --host` (SPEC.md §11.5).

The driver adds no logic of its own: the agent is Pydantic AI's `Agent`, its tools are the
`MCPToolset`s `load_mcp_toolsets` builds from the `mcpServers` file in `MCP_CONFIG` (every server
entered at start, tools listed on first use and cached until a `list_changed`, the framework's
defaults), and its model is Anthropic's Messages API at `ANTHROPIC_BASE_URL`. Each user line is one
`agent.run` over the conversation so far; the turn's final text (or the error that ended the run,
as the framework raised it) is printed as `turn_end`.

    coherence conform --host 'target/frameworks/bin/python examples/frameworks/pydantic_ai_host.py'
"""
import asyncio
import json
import os
import sys

from pydantic_ai import Agent
from pydantic_ai.mcp import load_mcp_toolsets
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.providers.anthropic import AnthropicProvider


def say(message):
    print(json.dumps(message), flush=True)


async def lines():
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        yield json.loads(line)


async def main():
    provider = AnthropicProvider(base_url=os.environ["ANTHROPIC_BASE_URL"], api_key=os.environ["ANTHROPIC_API_KEY"])
    agent = Agent(AnthropicModel("claude-sonnet-4-5", provider=provider), toolsets=load_mcp_toolsets(os.environ["MCP_CONFIG"]))
    history = []
    async with agent:
        async for line in lines():
            if line.get("type") != "user":
                continue
            try:
                result = await agent.run(line["text"], message_history=history)
                history = result.all_messages()
                text = result.output
            except Exception as error:  # the framework's own message, as a user would see it
                text = f"Error: {type(error).__name__}: {error}"
            say({"type": "turn_end", "text": text})


if __name__ == "__main__":
    asyncio.run(main())
