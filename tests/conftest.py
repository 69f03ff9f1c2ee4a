"""Shared fixtures: tiny random models (fixed seed, milliseconds) and a cache dir per session."""
import pytest
import torch

from testbed.config import ModelSpec
from testbed.models import load_model


@pytest.fixture(scope="session")
def tiny_lm():
    torch.set_num_threads(1)
    return load_model(ModelSpec(id="random:tiny-llama", dtype="float32"), "cpu")


@pytest.fixture(scope="session")
def tiny_qwen():
    return load_model(ModelSpec(id="random:tiny-qwen2", dtype="float32"), "cpu")
