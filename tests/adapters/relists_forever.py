#!/usr/bin/env python3
"""A host that sends one more tools/list for every input it gets, replies included: it re-lists
without end, and the runner must stop it (ADAPTER.md: "re-listing without end")."""
import json
import sys

for line in sys.stdin:
    msg = json.loads(line)
    if msg["type"] == "hello":
        out = {"type": "hello", "protocol": 3, "host": "relists-forever"}
    else:
        if msg["type"] == "reset":
            sessions = msg["sessions"]
            tools = {c["name"]: c["tools"] for c in msg["connectors"]}
        again = [] if msg["type"] == "reset" else [{"session": sessions[0], "connector": next(iter(tools))}]
        views = [{"session": s, "catalogue": tools, "turn": "none"} for s in sessions]
        out = {"type": "observation", "requests": again, "sessions": views}
    out["seq"] = msg["seq"]
    print(json.dumps(out), flush=True)
