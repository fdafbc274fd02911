"""``llmlab serve``: an OpenAI-compatible chat endpoint over the local model (FastAPI + uvicorn).

What an API provider does behind ``client.chat.completions.create(..., tools=[...])``, small
enough to read: check the request, render the chat template (tools written into the prompt by
``llmlab.tool_use.text_format``), decode (with a constraint that keeps a tool call valid:
``llmlab.tool_use.calling.complete_with_tools``), parse the output into ``tool_calls``, answer in
OpenAI's JSON shapes. Routes: ``GET /v1/models`` and ``POST /v1/chat/completions`` (messages,
max_tokens / max_completion_tokens, temperature, seed, stop, stream, tools, tool_choice).

The routes are plain functions at module level (``router``); what they share lives on the app:
``app.state.chat`` (the model), ``app.state.worker`` (its one thread), ``app.state.aliases`` (the
model names accepted) and ``app.state.streams`` (open streams, ended on shutdown).
``create_app(chat)`` only builds that state and attaches the routes.

The request checks and JSON shapes live in ``llmlab.serve.protocol``. Every answer carries
the prompt the server built in an extra field ``"llmlab": {"prompt": ...}`` (with the official
client: ``resp.model_extra["llmlab"]["prompt"]``; streamed: on the first chunk); it is also
logged at debug level on the ``llmlab.serve.app`` logger (``llmlab serve --show-prompts``).

One model, many requests: all model work runs on ONE worker thread (``llmlab.serve.worker``),
off the event loop (so ``/v1/models`` answers while a request runs); plain greedy requests with
the same settings that wait together are answered as one batch. Bad input -> HTTP 400 in
OpenAI's error shape; an unexpected failure -> a clean 500 message (the traceback goes to the
log). A client that closes a stream stops its generation.

Leaves out: authentication (the key is ignored; bind to 127.0.0.1), n > 1, logprobs,
response_format, usage in streams, streaming a tool call piece by piece (it is sent whole),
stopping a non-streamed request whose client gave up (it runs to the end).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.datastructures import State
from starlette.exceptions import HTTPException

from llmlab.serve.protocol import (
    DONE,
    ChatRequest,
    RequestError,
    chunk_body,
    completion_body,
    error_body,
    parse_request,
    sse,
    tool_calls_body,
)
from llmlab.serve.worker import ModelWorker

logger = logging.getLogger("llmlab.serve.app")
router = APIRouter()


# --- small pieces -----------------------------------------------------------------------------


def fail(
    status: int,
    message: str,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> JSONResponse:
    """An error answer in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""
    return JSONResponse(error_body(message, kind, param, code), status_code=status)


def plain_messages(messages: list[dict]) -> list[dict]:
    """Messages the chat template takes: tool turns rendered as text by ``llmlab.tool_use.text_format``."""
    if any(m["role"] == "tool" or m.get("tool_calls") for m in messages):
        from llmlab.tool_use.text_format import render_messages

        return render_messages(messages)
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def runs_on_the_client(**kwargs: Any) -> Any:
    """What a server-side tool "does": nothing. The server writes the call; the client runs it."""
    raise RuntimeError("a server only writes the call; the client runs the tool")


def tool_objects(specs: list[dict]) -> list[Any]:
    """OpenAI tool specs -> ``llmlab.tool_use.tools.Tool`` objects (that never run here)."""
    from llmlab.tool_use.tools import Tool

    fns = [t["function"] for t in specs]
    empty = {"type": "object", "properties": {}}
    return [
        Tool(
            name=f["name"],
            description=f.get("description", ""),
            parameters=f.get("parameters", empty),
            fn=runs_on_the_client,
        )
        for f in fns
    ]


