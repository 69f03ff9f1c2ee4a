"""`testbed serve` through the official openai client, on loopback, with the tiny random model.

Covers chat and completions (streaming and not, greedy and seeded sampling), the token_ids
extension, bad input (OpenAI-style error bodies, the server keeps serving), the API key,
and 64 concurrent streaming clients. Every loop here is bounded in count and time.
"""
import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import openai
import pytest
from openai import OpenAI

from testbed.config import validate
from testbed.drive import run_all
from testbed.engines.hf import HFEngine, HFOptions
from testbed.request import Request
from testbed.serve.server import BackgroundServer, build_state
from testbed.workloads.prompts import render_prompt

MODEL = "random:tiny-llama"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}]


def tiny_config(**arm):
    return validate({"name": "serve-test", "model": {"id": MODEL}, "baseline": "local",
                     "arms": {"local": {"engine": "hf", **arm}}, "workload": {"max_new_tokens": 8},
                     "sampling": {"temperature": 0}})


@pytest.fixture(scope="module")
def server():
    with BackgroundServer(build_state(tiny_config(), "local", max_queue=128)) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    return OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=30)


def raw_post(server, path: str, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    u = urlsplit(server.base_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_chat_greedy_matches_the_in_process_engine(server, client):
    lm = server.state.lm
    text, ids = render_prompt(lm.tokenizer, MESSAGES)
    ref = run_all(HFEngine(lm, HFOptions()), [Request(id="r", prompt_ids=ids, max_new_tokens=8,
                                                      eos_token_ids=lm.eos_token_ids)])[0]
    r = client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0, max_tokens=8,
                                       extra_body={"return_token_ids": True})
    assert r.choices[0].token_ids == ref.output_ids
    assert r.choices[0].message.content == lm.tokenizer.decode(ref.output_ids, skip_special_tokens=True)
    assert r.usage.prompt_tokens == len(ids) and r.usage.completion_tokens == len(ref.output_ids)
    assert r.choices[0].finish_reason == ref.finish_reason


def test_streamed_chat_equals_the_whole_response(client):
    whole = client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0, max_tokens=12)
    chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0, max_tokens=12,
                                                 stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_completions_stream_text_and_token_ids(client):
    whole = client.completions.create(model=MODEL, prompt="The sky is", temperature=0, max_tokens=10,
                                      extra_body={"return_token_ids": True})
    stream = client.completions.create(model=MODEL, prompt="The sky is", temperature=0, max_tokens=10, stream=True,
                                       extra_body={"return_token_ids": True})
    chunks = [c for c in stream if c.choices]
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text
    assert [t for c in chunks for t in (c.choices[0].token_ids or [])] == whole.choices[0].token_ids
    assert len(whole.choices[0].token_ids) == whole.usage.completion_tokens


def test_completions_accept_token_id_prompts(client, server):
    ids = list(server.state.lm.tokenizer("The sky is", add_special_tokens=False)["input_ids"])
    a = client.completions.create(model=MODEL, prompt=ids, temperature=0, max_tokens=6)
    b = client.completions.create(model=MODEL, prompt="The sky is", temperature=0, max_tokens=6)
    assert a.choices[0].text == b.choices[0].text and a.usage.prompt_tokens == len(ids)


def test_seeded_sampling_repeats_and_differs_across_seeds(client):
    def draw(seed):
        r = client.completions.create(model=MODEL, prompt="Once", temperature=1.0, max_tokens=16, seed=seed,
                                      extra_body={"return_token_ids": True})
        return r.choices[0].token_ids
    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


def test_models_and_health(server, client):
    assert [m.id for m in client.models.list().data] == [MODEL]
    u = urlsplit(server.base_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("GET", "/health")
    assert conn.getresponse().status == 200


BAD = [
    (b'{"model": "random:tiny-llama", "messages": [', 400, None),                       # malformed JSON
    (b'[1, 2]', 400, None),                                                              # not an object
    (b'{"model": "random:tiny-llama"}', 400, "messages"),                                # missing field
    (b'{"messages": [{"role": "user", "content": "hi"}]}', 400, "model"),               # missing model
    (b'{"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}', 404, "model"),
    (b'{"model": "random:tiny-llama", "messages": [{"role": "user", "content": "hi"}], "temperature": 3}',
     400, "temperature"),
    (b'{"model": "random:tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}',
     400, "max_tokens"),
    (b'{"model": "random:tiny-llama", "messages": [{"role": "user", "content": "hi"}], "n": 2}', 400, "n"),
    (b'{"model": "random:tiny-llama", "messages": [{"role": "user", "content": "hi"}], "top_p": 0}', 400, "top_p"),
    (b'{"model": "random:tiny-llama", "messages": [{"role": "user", "content": "hi"}], "stop": ["x"]}',
     400, "stop"),
    (b'{"model": "random:tiny-llama", "messages": [{"role": "user", "content": "hi"}], "bogus": 1}', 400, "bogus"),
    (b'{"model": "random:tiny-llama", "messages": [{"role": "wizard", "content": "hi"}]}', 400, "messages.0.role"),
    (b'{"model": "random:tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 99999}',
     400, "max_tokens"),
]


@pytest.mark.parametrize("body,status,param", BAD, ids=[f"{s}-{p}" for _, s, p in BAD])
def test_bad_input_gets_an_openai_error_and_the_server_keeps_serving(server, client, body, status, param):
    got, err = raw_post(server, "/v1/chat/completions", body)
    assert got == status
    assert set(err["error"]) == {"message", "type", "param", "code"} and err["error"]["message"]
    assert err["error"]["param"] == param
    assert client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=2).choices[0].finish_reason


