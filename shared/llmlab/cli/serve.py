"""``llmlab serve``: the bundled model behind an OpenAI-compatible endpoint (``llmlab.serve.app``).

``llmlab serve [--host 127.0.0.1] [--port 8000] [--show-prompts]`` loads the model, prints the
base URL and a 5-line ``openai`` client example, then serves until Ctrl-C. It binds 127.0.0.1
(this machine only) by default: the server has no authentication, so it warns when ``--host``
is anything else. ``--show-prompts`` logs the exact prompt the server built for every request.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys

from llmlab.cli.errors import ArgumentParser, CliError, run
from llmlab.cli.tune import adapted_chat, add_adapter_option

EXAMPLE = """\
from openai import OpenAI
client = OpenAI(base_url="{url}", api_key="not-needed")
resp = client.chat.completions.create(model="{model}", messages=[{{"role": "user", "content": "Hi!"}}])
print(resp.choices[0].message.content)
print(resp.model_extra["llmlab"]["prompt"])  # the prompt the server built"""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.1, ::1 and localhost: only this machine can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be from 0 to 65535 (0 = any free port), got {args.port}.")
    from llmlab.serve.app import base_url, bind, create_app, make_server

    sock = bind(args.host, args.port)  # fails now, in one line, if the port is taken
    if not is_loopback(args.host):
        print(
            f"llmlab serve: warning: --host {args.host} lets other machines on the network use "
            "this server; it has no authentication.",
            file=sys.stderr,
        )
    if args.show_prompts:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logging.getLogger("llmlab.serve.app").addHandler(handler)
        logging.getLogger("llmlab.serve.app").setLevel(logging.DEBUG)
    print("llmlab serve: loading the model ...", file=sys.stderr, flush=True)
    app = create_app(adapted_chat(args.adapter))
    url = base_url(sock)
    print(f"Serving {app.state.chat.model} at {url}  (Ctrl-C stops it)\n")
    print(EXAMPLE.format(url=url, model=app.state.chat.model))
    print(
        f'\nor from llmlab: load_chat(base_url="{url}", model="{app.state.chat.model}")', flush=True
    )
    make_server(app).run(sockets=[sock])
    return 0


def cli(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="llmlab serve",
        description=(
            "Serve the bundled model as an OpenAI-compatible API (/v1/chat/completions, /v1/models) "
            "with tools, tool_choice and streaming."
        ),
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any free)")
    parser.add_argument(
        "--show-prompts",
        action="store_true",
        help="print the prompt the server builds for every request",
    )
    add_adapter_option(parser)
    return run("serve", lambda: serve(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(cli())
