"""testbed: measure what inference-architecture choices do to speed, memory, quality and cost.

    python -m testbed run configs/quickstart.yaml
"""
__version__ = "0.1.0"
