"""Command line: python -m producer.source --host H --port P --rate-limit R."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from producer.source.server import SourceSettings, make_server

log = logging.getLogger("producer.source")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m producer.source", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="TCP port (the source role passes it)")
    parser.add_argument(
        "--rate-limit", type=float, default=50.0, help="requests per second before HTTP 429 (0: no limit)"
    )
    parser.add_argument("--max-delay", type=float, default=30.0, help="cap of fault=slow's delay in seconds")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be within 0..65535, got {args.port}")
    if args.rate_limit < 0:
        parser.error(f"--rate-limit must be >= 0, got {args.rate_limit}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = SourceSettings(rate_limit=args.rate_limit or None, max_delay=args.max_delay)
    server = make_server(args.host, args.port, settings)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: shutting down", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    log.info(
        "randomuser-compatible source listening on http://%s:%s (rate limit %s req/s)",
        host,
        port,
        args.rate_limit or "none",
    )
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