def response_head(chat: Any) -> dict:
    """The fields every answer and chunk starts with: a fresh id, the time, the model."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "created": int(time.time()),
        "model": chat.model,
    }


async def on_worker(state: State, fn: Callable[[], Any], *batch_args: Any) -> Any:
    """Run ``fn()`` on the model thread and await its result (the event loop stays free)."""
    return await asyncio.wrap_future(state.worker.submit(fn, *batch_args))


# --- the routes -------------------------------------------------------------------------------


@router.get("/v1/models")
async def list_models(request: Request) -> dict:
    model = request.app.state.chat.model
    return {
        "object": "list",
        "data": [{"id": model, "object": "model", "created": 0, "owned_by": "llmlab"}],
    }


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Any:
    """Check the request, answer it; every failure becomes an OpenAI-shaped error."""
    from llmlab.decoding.context_window import ContextWindowError

    state = request.app.state
    try:
        body = await request.json()
    except ValueError:
        return fail(400, "The request body is not valid JSON.")
    try:
        req = parse_request(body, state.chat.model, state.aliases)
        return await (answer_with_tools(state, req) if req.tools else answer(state, req))
    except RequestError as exc:
        return fail(400, str(exc), param=exc.param, code=exc.code)
    except ContextWindowError as exc:
        message = str(exc).replace("max_new_tokens", "max_tokens")  # the wire format's name
        return fail(400, message, param="messages", code="context_length_exceeded")
    except ValueError as exc:  # the library's own checks (settings, a schema it cannot handle)
        return fail(400, str(exc))
    except Exception as exc:  # noqa: BLE001 -- a clean 500, the traceback in the log
        logger.exception("unexpected error")
        return fail(500, f"Internal server error ({type(exc).__name__}: {exc}).", "server_error")


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return fail(
        exc.status_code,
        f"{request.method} {request.url.path}: {exc.detail}. "
        "Routes: GET /v1/models, POST /v1/chat/completions.",
    )


async def server_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error")
    return fail(
        500, f"Internal server error ({type(exc).__name__}); see the server log.", "server_error"
    )


# --- answers ----------------------------------------------------------------------------------


async def answer(state: State, req: ChatRequest) -> Any:
    """A chat without tools: one completion (greedy ones may share a batch), or a stream."""
    from llmlab.decoding.chat_template import chat_text

    chat, head = state.chat, response_head(state.chat)
    plain = plain_messages(req.messages)
    prompt = chat_text(chat.lm, plain) if hasattr(chat, "lm") else ""
    logger.debug("%s prompt:\n%s", head["id"], prompt)
    if req.stream:
        return await stream(state, req, plain, head, {"prompt": prompt})
    batch = {"max_tokens": req.max_tokens, "stop": tuple(req.stop)}  # greedy only: same text
    res = await on_worker(
        state,
        lambda: chat.complete(plain, req.max_tokens, req.temperature, req.stop, req.seed),
        plain,
        batch if req.temperature == 0 else None,
    )
    message = {"role": "assistant", "content": res.text}
    return completion_body(head, message, res.finish_reason, res.usage, {"prompt": prompt})


async def answer_with_tools(state: State, req: ChatRequest) -> Any:
    """A chat with tools: one constrained decode, parsed into ``tool_calls`` (sent whole)."""
    from llmlab.decoding.constraints import ConstraintError
    from llmlab.tool_use.calling import complete_with_tools

    chat, head, tools = state.chat, response_head(state.chat), tool_objects(req.tools)
    settings = dict(max_tokens=req.max_tokens, temperature=req.temperature, seed=req.seed)
    try:
        res = await on_worker(
            state,
            lambda: complete_with_tools(
                chat, req.messages, tools, tool_choice=req.tool_choice, constrained=True, **settings
            ),
        )
    except ConstraintError as exc:  # a schema the constraint engine cannot compile
        raise RequestError(str(exc), "tools") from None
    logger.debug("%s prompt:\n%s", head["id"], res.prompt)
    extra = {"prompt": res.prompt, "raw": res.raw, "error": res.error}
    calls = tool_calls_body(res.tool_calls)
    message = {"role": "assistant", "content": res.text or (None if calls else "")}
    message |= {"tool_calls": calls} if calls else {}
    if not req.stream:
        return completion_body(head, message, res.finish_reason, res.usage, extra)
    indexed = [c | {"index": i} for i, c in enumerate(calls)]
    delta = message | ({"tool_calls": indexed} if calls else {})
    events = [
        sse(chunk_body(head, delta, extra=extra)),
        sse(chunk_body(head, {}, res.finish_reason)),
        DONE,
    ]
    return StreamingResponse(iter(events), media_type="text/event-stream")


# --- streaming --------------------------------------------------------------------------------


def generate_pieces(
    chat: Any, plain: list[dict], req: ChatRequest, cancelled: threading.Event, put: Callable
) -> None:
    """On the model thread: ``put`` ("start"), ("piece", text)..., then ("end", finish_reason);
    or ("error", exc). Stops early when ``cancelled`` is set (the client went away)."""
    try:
        pieces = chat.stream(plain, req.max_tokens, req.temperature, req.stop, req.seed)
        put("start", None)
        text = ""
        for piece in pieces:
            if cancelled.is_set():
                break
            text += piece
            put("piece", piece)
        if hasattr(pieces, "close"):
            pieces.close()  # ends the generation thread now if we stopped early
        # streamed pieces carry no token count: re-count the text (a close estimate)
        n = len(chat.lm.tokenizer(text)["input_ids"]) if hasattr(chat, "lm") else 0
        put("end", "length" if n >= req.max_tokens else "stop")
    except Exception as exc:  # noqa: BLE001 -- reported to the client
        put("error", exc)


async def sse_events(
    state: State, events: asyncio.Queue, head: dict, extra: dict, cancelled: threading.Event
) -> AsyncIterator[str]:
    """The server-sent events of one stream: a first chunk with the role, one per piece, the
    finish reason (or an error), then ``[DONE]``. Leaving (or the client leaving) cancels it."""
    yield sse(chunk_body(head, {"role": "assistant", "content": ""}, extra=extra))
    try:
        while (event := await events.get())[0] == "piece":
            yield sse(chunk_body(head, {"content": event[1]}))
        if event[0] == "error":
            logger.error("stream failed: %r", event[1])
            yield sse(error_body(f"Generation failed: {event[1]}", "server_error"))
        else:
            yield sse(chunk_body(head, {}, event[1]))
        yield DONE
    finally:
        cancelled.set()
        state.streams.discard(cancelled)


async def stream(state: State, req: ChatRequest, plain: list[dict], head: dict, extra: dict) -> Any:
    """Stream the answer; an error before the first piece (e.g. too long a chat) is raised here,
    so it still becomes a 400."""
    loop, events = asyncio.get_running_loop(), asyncio.Queue()
    cancelled = threading.Event()  # set when the client goes away (or the server stops)
    state.streams.add(cancelled)

    def put(kind: str, value: Any) -> None:  # from the model thread to the event loop
        loop.call_soon_threadsafe(events.put_nowait, (kind, value))

    state.worker.submit(lambda: generate_pieces(state.chat, plain, req, cancelled, put))
    kind, value = await events.get()
    if kind == "error":
        state.streams.discard(cancelled)
        raise value
    chunks = sse_events(state, events, head, extra, cancelled)
    return StreamingResponse(chunks, media_type="text/event-stream")


# --- the app ----------------------------------------------------------------------------------


def create_app(chat: Any = None) -> FastAPI:
    """The FastAPI app over ``chat`` (default: ``LocalChat()``, the bundled model)."""
    from llmlab.chat.local import LocalChat
    from llmlab.runtime.models import DEFAULT_LM, LM_ALIASES

    chat = LocalChat() if chat is None else chat
    app = FastAPI(title="llmlab serve", docs_url=None, redoc_url=None)
    app.state.chat, app.state.worker, app.state.streams = chat, ModelWorker(chat), set()
    app.state.aliases = LM_ALIASES if chat.model == DEFAULT_LM else set()  # what load_lm takes
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, server_error)
    app.include_router(router)
    return app


# --- running it -------------------------------------------------------------------------------


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A socket bound to ``host:port`` (0 = any free port), or an ``OSError`` saying what to do."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another "
            "port (0 = any free one) or stop what is using it."
        ) from None
    return sock


def base_url(sock: socket.socket) -> str:
    """``http://HOST:PORT/v1`` for a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"


def make_server(app: Any, log_level: str = "warning") -> Any:
    """A uvicorn server for ``app`` (``.run(sockets=[bind(...)])`` serves until Ctrl-C)."""
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, lifespan="off", timeout_graceful_shutdown=5)
    return uvicorn.Server(config)


@dataclass
class RunningServer:
    """A server on a background thread: ``.base_url``, ``.stop()``, usable as ``with``."""

    base_url: str
    server: Any
    thread: threading.Thread
    app: Any

    def stop(self) -> None:
        for cancelled in list(self.app.state.streams):  # open streams end now, cleanly
            cancelled.set()
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.app.state.worker.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(chat: Any = None, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve ``chat`` (default: the bundled model) from a thread; returns once it accepts requests.

    ``with start_in_thread() as srv: OpenAI(base_url=srv.base_url, api_key="x")...``
    """
    sock = bind(host, port)
    app = create_app(chat)
    server = make_server(app)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="llmlab-server"
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            app.state.worker.close()
            raise RuntimeError("the server did not start (see the log above)")
        time.sleep(0.02)
    return RunningServer(base_url=base_url(sock), server=server, thread=thread, app=app)
