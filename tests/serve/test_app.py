"""llmlab.serve.app: the OpenAI-compatible endpoint, called with the official openai client.

The answers are compared with ``LocalChat`` called directly (the reference: the server must not
change what the model writes); bad requests must come back as HTTP 400 in OpenAI's error shape.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from llmlab.chat.local import LocalChat, load_chat
from llmlab.chat.openai_backend import OpenAIChat
from llmlab.decoding.chat_template import chat_text
from llmlab.serve.app import start_in_thread
from llmlab.serve.protocol import RequestError, parse_request

openai = pytest.importorskip("openai")

HI = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["C", "F"]},
            },
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def local(lm):
    return LocalChat(lm)


@pytest.fixture(scope="module")
def srv(local):
    with start_in_thread(local) as running:
        yield running


@pytest.fixture(scope="module")
def client(srv):
    return openai.OpenAI(base_url=srv.base_url, api_key="not-needed", max_retries=0)


@pytest.fixture(scope="module")
def ref(local):
    """The reference answer to HI: LocalChat called directly, once for the module."""
    return local.complete(HI, max_tokens=12)


def test_models_lists_the_served_model(client, local):
    assert [m.id for m in client.models.list().data] == [local.model]


def test_completion_matches_the_local_chat_and_shows_the_prompt(client, local, lm, ref):
    resp = client.chat.completions.create(model=local.model, messages=HI, max_tokens=12)
    choice = resp.choices[0]
    assert choice.message.content == ref.text and choice.message.content.strip()
    assert choice.finish_reason == ref.finish_reason
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (
        ref.usage.prompt_tokens,
        ref.usage.completion_tokens,
    )
    assert resp.model_extra["llmlab"]["prompt"] == chat_text(lm, HI)


def test_stream_gives_the_same_text_as_plain(client, local, ref):
    kwargs = {"model": local.model, "messages": HI, "max_tokens": 12}
    plain = ref.text  # what the plain request answers (test above)
    chunks = list(client.chat.completions.create(**kwargs, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1  # pieces
    assert chunks[-1].choices[0].finish_reason in {"stop", "length"}
    assert "<|im_start|>user" in chunks[0].model_extra["llmlab"]["prompt"]


def test_load_chat_talks_to_the_server(srv, local, ref):
    remote = load_chat(base_url=srv.base_url, model=local.model)
    assert isinstance(remote, OpenAIChat)
    assert remote.complete(HI, max_tokens=12).text == ref.text
    assert "".join(remote.stream(HI, max_tokens=12)) == ref.text


BAD = {
    "unknown model": ({"model": "gpt-5"}, "model", "does not exist"),
    "messages not a list": ({"messages": "hi"}, "messages", "non-empty list"),
    "message without role": ({"messages": [{"content": "hi"}]}, "messages[0]", "role"),
    "image content": (
        {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
        "messages[0].content",
        "text",
    ),
    "last message from assistant": (
        {"messages": [{"role": "assistant", "content": "x"}]},
        None,
        "end with a user message",
    ),
    "negative temperature": ({"temperature": -0.5}, "temperature", "from 0 to 2"),
    "max_tokens 0": ({"max_tokens": 0}, "max_tokens", ">= 1"),
    "tool name with a space": (
        {"tools": [{"type": "function", "function": {"name": "get weather"}}]},
        "tools[0].function.name",
        "letters",
    ),
    "tool schema invalid": (
        {
            "tools": [
                {"type": "function", "function": {"name": "f", "parameters": {"type": "nonsense"}}}
            ]
        },
        "tools[0].function.parameters",
        "schema",
    ),
    "duplicate tools": ({"tools": [WEATHER, WEATHER]}, "tools", "unique"),
    "tool_choice unknown tool": (
        {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
        "tool_choice",
        "get_weather",
    ),
    "prompt over the window": (
        {"messages": [{"role": "user", "content": "hello " * 9000}]},
        "messages",
        "context window",
    ),
    "prompt over the window, streamed": (
        {"stream": True, "messages": [{"role": "user", "content": "hello " * 9000}]},
        "messages",
        "context window",
    ),
    "schema the engine cannot compile": (
        {
            "tool_choice": "required",
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "f",
                        "parameters": {
                            "type": "object",
                            "properties": {"x": {"type": "string", "pattern": "(?=a)b"}},
                        },
                    },
                }
            ],
        },
        "tools",
        "look",
    ),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_requests_get_400_in_openai_shape(srv, local, name):
    change, param, words = BAD[name]
    if name == "schema the engine cannot compile":
        pytest.importorskip("llmlab.tool_use.calling")
    body = {"model": local.model, "messages": HI, "max_tokens": 4} | change
    resp = httpx.post(f"{srv.base_url}/chat/completions", json=body, timeout=60)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert words in error["message"] and "Traceback" not in error["message"]


def test_openai_client_raises_bad_request(client):
    with pytest.raises(openai.BadRequestError, match="does not exist"):
        client.chat.completions.create(model="gpt-5", messages=HI)


def test_not_json_and_unknown_route(srv):
    resp = httpx.post(f"{srv.base_url}/chat/completions", content=b"{not json", timeout=10)
    assert resp.status_code == 400 and "not valid JSON" in resp.json()["error"]["message"]
    resp = httpx.get(f"{srv.base_url}/completions", timeout=10)
    assert resp.status_code == 404 and "/v1/chat/completions" in resp.json()["error"]["message"]


def test_unexpected_error_is_a_clean_500():
    class Broken:
        model = "broken"

        def complete(self, *args, **kwargs):
            raise RuntimeError("boom")

    with start_in_thread(Broken()) as running:
        resp = httpx.post(
            f"{running.base_url}/chat/completions",
            timeout=10,
            json={"model": "broken", "messages": HI},
        )
    assert resp.status_code == 500
    error = resp.json()["error"]
    assert error["type"] == "server_error" and "RuntimeError" in error["message"]
    assert "Traceback" not in resp.text


def test_models_answers_while_a_request_runs_and_waiting_requests_share_a_batch(srv, client, local):
    results, answered_during = {}, []

    def ask(i: int, max_tokens: int) -> None:
        msgs = [{"role": "user", "content": f"Count from {i} to {i + 5}."}]
        results[i] = (
            client.chat.completions.create(model=local.model, messages=msgs, max_tokens=max_tokens)
            .choices[0]
            .message.content
        )

    first = threading.Thread(target=ask, args=(0, 24))
    first.start()
    time.sleep(0.3)  # the first request is on the model now; the next ones wait together
    others = [threading.Thread(target=ask, args=(i, 6)) for i in (1, 2, 3)]
    for t in others:
        t.start()
    client.models.list()
    answered_during.append(first.is_alive())
    for t in [first, *others]:
        t.join()
    assert answered_during == [True]  # /v1/models did not wait for the generation
    assert sorted(results) == [0, 1, 2, 3]
    for i in (1, 2, 3):  # batched greedy answers = one-at-a-time answers
        msgs = [{"role": "user", "content": f"Count from {i} to {i + 5}."}]
        assert results[i] == local.complete(msgs, max_tokens=6).text
    assert max(srv.app.state.worker.batch_sizes) > 1


def test_model_worker_batches_alike_waiting_jobs_and_keeps_errors_apart():
    from llmlab.serve.worker import ModelWorker

    class Fake:
        calls = []

        def complete_batch(self, chats, max_tokens, stop=()):
            if any(c == "bad" for c in chats):
                raise ValueError("one chat is bad")
            self.calls.append((list(chats), max_tokens))
            return [f"{c}:{max_tokens}" for c in chats]

    gate = threading.Event()
    worker = ModelWorker(Fake(), max_batch=3)
    blocker = worker.submit(gate.wait)  # holds the model while the others queue
    same = {"max_tokens": 5, "stop": ()}
    futures = [worker.submit(lambda c=c: f"alone {c}", c, same) for c in "abcd"]
    other = worker.submit(lambda: "alone e", "e", {"max_tokens": 9, "stop": ()})
    bad = [worker.submit(lambda: 1 / 0, "bad", same), worker.submit(lambda: "alone f", "f", same)]
    gate.set()
    assert blocker.result(10) is True
    # a, b, c shared one call; d, bad and f shared the next, which failed on "bad": each of them
    # then ran alone, so only bad's request sees the error
    assert [f.result(10) for f in futures] == ["a:5", "b:5", "c:5", "alone d"]
    assert Fake.calls == [(["a", "b", "c"], 5)]
    with pytest.raises(ZeroDivisionError):
        bad[0].result(10)
    assert bad[1].result(10) == "alone f"
    assert other.result(10) == "alone e"  # other settings: never in a batch with the rest
    worker.close()
    assert worker.batch_sizes == [1, 3, 3, 1]


def test_parse_request_defaults_and_errors():
    req = parse_request({"model": "m", "messages": HI, "max_completion_tokens": 7}, "m")
    assert (req.max_tokens, req.temperature, req.stream, req.tools) == (7, 0.0, False, [])
    with pytest.raises(RequestError, match="tool_choice needs tools"):
        parse_request({"model": "m", "messages": HI, "tool_choice": "required"}, "m")
    with pytest.raises(RequestError, match="n=2"):
        parse_request({"model": "m", "messages": HI, "n": 2}, "m")


def test_forced_tool_call_validates_against_the_schema(client, local):
    pytest.importorskip("llmlab.tool_use.calling")
    from jsonschema import validate

    msgs = [{"role": "user", "content": "What's the weather like in Paris?"}]
    kwargs = {
        "model": local.model,
        "messages": msgs,
        "max_tokens": 48,
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    }
    resp = client.chat.completions.create(**kwargs)
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather" and call.id
    validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])
    assert "<tools>" in resp.model_extra["llmlab"]["prompt"]
    # streamed: the same call, sent whole in one chunk, then finish_reason "tool_calls"
    chunks = [c for c in client.chat.completions.create(**kwargs, stream=True) if c.choices]
    (streamed,) = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or []]
    assert (streamed.function.name, streamed.function.arguments) == (
        call.function.name,
        call.function.arguments,
    )
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    # the client runs the tool and sends the result back: the model reads it as a turn
    result = {"role": "tool", "tool_call_id": call.id, "content": "18 C and sunny"}
    again = client.chat.completions.create(
        model=local.model,
        max_tokens=8,
        tools=[WEATHER],
        tool_choice="none",
        messages=[*msgs, choice.message.model_dump(exclude_none=True), result],
    )
    assert again.choices[0].finish_reason in {"stop", "length"}
    assert not again.choices[0].message.tool_calls
    prompt = again.model_extra["llmlab"]["prompt"]
    assert "<tool_response>\n18 C and sunny\n</tool_response>" in prompt
    assert '<tool_call>[{"name": "get_weather"' in prompt


def test_complete_with_tools_through_the_server_equals_local(srv, local):
    tool_calling = pytest.importorskip("llmlab.tool_use.calling")
    from llmlab.tool_use.tools import Tool

    params = WEATHER["function"]["parameters"]
    tool = Tool(
        name="get_weather",
        description=WEATHER["function"]["description"],
        parameters=params,
        fn=lambda **kw: "sunny",
    )
    msgs = [{"role": "user", "content": "Weather in Rome, please."}]
    remote = load_chat(base_url=srv.base_url, model=local.model)
    got = tool_calling.complete_with_tools(
        remote, msgs, [tool], tool_choice="required", max_tokens=48
    )
    ref = tool_calling.complete_with_tools(
        local, msgs, [tool], tool_choice="required", max_tokens=48
    )
    assert got.finish_reason == ref.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in got.tool_calls] == [
        (c.name, c.arguments) for c in ref.tool_calls
    ]


# --- the real command, as a learner starts it ---------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_llmlab_serve_subprocess_answers_the_openai_client():
    port = _free_port()
    cmd = [sys.executable, "-m", "llmlab", "serve", "--port", str(port), "--show-prompts"]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
        cwd=Path(__file__).parent,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "llmlab serve did not become ready"
            time.sleep(0.5)
        client = openai.OpenAI(base_url=base, api_key="not-needed", max_retries=0)
        model = client.models.list().data[0].id
        resp = client.chat.completions.create(model=model, messages=HI, max_tokens=8)
        assert resp.choices[0].message.content.strip()
        streamed = client.chat.completions.create(
            model=model, messages=HI, max_tokens=8, stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == (
            resp.choices[0].message.content
        )
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert base in out and "from openai import OpenAI" in out
    assert "<|im_start|>user\nWhat is the capital of France?<|im_end|>" in err  # --show-prompts
