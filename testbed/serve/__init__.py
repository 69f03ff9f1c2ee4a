"""`testbed serve`: one arm (engine plus strategies) behind an OpenAI-compatible HTTP API.

    python -m testbed serve configs/remote.yaml --arm local --port 8000

app.py (routes, errors, auth), loop.py (the thread that owns the engine), protocol.py (the
OpenAI request/response models), stream.py (per-request token streams), metrics.py (/metrics),
server.py (build from a config, run uvicorn, or run in a background thread for tests).
"""
