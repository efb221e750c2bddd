"""`python -m bridges.matrix --config FILE`: the hub plus its Matrix bridge, stopped by SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys


async def _run(config_path: str | None, skills=None) -> None:
    from bridges.matrix import component
    from hub.config import load_config
    from hub.core import COMPONENTS, Hub

    config = load_config(config_path)
    config = config.model_copy(update={"matrix": config.matrix.model_copy(update={"enabled": True})})  # asked for
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    hub = await Hub.start(config, skills=skills, components=(*COMPONENTS, component))  # the hub's, then Matrix
    try:
        print("matrix bridge running", flush=True)
        await stop.wait()
    finally:
        await hub.stop()


def main(argv: list[str] | None = None, skills=None) -> None:
    """`skills`: a SkillRegistry to use instead of discovering the `skills` package."""
    parser = argparse.ArgumentParser(prog="python -m bridges.matrix")
    parser.add_argument("--config", "-c", default=None)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("nio").setLevel(logging.WARNING)
    asyncio.run(_run(args.config, skills))
    from hub.serve import exit_process

    exit_process(0)  # stopped cleanly: skip the interpreter's slow teardown (SIGTERM well under 1 s)


if __name__ == "__main__":
    main()
