"""The official Python MCP SDK's client (`mcp`, 2.x) against a connector server of this kit, in
the era it negotiates: run by `real_mcp_client_speaks_both_eras` (wire/tests/mcp.rs), which plays
the server's side and reads what this prints, a JSON object a line.

    client_2026.py URL|stdio:COMMAND... MODE

MODE is `auto` (probe `server/discover`, fall back to `initialize`) or `legacy`. The script lists
the tools; in the stateless era it then opens a `subscriptions/listen` stream for tool list
changes, prints `listening`, and waits for the test's line on stdin (`changed`: the server changed
its list and notified; `end`: the server ended the stream), and prints what it heard.
"""

import json
import shlex
import sys

import anyio
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters


def say(**what):
    print(json.dumps(what), flush=True)


async def told():
    return (await anyio.to_thread.run_sync(sys.stdin.readline)).strip()


async def main(server, mode):
    if server.startswith("stdio:"):
        command = shlex.split(server[len("stdio:"):])
        server = StdioServerParameters(command=command[0], args=command[1:])
    async with Client(server, mode=mode) as client:
        listed = await client.list_tools()
        say(
            step="listed",
            protocol=client.protocol_version,
            tools=[t.name for t in listed.tools],
            ttl_ms=getattr(listed, "ttl_ms", None),
            cache_scope=getattr(listed, "cache_scope", None),
        )
        if mode == "legacy":
            return
        async with client.listen(tools_list_changed=True) as subscription:
            say(step="listening", honored=bool(subscription.honored.tools_list_changed))
            assert await told() == "changed"
            with anyio.fail_after(10):
                async for event in subscription:
                    listed = await client.list_tools()
                    say(step="heard", event=type(event).__name__, tools=[t.name for t in listed.tools])
                    break
            assert await told() == "end"
            with anyio.fail_after(10):
                async for event in subscription:
                    say(step="heard after the end", event=type(event).__name__)
            say(step="ended")


anyio.run(main, sys.argv[1], sys.argv[2])
