#!/usr/bin/env python3
"""An MCP host that follows SPEC.md's `recommended` policy, speaking the adapter protocol.

This is an example for implementers in other languages: a real host would wire the same
decisions to its MCP client, its catalogue and its UI. Standard library only.

    coherence conform --adapter 'python3 examples/python/recommended_adapter.py'

Pass --generic for `recommended-mcp`: the same host without the account read (a generic MCP
host of third-party servers).

To servers of MCP 2026-07-28 (protocol 6) it keeps a `subscriptions/listen` stream open on every
session (reopened, with a re-list, whenever it ends) and lists a stale list again at a turn's
start (one whose TTL ran out, or that came with none). With two users behind it (protocol 7) it
keeps each session's lists to that session, so no user is served another's. When a deploy
withdraws a tool (protocol 8), the server answers its call "unknown tool": the host re-lists and
lets the agent try again, as for a stale stub; its account read then says what each server lists.
"""
import json
import sys

PROTOCOL = 8


def started_with(connector, i):
    """The listing session number `i` got at its start: with two users behind the host (protocol
    7), every session but the first acts for the second user, whose listing is `second_user`."""
    return connector.get("second_user", connector["tools"]) if i > 0 else connector["tools"]


class Link:
    """One session's view of one connector."""

    def __init__(self, tools, stateless=False, fresh=False):
        self.catalogue = tools  # "stubs", "actions", "withdrawn" or None (not listed yet)
        self.stateless = stateless  # the server speaks MCP 2026-07-28
        self.fresh = fresh  # 2026-07-28: the list's TTL still runs
        self.notice = None  # {"reason": ..., "recovery": ...}
        self.in_flight = []  # ids of our tools/list requests, oldest first (at most one)
        self.queued = False  # a refresh was asked for while one was in flight
        self.reinitialise = False  # the transport session is gone: re-initialise first


def fresh(cache):
    """Whether a result with these cache hints may be used until a `ttl_expired` says otherwise."""
    return cache is not None and cache["ttl"] == "long"


def resolved(notice, tools):
    """Whether a listing (from a refresh or an account read) closes the gap a notice is about."""
    return notice["reason"] != "needs_authentication" or tools in ("actions", "withdrawn")


