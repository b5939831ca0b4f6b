"""``python -m loyaltybot.simulator``: the simulated Twitch on its own, and how to reach it."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from loyaltybot import logs
from loyaltybot.simulator.scenario import populate_demo
from loyaltybot.simulator.server import Simulator


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m loyaltybot.simulator",
        description="A local Twitch (chat, Helix, OAuth, EventSub) with simulated viewers.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--channel", action="append", help="channel login (repeatable; default alice)")
    p.add_argument("--bot", default="mybot", help="the bot's login")
    p.add_argument("--bot-role", choices=("none", "vip", "moderator"), default="moderator")
    p.add_argument("--viewers", type=int, default=200, help="simulated viewers per channel")
    p.add_argument("--rate", type=float, default=2.0, help="chat messages per second per channel")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--client-id", default="sim-client-id")
    p.add_argument("--client-secret", default="sim-client-secret")
    p.add_argument("--ping-interval", type=float, default=240.0, help="seconds between PINGs")
    p.add_argument("--offline", action="store_true", help="start with the streams offline")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    return p


async def serve(args: argparse.Namespace) -> None:
    sim = Simulator(args.client_id, args.client_secret, ping_interval=args.ping_interval)
    await sim.start(args.host, args.port)
    try:
        world = await populate_demo(
            sim,
            args.channel or ["alice"],
            bot_login=args.bot,
            bot_role=args.bot_role,
            viewers=args.viewers,
            rate=args.rate,
            seed=args.seed,
            live=not args.offline,
        )
        lines = [
            f"Simulated Twitch on {sim.base_url}",
            f'irc_url  = "{sim.irc_url}"',
            f'api_url  = "{sim.api_url}"',
            f'auth_url = "{sim.auth_url}"',
            f'client_id = "{sim.client_id}"',
            f'client_secret = "{sim.client_secret}"',
            f'bot_login = "{world.bot_login}"',
            f'bot_token = "oauth:{world.bot_token}"',
        ]
        lines += [
            f'{name}: broadcaster_token = "{token}"'
            for name, token in world.broadcaster_tokens.items()
        ]
        lines.append("Ctrl-C stops it.")
        print("\n".join(lines), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await sim.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.viewers < 2:
        print("--viewers must be at least 2", file=sys.stderr)
        return 2
    logs.configure(args.log_level, "console", hooks=False)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
