"""``fuse-simulator``: run the simulator next to a local Airflow and print the connection to use.

    fuse-simulator --port 8765 --speed 600 --outcome +16175551234=busy:2 --outcome +16175550000=never

The first line printed is ``export AIRFLOW_CONN_FUSE_DEFAULT='...'`` (ready for ``eval``), the second
the base URL. It serves until SIGINT or SIGTERM and then exits 0. Its calendar is the real clock and
``--speed`` applies to each call from its queueing, so it can be left running for any length of time.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from airflow_provider_fuse import DEFAULT_CONN_ID, protocol
from airflow_provider_fuse.testing.app import BULK_ANSWERS
from airflow_provider_fuse.testing.calls import Outcome
from airflow_provider_fuse.testing.simulator import DEFAULT_LOGIN, DEFAULT_PASSWORD, FuseSimulator


def _outcome(text: str) -> Outcome:
    try:
        return Outcome.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _outcome_rule(text: str) -> tuple[str, Outcome]:
    number, sep, spec = text.partition("=")
    if not sep or not any(ch.isdigit() for ch in number):
        raise argparse.ArgumentTypeError(f"expected NUMBER=OUTCOME, got {text!r}")
    return number.strip(), _outcome(spec)


def _speed(text: str) -> float:
    speed = float(text)
    if speed <= 0:
        raise argparse.ArgumentTypeError("the speed must be positive")
    return speed


def _seconds(text: str) -> float:
    seconds = float(text)
    if seconds < 0:
        raise argparse.ArgumentTypeError("the number of seconds cannot be negative")
    return seconds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fuse-simulator", description="A local Fuse API for Airflow DAG development."
    )
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 = any free one)")
    parser.add_argument(
        "--speed",
        type=_speed,
        default=600.0,
        help="simulated seconds per real second, for each call from its queueing (the calendar stays real)",
    )
    parser.add_argument("--login", default=DEFAULT_LOGIN)
    parser.add_argument("--password", default=DEFAULT_PASSWORD, help="the developer key to accept")
    parser.add_argument(
        "--outcome",
        action="append",
        type=_outcome_rule,
        default=[],
        metavar="NUMBER=OUTCOME",
        help="answer | busy[:N] | no_answer[:N] | never | reject, per destination (repeatable)",
    )
    parser.add_argument("--default-outcome", type=_outcome, default=Outcome(), metavar="OUTCOME")
    parser.add_argument("--variables-field", default=protocol.DEFAULT_VARIABLES_FIELD)
    parser.add_argument(
        "--variables-format",
        default=protocol.DEFAULT_VARIABLES_FORMAT,
        choices=protocol.VARIABLES_FORMATS,
        help="how single queue requests carry variables (the connection extra variables_format)",
    )
    parser.add_argument(
        "--bulk-answer",
        default=BULK_ANSWERS[0],
        choices=BULK_ANSWERS,
        help='ids: {"call_ids": [...]}; success_only: {"success": true}; empty: 202 without a body',
    )
    parser.add_argument("--conn-id", default=DEFAULT_CONN_ID, help="Airflow connection id to export")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault-injection RNG")
    parser.add_argument(
        "--started-ago",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="behave as if started SECONDS real seconds ago (tests: a simulator left running for long)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    simulator = FuseSimulator(
        login=args.login,
        password=args.password,
        speed=args.speed,
        port=args.port,
        default_outcome=args.default_outcome,
        seed=args.seed,
        started_ago=args.started_ago,
        variables_field=args.variables_field,
        variables_format=args.variables_format,
        bulk_answer=args.bulk_answer,
    )
    for number, outcome in args.outcome:
        simulator.script(number, outcome)
    try:
        simulator.start()
    except OSError as exc:
        print(f"fuse-simulator: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 1
    try:
        [(name, uri)] = simulator.connection_env(args.conn_id).items()
        print(f"export {name}='{uri}'")
        print(f"# Fuse simulator at {simulator.url} ({args.speed:g}x speed); Ctrl-C to stop", flush=True)
        stop.wait()
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
