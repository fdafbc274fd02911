"""The OpenAI chat-completions wire format: request checks and response shapes, JSON in and out.

What a request to ``POST /v1/chat/completions`` may contain and what comes back, with no model
and no web framework (``llmlab.serve.app`` serves it). ``parse_request(body, model)`` checks every
field and raises ``RequestError`` (-> HTTP 400) naming the field (``param``) and the fix;
``completion_body`` / ``chunk_body`` build the answer and the streamed chunks (``sse`` frames one
event); ``error_body`` is OpenAI's ``{"error": {"message", "type", "param", "code"}}``.

Fields read: model, messages (system / developer / user / assistant with ``tool_calls`` / tool;
content as text or a list of text parts), max_tokens / max_completion_tokens, temperature, seed,
stop, stream, tools, tool_choice. Leaves out (refused with a 400 if asked for): n > 1, top_p
other than 1, logprobs. Other fields (user, stream_options, ...) are ignored.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_TOKENS = 256
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ROLES = ("system", "developer", "user", "assistant", "tool")
DONE = "data: [DONE]\n\n"


class RequestError(ValueError):
    """Bad input: answered as HTTP 400 with OpenAI's error shape."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param, self.code = param, code


def error_body(
    message: str,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict:
    """``{"error": {...}}`` as OpenAI sends it (the openai client raises ``BadRequestError``)."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass
class ChatRequest:
    """A checked request: the fields this server reads, with OpenAI's meaning and defaults."""

    model: str
    messages: list[dict]
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = 0.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    tools: list[dict] = field(default_factory=list)
    tool_choice: Any = "auto"


def _text(content: Any, i: int) -> str:
    """A message's content as text: a string, None, or a list of ``{"type": "text"}`` parts."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        for p in content
    ):
        return "".join(p["text"] for p in content)
    raise RequestError(
        f"messages[{i}].content must be text (or a list of text parts); this "
        "server reads no images or audio.",
        f"messages[{i}].content",
    )


def parse_messages(messages: Any) -> list[dict]:
    """The request's ``messages`` as this server reads them: each checked (a ``RequestError``
    names the bad one), content parts joined into text, "developer" -> "system"."""
    if not isinstance(messages, list) or not messages:
        raise RequestError(
            'messages must be a non-empty list like [{"role": "user", "content": "Hi"}].',
            "messages",
        )
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise RequestError(
                f"messages[{i}] must be an object with a role ({', '.join(ROLES)}) "
                f"and content, got {json.dumps(m)[:80]}.",
                f"messages[{i}]",
            )
        if "content" not in m and not m.get("tool_calls"):
            raise RequestError(f"messages[{i}] has no content.", f"messages[{i}].content")
        msg = dict(m, role="system" if m["role"] == "developer" else m["role"])
        msg["content"] = _text(m.get("content"), i)
        for call in m.get("tool_calls") or []:
            fn = call.get("function") if isinstance(call, dict) else None
            args = fn.get("arguments") if isinstance(fn, dict) else None
            if not isinstance(args, str) or not isinstance(fn.get("name"), str):
                raise RequestError(
                    f"messages[{i}].tool_calls: each call needs function.name and "
                    "function.arguments (a JSON string).",
                    f"messages[{i}]",
                )
        out.append(msg)
    return out


def check_tools(tools: Any) -> list[dict]:
    """OpenAI tool specs ``{"type": "function", "function": {name, description, parameters}}``."""
    from jsonschema import Draft202012Validator, SchemaError

    if not isinstance(tools, list):
        raise RequestError("tools must be a list of tool specs.", "tools")
    for i, t in enumerate(tools):
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(t, dict) or t.get("type") != "function" or not isinstance(fn, dict):
            raise RequestError(
                f'tools[{i}] must look like {{"type": "function", "function": '
                '{"name": ..., "parameters": {...}}}.',
                f"tools[{i}]",
            )
        if not isinstance(fn.get("name"), str) or not TOOL_NAME.match(fn["name"]):
            raise RequestError(
                f"tools[{i}].function.name must be 1-64 letters, digits, _ or -, "
                f"got {fn.get('name')!r}.",
                f"tools[{i}].function.name",
            )
        params = fn.get("parameters", {"type": "object", "properties": {}})
        try:
            if not isinstance(params, dict):
                raise SchemaError("it is not a JSON object")
            Draft202012Validator.check_schema(params)
        except SchemaError as exc:
            raise RequestError(
                f"tools[{i}].function.parameters is not a valid JSON schema: "
                f"{str(exc).splitlines()[0]}",
                f"tools[{i}].function.parameters",
            ) from None
    names = [t["function"]["name"] for t in tools]
    if len(set(names)) < len(names):
        raise RequestError(f"tool names must be unique, got {names}.", "tools")
    return tools


def check_tool_choice(choice: Any, tools: list[dict]) -> Any:
    """ "auto" | "none" | "required" | ``{"type": "function", "function": {"name": ...}}``."""
    if choice in ("auto", "none", "required"):
        return choice
    names = [t["function"]["name"] for t in tools]
    name = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    if isinstance(choice, dict) and choice.get("type") == "function" and name in names:
        return choice
    raise RequestError(
        f'tool_choice must be "auto", "none", "required" or {{"type": "function", '
        f'"function": {{"name": NAME}}}} with NAME one of {names}; got '
        f"{json.dumps(choice)[:80]}.",
        "tool_choice",
    )


def parse_request(body: Any, served: str, aliases: set[str] = frozenset()) -> ChatRequest:
    """The request checked field by field; a ``RequestError`` names the field and the fix."""
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or model.lower() not in {served.lower(), *aliases}:
        raise RequestError(
            f"The model {model!r} does not exist here; this server has {served!r} "
            "(GET /v1/models).",
            "model",
            "model_not_found",
        )
    req = ChatRequest(model=model, messages=parse_messages(body.get("messages")))
    tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if tokens is not None:
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
            raise RequestError(f"max_tokens must be an integer >= 1, got {tokens!r}.", "max_tokens")
        req.max_tokens = tokens
    temp = 0.0 if body.get("temperature") is None else body["temperature"]
    if isinstance(temp, bool) or not isinstance(temp, int | float) or not 0 <= temp <= 2:
        raise RequestError(
            f"temperature must be a number from 0 to 2, got {temp!r}.", "temperature"
        )
    req.temperature = float(temp)
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise RequestError(f"seed must be an integer, got {seed!r}.", "seed")
    req.seed, stop = seed, body.get("stop")
    req.stop = [stop] if isinstance(stop, str) else list(stop or [])
    if not all(isinstance(s, str) and s for s in req.stop) or len(req.stop) > 4:
        raise RequestError("stop must be a string or a list of up to 4 non-empty strings.", "stop")
    for key, ok in (("n", 1), ("top_p", 1), ("logprobs", False)):
        if body.get(key) not in (None, ok):
            raise RequestError(
                f"{key}={body[key]!r} is not supported by this server (only {ok}).", key
            )
    req.stream = bool(body.get("stream", False))
    if body.get("tools"):
        req.tools = check_tools(body["tools"])
        req.tool_choice = check_tool_choice(body.get("tool_choice", "auto"), req.tools)
        if req.stop:
            raise RequestError(
                "stop cannot be combined with tools here: the decoder's "
                "constraint decides where a tool call ends.",
                "stop",
            )
    elif body.get("tool_choice") not in (None, "none", "auto"):
        raise RequestError("tool_choice needs tools: pass tools=[...] too.", "tool_choice")
    return req


# --- answers ------------------------------------------------------------------------------------


def usage_body(usage: Any) -> dict:
    """``llmlab.chat.local.Usage`` as OpenAI's ``usage`` object."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def tool_calls_body(calls: list[Any]) -> list[dict]:
    """``ToolCall``s as ``message.tool_calls``: arguments as a JSON string, a fresh unique id."""
    return [
        {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
        }
        for c in calls
    ]


def completion_body(head: dict, message: dict, finish_reason: str, usage: Any, extra: dict) -> dict:
    """A whole answer; ``head`` = id, created, model; ``extra`` goes under "llmlab"."""
    return dict(
        head,
        object="chat.completion",
        usage=usage_body(usage),
        llmlab=extra,
        choices=[
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
    )


def chunk_body(
    head: dict, delta: dict, finish_reason: str | None = None, extra: dict | None = None
) -> dict:
    """One streamed piece: ``delta`` holds what is new (role, content or tool_calls)."""
    chunk = dict(
        head,
        object="chat.completion.chunk",
        choices=[{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    )
    return chunk | ({"llmlab": extra} if extra else {})


def sse(obj: dict) -> str:
    """One server-sent event: ``data: {json}`` and a blank line (the stream ends with ``DONE``)."""
    return f"data: {json.dumps(obj)}\n\n"
