"""What every driver of examples/frameworks shares: the `coherence conform --host` side of it.

User turns arrive as JSON lines on stdin (`{"type": "user", "text": ...}`); each is handed to the
framework, and what the turn ended with is printed as `{"type": "turn_end", "text": ...}`: the
agent's final words, or the error that ended the run, as the framework raised it.
"""
import asyncio
import json
import sys


async def serve(turn):
    """Runs `await turn(text)` for every user line until stdin closes."""
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        message = json.loads(line)
        if message.get("type") != "user":
            continue
        try:
            text = await turn(message["text"])
        except Exception as error:  # the framework's own message, as a user would see it
            text = f"Error: {type(error).__name__}: {error}"
        print(json.dumps({"type": "turn_end", "text": text}), flush=True)
