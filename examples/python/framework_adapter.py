#!/usr/bin/env python3
"""An agent-framework host that keeps no tool catalogue between turns, speaking the adapter protocol.

SPEC.md §5.2's `fetch-per-turn`: before the model is called, every connector is listed afresh and
the model is offered what returns; a failing list aborts the turn with an error naming the
connector; nothing is kept once the turn ends, and the agent's next call of the model after it
completed a handshake through a connector's stubs lists every connector again. With --invalidate-on-notify it is instead
`invalidate-on-notify`: lists are cached, a `list_changed` drops the cached list, and the next offer
lists it again. Neither has notices, `/mcp` or an in-session authentication command: the host says so in its
`hello` (`commands`), and the runner never asks for them. To servers of MCP 2026-07-28 (protocol
6) neither opens a listen stream or heeds a TTL. A call a deploy made unknown (protocol 8) fails
like any. Standard library only.

    coherence conform --adapter 'python3 examples/python/framework_adapter.py'
    coherence conform --adapter 'python3 examples/python/framework_adapter.py --invalidate-on-notify'
"""
import json
import sys

PROTOCOL = 8


def started_with(connector, i):
    """The listing session number `i` got at its start: with two users behind the host (protocol
    7), every session but the first acts for the second user, whose listing is `second_user`."""
    return connector.get("second_user", connector["tools"]) if i > 0 else connector["tools"]
IN_FLIGHT_MAX = 2  # the client sends a request per need, up to two at once per connector


class Link:
    """One session's view of one connector."""

    def __init__(self, tools, kept):
        self.catalogue = tools  # "stubs", "actions", or None
        self.lazy = not kept  # no list kept: list it at the next offer
        self.in_flight = []  # ids of our tools/list requests, oldest first
        self.queued = False  # a request asked for while two were in flight


class Host:
    def __init__(self, per_turn):
        self.per_turn = per_turn

    def reset(self, connectors, sessions):
        self.sessions = sessions
        self.connectors = [c["name"] for c in connectors]
        kept = not self.per_turn
        self.links = {
            (s, c["name"]): Link(started_with(c, i) if kept else None, kept)
            for i, s in enumerate(sessions)
            for c in connectors
        }
        self.turns = {s: None for s in sessions}  # None, or {"held": bool}
        self.sent = {key: 0 for key in self.links}

    def request(self, s, c):
        link = self.links[(s, c)]
        if len(link.in_flight) >= IN_FLIGHT_MAX:
            link.queued = True
            return
        link.in_flight.append(self.sent[(s, c)])
        self.sent[(s, c)] += 1
        self.requests.append({"session": s, "connector": c})

    def waiting(self, s):
        return any(self.links[(s, c)].in_flight or self.links[(s, c)].queued for c in self.connectors)

    def drop(self, s, c):
        link = self.links[(s, c)]
        link.catalogue, link.lazy = None, True

    def fetch_for_offer(self, s):
        """Before the model is called: list every connector whose list is not kept, and wait."""
        if self.turns[s] is None:
            return
        lazy = [c for c in self.connectors if self.links[(s, c)].lazy]
        for c in lazy:
            self.request(s, c)
        if lazy:
            self.turns[s]["held"] = True

    def relist_before_model_call(self, s):
        """The agent acted and the turn goes on: the next model call lists every connector again."""
        for c in self.connectors:
            self.drop(s, c)
        self.fetch_for_offer(s)

    def end_turn(self, s):
        self.turns[s] = None
        if self.per_turn:
            for c in self.connectors:
                self.drop(s, c)

    def reply(self, s, c, request, result):
        """A tools/list reply (or a timeout, as a transport error). Returns the turn's answer, if it
        ends the turn."""
        link = self.links[(s, c)]
        link.in_flight.remove(request)
        answer = None
        if "first_page" in result:
            # A paged reply: the client library fetches the rest with the cursor before returning.
            link.in_flight.append(self.sent[(s, c)])
            self.sent[(s, c)] += 1
            self.requests.append({"session": s, "connector": c, "cursor": result["first_page"]["next_cursor"]})
            return None
        if "tools" in result:
            if not (self.per_turn and self.turns[s] is None):  # between turns nothing is kept
                link.catalogue, link.lazy = result["tools"], False
        else:
            if link.catalogue is None:
                link.lazy = True
            if self.turns[s] is not None:
                answer = {"aborted": c}
                self.end_turn(s)
        if link.queued and len(link.in_flight) < IN_FLIGHT_MAX:
            link.queued = False
            self.request(s, c)
        return answer

    def handle(self, msg):
        kind, s, c = msg["type"], msg.get("session"), msg.get("connector")
        answer = None
        if kind == "notification":
            if not self.per_turn:
                self.drop(s, c)
                self.fetch_for_offer(s)
        elif kind == "complete_authentication":
            # The agent authenticated through the stubs inside the turn; the turn goes on.
            if self.per_turn:
                self.relist_before_model_call(s)
            elif msg["list_changed_first"]:
                self.drop(s, c)
                self.fetch_for_offer(s)
        elif kind == "listing":
            answer = self.reply(s, c, msg["request"], msg["result"])
        elif kind == "timeout":
            answer = self.reply(s, c, msg["request"], {"error": "transport"})
        elif kind == "ask":
            self.turns[s] = {"held": False}
            self.fetch_for_offer(s)
        elif kind == "restart":
            self.turns[s] = None
            for each in self.connectors:
                self.links[(s, each)] = Link(None, not self.per_turn)
                if not self.per_turn:
                    self.request(s, each)
        elif kind == "ttl_expired":
            pass  # TTLs are not heeded: a list is fetched per turn, or kept until a list_changed
        elif kind == "call_tool":
            answer = "used_tool" if msg["server"] == "ok" else {"tool_failed": None}
        elif kind == "call_stub":
            answer = {"stub_replied": "opaque" if msg["authenticated"] else "auth_prompt"}
        elif kind == "call_unlisted":
            answer = "no_such_tool"
        elif kind == "answer_not_available":
            answer = "not_available"
        else:
            raise ValueError(f"input {kind!r} is not for this host: it has no such command, and no notices")
        if answer is not None and self.turns[s] is not None:
            self.end_turn(s)
        return answer

    def views(self):
        def turn(s):
            t = self.turns[s]
            if t is None:
                return "none"
            # Hold the turn from the offer's requests until every reply is in.
            t["held"] = t["held"] and self.waiting(s)
            return "held" if t["held"] else "open"

        return [
            {
                "session": s,
                "catalogue": {c: self.links[(s, c)].catalogue for c in self.connectors if self.links[(s, c)].catalogue},
                "fetch_at_offer": [c for c in self.connectors if self.links[(s, c)].lazy],
                "turn": turn(s),
            }
            for s in self.sessions
        ]


def main():
    per_turn = "--invalidate-on-notify" not in sys.argv[1:]
    host = Host(per_turn)
    name = "python-framework/" + ("fetch-per-turn" if per_turn else "invalidate-on-notify")
    for line in sys.stdin:
        msg = json.loads(line)
        host.requests = []
        if msg["type"] == "hello":
            out = {"type": "hello", "protocol": PROTOCOL, "host": name, "commands": ["restart"]}
        elif msg["type"] == "reset":
            host.reset(msg["connectors"], msg["sessions"])
            out = {"type": "observation", "sessions": host.views()}
        else:
            answer = host.handle(msg)
            out = {"type": "observation", "requests": host.requests, "sessions": host.views()}
            if answer is not None:
                out["answer"] = answer
        out["seq"] = msg["seq"]  # echo the number of the input answered
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
