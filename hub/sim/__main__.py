"""`python -m hub.sim NAME [--host H] [--port N] [--option k=v ...]` runs one stand-in.

NAME is a module `hub.sim.NAME` exposing `create_app(**options)`; option values are parsed as
JSON when they are valid JSON (numbers, lists, objects), else kept as strings.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import logging
import signal
import sys

from hub import kvargs
from hub.sim.serve import AppServer


def parse_options(pairs: list[str]) -> dict:
    """`--option key=value` pairs by the hub's shared rules (`hub.kvargs`); `-` in a key reads as `_`."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        parsed = kvargs.split_assignment(f"{key.replace('-', '_')}{sep}{value}")
        if parsed is None:
            raise SystemExit(f"--option wants key=value, got {pair!r}")
        options[parsed[0]] = kvargs.decode(parsed[1])
    return options


async def _serve(name: str, host: str, port: int, options: dict) -> None:
    module = importlib.import_module(f"hub.sim.{name}")
    app = module.create_app(**options)
    server = AppServer(app, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    print(f"{name} stand-in listening on {server.url}", flush=True)
    await stop.wait()
    await server.stop()
    print(f"{name} stand-in stopped", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hub.sim", description=__doc__)
    parser.add_argument("name", help="stand-in module under hub.sim (sglang, anthropic, comfyui, tts, ...)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = an ephemeral port")
    parser.add_argument("--api-key", default=None, help="require this key (Bearer / x-api-key)")
    parser.add_argument("--option", action="append", default=[], metavar="K=V")
    args = parser.parse_args(argv)
    options = parse_options(args.option)
    if args.api_key:
        options["api_key"] = args.api_key
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%Y-%m-%d %H:%M:%S"
    )
    if not args.name.isidentifier() or importlib.util.find_spec(f"hub.sim.{args.name}") is None:
        raise SystemExit(f"no stand-in named {args.name!r} (hub.sim.{args.name})")
    importlib.import_module(f"hub.sim.{args.name}")
    asyncio.run(_serve(args.name, args.host, args.port, options))


if __name__ == "__main__":
    main()
