#!/usr/bin/env python3
"""The crying-wolf host: builds its catalogue once, never refreshes it, and shows a permanent
"changed elsewhere: restart" notice on every connector; stale stubs say "restart".

Written against ADAPTER.md alone, as a host team would, to show that the runner fails a host
that tells the user something at every moment and does nothing (SPEC.md INV-9, INV-10).
Standard library only.
"""
import json
import sys

BANNER = {"reason": "changed_elsewhere", "recovery": "restart"}


def main():
    sessions, connectors, catalogue, turns, in_flight, sent = [], [], {}, {}, {}, {}
    for line in sys.stdin:
        msg = json.loads(line)
        kind, s, c = msg["type"], msg.get("session"), msg.get("connector")
        requests, answer = [], None

        def relist(session, connector):
            key = (session, connector)
            in_flight.setdefault(key, []).append(sent.get(key, 0))
            sent[key] = sent.get(key, 0) + 1
            requests.append({"session": session, "connector": connector})

        if kind == "hello":
            print(json.dumps({"type": "hello", "protocol": 2, "host": "crying-wolf", "seq": msg["seq"]}), flush=True)
            continue
        if kind == "reset":
            sessions = msg["sessions"]
            connectors = [each["name"] for each in msg["connectors"]]
            catalogue = {(x, each["name"]): each["tools"] for x in sessions for each in msg["connectors"]}
            turns = {x: False for x in sessions}
            in_flight, sent = {}, {}
        elif kind == "ask":
            turns[s] = True
        elif kind == "restart":
            turns[s] = False
            for each in connectors:
                catalogue[(s, each)] = None
                in_flight[(s, each)] = []
                relist(s, each)
        elif kind == "authenticated":
            relist(s, c)
        elif kind == "listing":
            in_flight[(s, c)].remove(msg["request"])
            if "tools" in msg["result"]:
                catalogue[(s, c)] = msg["result"]["tools"]
        elif kind == "timeout":
            pass  # no timeout: it waits for ever, but it never holds a turn either
        elif kind == "call_tool":
            answer = "used_tool" if msg["server"] == "ok" else {"tool_failed": None}
        elif kind == "call_stub":
            answer = {"stub_replied": {"guidance": "restart"} if msg["authenticated"] else "auth_prompt"}
        elif kind == "call_unlisted":
            answer = "no_such_tool"
        elif kind == "answer_not_available":
            answer = "not_available"
        elif kind == "relay_notice":
            answer = "relayed_notice"
        if answer is not None:
            turns[s] = False
        views = [
            {
                "session": x,
                "catalogue": {each: catalogue[(x, each)] for each in connectors if catalogue[(x, each)]},
                "notices": {each: BANNER for each in connectors},
                "turn": "open" if turns[x] else "none",
            }
            for x in sessions
        ]
        out = {"type": "observation", "requests": requests, "sessions": views, "seq": msg["seq"]}
        if answer is not None:
            out["answer"] = answer
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
