"""Routing across model tiers: which tier answers each request, what it cost, and RouteLLM's measures.

A `routing:` arm section names tiers (cheapest first) and one router; the arm's engine kind
runs each tier. See config.py for the YAML, base.py for the router interface.
"""
