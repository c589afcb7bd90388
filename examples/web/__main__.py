"""``python -m examples.web``: serve the chat backend with uvicorn.

Options mirror the environment variables :meth:`Settings.from_environment` reads;
run ``python -m examples.web --help``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn

from .app import Settings, StartupError, create_app

STARTUP_FAILURE = 3
"""The exit status when the backend cannot start (uvicorn's own)."""
USAGE_ERROR = 2
"""The exit status for unusable options or environment variables (argparse's)."""


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted: 0 on a clean stop, 2 for bad options, 3 when it cannot start."""
    try:
        defaults = Settings.from_environment()
    except StartupError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return USAGE_ERROR
    parser = argparse.ArgumentParser(
        prog="python -m examples.web",
        description="The parlant-runtime embedding example: a chat backend with a chat page.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (0: any)")
    parser.add_argument(
        "--database-url",
        default=defaults.database_url,
        help="sqlite:///file.db or postgresql://user@host/db "
        "(default: $PARLANT_DATABASE_URL, else sqlite:///parlant.db)",
    )
    parser.add_argument(
        "--bundle", type=Path, default=defaults.bundle, help="the agent bundle to serve"
    )
    parser.add_argument("--workspace", default=defaults.workspace, help="the workspace id")
    parser.add_argument(
        "--keepalive",
        type=float,
        default=defaults.keepalive,
        help="seconds between keep-alive comments on idle event streams",
    )
    parser.add_argument(
        "--model",
        default=defaults.model,
        help="a language model: openai:MODEL, anthropic:MODEL or agent "
        "(default: $PARLANT_MODEL, else none: offline keyword matching)",
    )
    parser.add_argument("--log-level", default="info", help="uvicorn's log level")
    options = parser.parse_args(argv)
    try:
        settings = Settings(
            database_url=options.database_url,
            bundle=options.bundle,
            workspace=options.workspace,
            keepalive=options.keepalive,
            model=options.model,
        )
    except StartupError as exc:
        parser.error(str(exc))  # exits with status 2
    config = uvicorn.Config(
        create_app(settings),
        host=options.host,
        port=options.port,
        log_level=options.log_level,
        timeout_graceful_shutdown=5,  # a backstop: open event streams end at once anyway
    )
    server = uvicorn.Server(config)
    server.run()
    # a failed start-up ("cannot start: ..." in the log) exits with uvicorn's status 3
    return 0 if server.started else STARTUP_FAILURE


if __name__ == "__main__":
    sys.exit(main())