class Host:
    def __init__(self, reads_account):
        self.reads_account = reads_account
        self.links, self.turns, self.reading, self.sent = {}, {}, {}, {}

    def reset(self, connectors, sessions):
        self.sessions = sessions
        self.connectors = [c["name"] for c in connectors]
        self.links = {
            (s, c["name"]): Link(started_with(c, i), c.get("revision") == "stateless", fresh(c.get("cache")))
            for i, s in enumerate(sessions)
            for c in connectors
        }
        self.turns = {s: None for s in sessions}  # None, or {"retried": bool}
        self.reading = {s: False for s in sessions}  # an account read is in flight
        self.sent = {key: 0 for key in self.links}

    def listen(self, s, c):
        """Opens a listen stream asking for tool list changes (2026-07-28 servers)."""
        if self.links[(s, c)].stateless:
            self.listens.append({"session": s, "connector": c})

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

    def waiting(self, s):
        busy = any(self.links[(s, c)].in_flight or self.links[(s, c)].queued for c in self.connectors)
        return busy or self.reading[s]

    def account(self, s, result):
        """The turn-start read: re-list every connector it contradicts (all of them, if it failed)."""
        self.reading[s] = False
        for c in self.connectors:
            link = self.links[(s, c)]
            if result == "failed":
                self.request(s, c)
                continue
            if "lists" in result:  # protocol 8, with deploys: what each server lists the account
                expected = result["lists"].get(c)
            else:
                expected = "actions" if result["connectors"].get(c) == "authenticated" else "stubs"
            failed = link.notice is not None and link.notice["reason"] == "refresh_failed"
            if link.catalogue != expected:
                self.request(s, c)
                continue
            if link.notice and not failed and resolved(link.notice, expected):
                link.notice = None
            # A reply in flight may predate the read, and a read cannot see a failed refresh.
            if failed or link.in_flight:
                self.request(s, c)

    def settle(self, s, c):
        """After a reply or a timeout: send the refetch asked for meanwhile."""
        link = self.links[(s, c)]
        if link.queued and not link.in_flight:
            link.queued = False
            self.request(s, c)

    def listing(self, s, c, request, result, cache):
        link = self.links[(s, c)]
        link.in_flight.remove(request)
        if "first_page" in result:
            # A paged reply: ask for the rest with its cursor, in the request's place.
            link.in_flight.append(self.sent[(s, c)])
            self.sent[(s, c)] += 1
            cursor = result["first_page"]["next_cursor"]
            self.requests.append({"session": s, "connector": c, "initialize": False, "cursor": cursor})
            return
        if "tools" in result:
            link.catalogue = result["tools"]
            link.fresh = fresh(cache)
            if link.notice and resolved(link.notice, result["tools"]):
                link.notice = None
        elif result["error"] == "session_not_found":
            link.reinitialise = True
            self.request(s, c)
        else:
            link.notice = {"reason": "refresh_failed", "recovery": "refresh"}
        self.settle(s, c)

    def timeout(self, s, c, request):
        """A tools/list that never returns is given up, as a transport failure."""
        link = self.links[(s, c)]
        link.in_flight.remove(request)
        link.notice = {"reason": "refresh_failed", "recovery": "refresh"}
        self.settle(s, c)

    def retry(self, s, c):
        """Refresh for the agent; it gets one more go once the refresh settles."""
        self.request(s, c)
        if not self.turns[s]["retried"]:
            self.turns[s]["retried"] = True
            return True
        return False

    def handle(self, msg):
        kind, s, c = msg["type"], msg.get("session"), msg.get("connector")
        answer = None
        if kind == "notification" or kind == "authenticated":
            self.request(s, c)
        elif kind == "listing":
            self.listing(s, c, msg["request"], msg["result"], msg.get("cache"))
        elif kind == "ttl_expired":
            self.links[(s, c)].fresh = False
        elif kind == "listen_ended":
            # What the server sent meanwhile is gone: listen again, and list again.
            self.listen(s, c)
            self.request(s, c)
        elif kind == "timeout":
            self.timeout(s, c, msg["request"])
        elif kind == "account":
            self.account(s, msg["result"])
        elif kind == "ask":
            self.turns[s] = {"retried": False}
            for each in self.connectors:
                link = self.links[(s, each)]
                if link.stateless and not link.fresh:
                    self.request(s, each)
            if self.reads_account:
                self.reading[s] = True
                self.reads.append(s)
        elif kind == "mcp":
            for each in self.connectors:
                self.request(s, each)
        elif kind == "restart":
            self.turns[s] = None
            self.reading[s] = False
            for each in self.connectors:
                self.links[(s, each)] = Link(None, self.links[(s, each)].stateless)
                self.listen(s, each)
                self.request(s, each)
        elif kind == "call_tool":
            link = self.links[(s, c)]
            if msg["server"] == "ok":
                answer = "used_tool"
            elif msg["server"] == "session_not_found":
                link.reinitialise = True
                if not self.retry(s, c):
                    answer = {"tool_failed": "restart"}
            elif msg["server"] == "unknown_tool":
                # A deploy withdrew the tool: the catalogue is stale, as with a stale stub.
                if not self.retry(s, c):
                    answer = {"tool_failed": "refresh"}
            else:
                link.notice = {"reason": "needs_authentication", "recovery": "authenticate"}
                self.request(s, c)
                answer = {"tool_failed": "authenticate"}
        elif kind == "call_stub":
            if not msg["authenticated"]:
                answer = {"stub_replied": "auth_prompt"}
            elif not self.retry(s, c):
                answer = {"stub_replied": {"guidance": "refresh"}}
        elif kind == "call_unlisted":
            notice = self.links[(s, c)].notice
            answer = {"tool_failed": notice["recovery"]} if notice else "no_such_tool"
        elif kind == "answer_not_available":
            answer = "not_available"
        elif kind == "relay_notice":
            answer = "relayed_notice"
        elif kind == "complete_authentication":
            # The agent authenticated through the stubs, inside the turn. A list_changed that came
            # before the result is handled as any; a platform knows its own stubs and re-lists
            # whatever the server sends (a generic host cannot tell this call from any other).
            if msg["list_changed_first"]:
                self.request(s, c)
            if self.reads_account:
                self.request(s, c)
        else:
            raise ValueError(f"unknown input type {kind!r}")
        if answer is not None:
            self.turns[s] = None
        return answer

    def views(self):
        def turn(s):
            if self.turns[s] is None:
                return "none"
            # Hold the turn while anything this session sent is outstanding.
            return "held" if self.waiting(s) else "open"

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
    generic = "--generic" in sys.argv[1:]
    host = Host(reads_account=not generic)
    name = "python-example/" + ("recommended-mcp" if generic else "recommended")
    for line in sys.stdin:
        msg = json.loads(line)
        host.requests, host.reads, host.listens = [], [], []
        if msg["type"] == "hello":
            # A runner of another version is answered with ours: it says whether it accepts it.
            out = {"type": "hello", "protocol": PROTOCOL, "host": name}
        elif msg["type"] == "reset":
            host.reset(msg["connectors"], msg["sessions"])
            for s in host.sessions:
                for c in host.connectors:
                    host.listen(s, c)
            out = {"type": "observation", "listens": host.listens, "sessions": host.views()}
        else:
            answer = host.handle(msg)
            out = {
                "type": "observation",
                "requests": host.requests,
                "reads": host.reads,
                "listens": host.listens,
                "sessions": host.views(),
            }
            if answer is not None:
                out["answer"] = answer
        out["seq"] = msg["seq"]  # echo the number of the input answered
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
