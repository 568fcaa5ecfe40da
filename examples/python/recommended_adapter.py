#!/usr/bin/env python3
"""An MCP host that follows SPEC.md's `recommended` policy, speaking the adapter protocol.

This is an example for implementers in other languages: a real host would wire the same
decisions to its MCP client, its catalogue and its UI. Standard library only.

    coherence conform --adapter 'python3 examples/python/recommended_adapter.py'
"""
import json
import sys

PROTOCOL = 1


class Link:
    """One session's view of one connector."""

    def __init__(self, tools):
        self.catalogue = tools  # "stubs", "actions" or None (not listed yet)
        self.notice = None  # {"reason": ..., "recovery": ...}
        self.in_flight = []  # ids of our tools/list requests, oldest first
        self.queued = False  # a refresh was asked for while one was in flight
        self.applied = -1  # id of the newest reply applied (the generation guard)
        self.reinitialise = False  # the transport session is gone: re-initialise first


class Host:
    def __init__(self):
        self.links, self.turns, self.account, self.sent = {}, {}, {}, {}

    def reset(self, connectors, sessions):
        self.sessions = sessions
        self.connectors = [c["name"] for c in connectors]
        self.links = {(s, c["name"]): Link(c["tools"]) for s in sessions for c in connectors}
        self.turns = {s: None for s in sessions}  # None, "asked", "waiting" or "retrying"
        self.sent = {key: 0 for key in self.links}

    # Requests: one in flight per connector; a refresh asked for meanwhile runs when it returns.
    def request(self, s, c):
        link = self.links[(s, c)]
        if link.in_flight:
            link.queued = True
            return
        link.in_flight.append(self.sent[(s, c)])
        self.sent[(s, c)] += 1
        self.requests.append({"session": s, "connector": c, "initialize": link.reinitialise})
        link.reinitialise = False

    def busy(self, s):
        return any(self.links[(s, c)].in_flight or self.links[(s, c)].queued for c in self.connectors)

    def check_account(self, s, recheck):
        """At a turn's start, re-list every connector the account contradicts; hold the turn."""
        for c in self.connectors:
            link = self.links[(s, c)]
            expected = "actions" if self.account.get(c) == "authenticated" else "stubs"
            failed = link.notice is not None and link.notice["reason"] == "refresh_failed"
            if link.catalogue != expected and not (recheck and failed):
                self.request(s, c)
        if self.busy(s):
            self.turns[s] = "waiting"

    def listing(self, s, c, request, result):
        link = self.links[(s, c)]
        link.in_flight.remove(request)
        if "tools" in result:
            if request > link.applied:  # never let an older reply overwrite a newer one
                link.applied = request
                link.catalogue = result["tools"]
                if link.notice and (link.notice["reason"] != "needs_authentication" or result["tools"] == "actions"):
                    link.notice = None
        elif result["error"] == "session_not_found":
            link.reinitialise = True
            self.request(s, c)
        else:
            link.notice = {"reason": "refresh_failed", "recovery": "refresh"}
        if link.queued and not link.in_flight:
            link.queued = False
            self.request(s, c)
        if self.turns[s] == "waiting" and not self.busy(s):
            self.check_account(s, recheck=True)

    def retry(self, s, c):
        """Refresh for the agent and hold the turn; it gets one more go."""
        self.request(s, c)
        self.turns[s] = "retrying"

    def handle(self, msg):
        kind, s, c = msg["type"], msg.get("session"), msg.get("connector")
        self.account = msg.get("account", self.account)
        answer = None
        if kind == "notification" or kind == "authenticated":
            self.request(s, c)
        elif kind == "listing":
            self.listing(s, c, msg["request"], msg["result"])
        elif kind == "ask":
            self.turns[s] = "asked"
            self.check_account(s, recheck=False)
        elif kind == "mcp":
            for each in self.connectors:
                self.request(s, each)
        elif kind == "restart":
            self.turns[s] = None
            for each in self.connectors:
                self.links[(s, each)] = Link(None)
                self.request(s, each)
        elif kind == "call_tool":
            link = self.links[(s, c)]
            if msg["server"] == "ok":
                answer = "used_tool"
            elif msg["server"] == "session_not_found":
                link.reinitialise = True
                if self.turns[s] != "retrying":
                    self.retry(s, c)
                else:
                    self.request(s, c)
                    answer = {"tool_failed": "restart"}
            else:
                link.notice = {"reason": "needs_authentication", "recovery": "authenticate"}
                self.request(s, c)
                answer = {"tool_failed": "authenticate"}
        elif kind == "call_stub":
            if self.account.get(c) != "authenticated":
                answer = {"stub_replied": "auth_prompt"}
            elif self.turns[s] != "retrying":
                self.retry(s, c)
            else:
                answer = {"stub_replied": {"guidance": "refresh"}}
        elif kind == "call_unlisted":
            notice = self.links[(s, c)].notice
            if self.turns[s] != "retrying":
                self.retry(s, c)
            else:
                answer = {"tool_failed": notice["recovery"]} if notice else "no_such_tool"
        elif kind == "answer_not_available":
            answer = "not_available"
        elif kind == "relay_notice":
            answer = "relayed_notice"
        else:
            raise ValueError(f"unknown input type {kind!r}")
        if answer is not None:
            self.turns[s] = None
        return answer

    def views(self):
        def turn(s):
            if self.turns[s] is None:
                return "none"
            return "held" if self.turns[s] in ("waiting", "retrying") and self.busy(s) else "open"

        return [
            {
                "session": s,
                "catalogue": {c: self.links[(s, c)].catalogue for c in self.connectors if self.links[(s, c)].catalogue},
                "notices": {c: self.links[(s, c)].notice for c in self.connectors if self.links[(s, c)].notice},
                "turn": turn(s),
            }
            for s in self.sessions
        ]


def main():
    host = Host()
    for line in sys.stdin:
        msg = json.loads(line)
        host.requests = []
        if msg["type"] == "hello":
            out = {"type": "hello", "protocol": PROTOCOL, "host": "python-example/recommended"}
            if msg["protocol"] != PROTOCOL:
                out = {"type": "error", "message": f"protocol {msg['protocol']} is not supported"}
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
