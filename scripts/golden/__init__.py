"""Builders for the shipped golden sets, one module per family; scripts/make_golden.py drives them."""