BAD_COMPLETIONS = [
    (b'', 400, None),                                                                     # empty body
    (b'\xff\xfe{}', 400, None),                                                           # not UTF-8
    (b'{"model": "random:tiny-llama"}', 400, "prompt"),                                  # missing prompt
    (b'{"model": "random:tiny-llama", "prompt": ""}', 400, "prompt"),                    # empty prompt
    (b'{"model": "random:tiny-llama", "prompt": ["a", "b"]}', 400, "prompt"),            # two prompts
    (b'{"model": "random:tiny-llama", "prompt": "hi", "max_tokens": -1}', 400, "max_tokens"),
    (b'{"model": "random:tiny-llama", "prompt": "hi", "max_tokens": "many"}', 400, "max_tokens"),
    (b'{"model": "random:tiny-llama", "prompt": "hi", "temperature": -0.5}', 400, "temperature"),
    (b'{"model": "random:tiny-llama", "prompt": "hi", "top_k": -2}', 400, "top_k"),
    (b'{"model": "random:tiny-llama", "prompt": "hi", "stream": "yes please"}', 400, "stream"),
    (b'{"model": "random:tiny-llama", "prompt": "hi", "best_of": 3}', 400, "best_of"),
    (b'{"model": "nope", "prompt": "hi"}', 404, "model"),
]


@pytest.mark.parametrize("body,status,param", BAD_COMPLETIONS, ids=[f"{s}-{p}-{i}" for i, (_, s, p)
                                                                     in enumerate(BAD_COMPLETIONS)])
def test_bad_completions_input_gets_an_openai_error_and_the_server_keeps_serving(server, client, body, status,
                                                                                 param):
    got, err = raw_post(server, "/v1/completions", body)
    assert got == status and err["error"]["param"] == param and err["error"]["message"]
    assert err["error"]["type"] == "invalid_request_error"           # OpenAI's type for 404 model_not_found too
    assert status != 404 or err["error"]["code"] == "model_not_found"
    assert client.completions.create(model=MODEL, prompt="hi", max_tokens=2).choices[0].finish_reason


def test_prompt_longer_than_the_context_is_a_400(server, client):
    too_long = [5] * (server.state.lm.max_context + 10)
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model=MODEL, prompt=too_long, max_tokens=4)
    assert e.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=MODEL, prompt=[10 ** 9], max_tokens=4)   # not a token id


def test_unknown_route_is_an_openai_404(server):
    status, err = raw_post(server, "/v1/embeddings", b"{}")
    assert status == 404 and err["error"]["type"] == "not_found_error"


def test_api_key_is_required_when_set():
    with BackgroundServer(build_state(tiny_config(), "local", api_key="s3cret")) as srv:
        with pytest.raises(openai.AuthenticationError):
            OpenAI(base_url=srv.base_url, api_key="wrong", max_retries=0).models.list()
        ok = OpenAI(base_url=srv.base_url, api_key="s3cret", max_retries=0)
        assert ok.completions.create(model=MODEL, prompt="hi", max_tokens=2).choices[0].text is not None


def test_64_concurrent_streaming_clients_all_complete(server, client):
    def one(i):
        stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"q{i}"}],
                                                temperature=0, max_tokens=8, stream=True)
        return [c.choices[0].finish_reason for c in stream if c.choices and c.choices[0].finish_reason]
    before = server.metrics()
    with ThreadPoolExecutor(64) as pool:
        finals = list(pool.map(one, range(64), timeout=120))
    assert all(f in (["length"], ["stop"]) for f in finals)
    after = server.metrics()
    done = sum(v - before.get(k, 0) for k, v in after.items() if k.startswith("testbed_requests_total{outcome=\"")
               and ("stop" in k or "length" in k))
    assert done == 64
    assert after["testbed_requests_running"] == 0 and after["testbed_requests_waiting"] == 0


def test_metrics_exports_engine_stats_and_totals(server, client):
    client.completions.create(model=MODEL, prompt="hi", max_tokens=3, temperature=0)
    m = server.metrics()
    assert m["testbed_generation_tokens_total"] >= 3 and m["testbed_prompt_tokens_total"] > 0
    assert "testbed_engine_kv_cache_allocated_tokens" in m and m['testbed_info{model="random:tiny-llama"}'] == 1
    assert m["testbed_time_to_first_token_seconds_count"] >= 1


def test_a_client_disconnecting_mid_stream_frees_its_request(server):
    before = server.metrics().get('testbed_requests_total{outcome="aborted"}', 0)
    u = urlsplit(server.base_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    body = {"model": MODEL, "prompt": "Tell a long story", "max_tokens": 400, "temperature": 0, "stream": True}
    conn.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.readline().startswith(b"data: ")
    conn.sock.close()               # go away mid-stream
    conn.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = server.metrics()
        if m.get('testbed_requests_total{outcome="aborted"}', 0) > before and m["testbed_requests_running"] == 0:
            break
        time.sleep(0.1)
    assert m.get('testbed_requests_total{outcome="aborted"}', 0) == before + 1
    assert m["testbed_requests_running"] == 0 and m["testbed_requests_waiting"] == 0 and m["testbed_live_tokens"] == 0
