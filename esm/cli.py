"""The `esm` command line: parses arguments and hands each subcommand to its module.

Nothing here knows how a subcommand works; imports are deferred so `esm worker` does not load
the poller's dependencies and `esm validate` starts fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="esm", description="Self-hosted event source mapping engine.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon: poll the configured sources and invoke functions")
    run.add_argument("-c", "--config", required=True, help="YAML or JSON config file")
    run.add_argument("--processes", type=int, default=1, help="poller processes sharing the partitions")

    validate = sub.add_parser("validate", help="check a config file and print every problem")
    validate.add_argument("-c", "--config", required=True)

    worker = sub.add_parser(
        "worker",
        help="serve a function over gRPC: a Python handler, or any Lambda runtime via the Runtime API",
    )
    worker.add_argument(
        "handler",
        nargs="?",
        help="a Python handler: module.function (Lambda's form) or package.module:function",
    )
    worker.add_argument("--listen", required=True, help="HOST:PORT to serve gRPC on")
    worker.add_argument(
        "--bootstrap", help="a Lambda custom runtime's bootstrap executable (instead of HANDLER)"
    )
    worker.add_argument("--handler", dest="handler_name", help="with --bootstrap: the runtime's _HANDLER")
    worker.add_argument("--function-name", help="the function's name (default: HANDLER)")
    worker.add_argument("--concurrency", type=int, help="execution environments (default 1)")
    worker.add_argument(
        "-c", "--config", help="read the function's settings from this config file (flags win)"
    )
    worker.add_argument("--timeout", type=int, help="seconds, for requests that carry none (default: 3)")
    worker.add_argument("--memory-size", type=int, help="MB enforced per environment (default: no limit)")
    worker.add_argument(
        "--provisioned-concurrency", type=int, help="environments initialised before serving (default: all)"
    )
    worker.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable (repeatable)",
    )
    worker.add_argument("--ephemeral-storage", type=int, help="MB of TMPDIR per environment (default 512)")
    worker.add_argument("--metrics-port", type=int, help="serve the worker's /metrics on this port")
    worker.add_argument("--tls-cert", help="PEM certificate chain: serve gRPC over TLS (with --tls-key)")
    worker.add_argument("--tls-key", help="PEM private key of --tls-cert")
    worker.add_argument(
        "--tls-client-ca",
        help="PEM CA certificate(s): require callers (the daemon) to present a certificate signed by it",
    )
    worker.add_argument(
        "--memory-enforcement",
        choices=("auto", "cgroup", "rss"),
        default="auto",
        help="how --memory-size is enforced: a cgroup, a resident-memory watch, or auto: the first that works"
        " (default: auto)",
    )

    replay = sub.add_parser(
        "replay",
        help="re-drive failed records kept in an on-failure destination (read only: it is never modified)",
    )
    replay.add_argument("--from", dest="source", required=True, help="the destination URI to read")
    replay.add_argument("--to", dest="function", required=True, help="the function (a name in the config)")
    replay.add_argument("-c", "--config", required=True)
    replay.add_argument("--dry-run", action="store_true", help="list what would be replayed; invoke nothing")

    status = sub.add_parser("status", help="per mapping and partition: owner, position, lag, retries, errors")
    status.add_argument("-c", "--config", required=True)
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")

    demo = sub.add_parser("demo", help="run the whole pipeline on the bundled broker, no services needed")
    demo.add_argument("--seconds", type=float, default=20.0, help="how long to produce records")
    demo.add_argument("--rate", type=int, default=2000, help="records per second to produce")
    demo.add_argument("--partitions", type=int, default=4)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "validate":
        from esm.config.loader import validate_command

        return validate_command(args.config)
    if args.command == "worker":
        from esm.worker.main import run_worker
        from esm.worker.settings import WorkerFlags

        return run_worker(
            WorkerFlags(
                listen=args.listen,
                handler=args.handler,
                bootstrap=args.bootstrap,
                handler_name=args.handler_name,
                function_name=args.function_name,
                concurrency=args.concurrency,
                config=args.config,
                timeout=args.timeout,
                memory_size=args.memory_size,
                provisioned_concurrency=args.provisioned_concurrency,
                env=tuple(args.env),
                ephemeral_storage=args.ephemeral_storage,
                metrics_port=args.metrics_port,
                memory_enforcement=args.memory_enforcement,
                tls_cert=args.tls_cert,
                tls_key=args.tls_key,
                tls_client_ca=args.tls_client_ca,
            )
        )
    if args.command == "run":
        from esm.daemon import run_daemon

        return run_daemon(config_path=args.config, processes=args.processes)
    if args.command == "replay":
        from esm.replay import replay_command

        return replay_command(
            config_path=args.config, source=args.source, function=args.function, dry_run=args.dry_run
        )
    if args.command == "status":
        from esm.status.command import status_command

        return status_command(config_path=args.config, as_json=args.json)
    if args.command == "demo":
        from esm.demo import run_demo

        return run_demo(seconds=args.seconds, rate=args.rate, partitions=args.partitions)
    print(f"unknown command {args.command}", file=sys.stderr)  # unreachable: argparse enforces choices
    return 2
