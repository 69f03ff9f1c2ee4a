"""Workloads: datasets (golden sets and loaders), prompts, arrival processes."""
