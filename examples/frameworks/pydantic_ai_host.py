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
import os

from driver import serve
from pydantic_ai import Agent
from pydantic_ai.mcp import load_mcp_toolsets
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.providers.anthropic import AnthropicProvider


async def main():
    provider = AnthropicProvider(base_url=os.environ["ANTHROPIC_BASE_URL"], api_key=os.environ["ANTHROPIC_API_KEY"])
    agent = Agent(AnthropicModel("claude-sonnet-4-5", provider=provider), toolsets=load_mcp_toolsets(os.environ["MCP_CONFIG"]))
    history = []

    async def turn(text):
        nonlocal history
        result = await agent.run(text, message_history=history)
        history = result.all_messages()
        return result.output

    async with agent:
        await serve(turn)


if __name__ == "__main__":
    asyncio.run(main())
