"""The `esm` command line: parses arguments and hands each subcommand to its module.

Nothing here knows how a subcommand works; imports are deferred so `esm worker` does not load
the poller's dependencies and `esm validate` starts fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

CONFIG_HELP = "the YAML or JSON config file (JSON when the name ends in .json)"
DEFAULT_BROKER_LISTEN = "127.0.0.1:9092"
DEFAULT_BOOTSTRAP = DEFAULT_BROKER_LISTEN  # where `esm broker` listens by default


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default unless it has none worth showing (None, False) or its help
    already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("esm")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="esm", description="Self-hosted event source mapping engine.", formatter_class=_HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"esm {_package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, formatter_class=_HelpFormatter)

    run = command("run", "run the daemon: poll the configured sources and invoke functions")
    run.add_argument("-c", "--config", required=True, metavar="FILE", help=CONFIG_HELP)
    run.add_argument(
        "--processes", type=int, default=1, metavar="N", help="poller processes sharing the partitions"
    )

    validate = command("validate", "check a config file and print every problem")
    validate.add_argument("-c", "--config", required=True, metavar="FILE", help=CONFIG_HELP)

    worker = command(
        "worker", "serve a function over gRPC: a Python handler, or any Lambda runtime via the Runtime API"
    )
    worker.add_argument(
        "handler",
        nargs="?",
        help="a Python handler: module.function (Lambda's form) or package.module:function",
    )
    worker.add_argument("--listen", required=True, metavar="HOST:PORT", help="the address to serve gRPC on")
    worker.add_argument(
        "--bootstrap",
        metavar="PATH",
        help="a Lambda custom runtime's bootstrap executable (instead of HANDLER)",
    )
    worker.add_argument(
        "--handler", dest="handler_name", metavar="NAME", help="with --bootstrap: the runtime's _HANDLER"
    )
    worker.add_argument("--function-name", metavar="NAME", help="the function's name (default: HANDLER)")
    worker.add_argument("--concurrency", type=int, metavar="N", help="execution environments (default: 1)")
    worker.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="read the function's settings from this config file (flags win)",
    )
    worker.add_argument(
        "--timeout", type=int, metavar="S", help="seconds, for requests that carry none (default: 3)"
    )
    worker.add_argument(
        "--memory-size", type=int, metavar="MB", help="MB enforced per environment (default: no limit)"
    )
    worker.add_argument(
        "--provisioned-concurrency",
        type=int,
        metavar="P",
        help="environments initialised before serving (default: all)",
    )
    worker.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable (repeatable; default: none)",
    )
    worker.add_argument(
        "--ephemeral-storage", type=int, metavar="MB", help="MB of TMPDIR per environment (default: 512)"
    )
    worker.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve the worker's /metrics on this port (default: none)",
    )
    worker.add_argument(
        "--tls-cert", metavar="FILE", help="PEM certificate chain: serve gRPC over TLS (with --tls-key)"
    )
    worker.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    worker.add_argument(
        "--tls-client-ca",
        metavar="FILE",
        help="PEM CA certificate(s): require callers (the daemon) to present a certificate signed by it",
    )
    worker.add_argument(
        "--memory-enforcement",
        choices=("auto", "cgroup", "rss"),
        default="auto",
        help="how --memory-size is enforced: a cgroup, a resident-memory watch, or auto: the first that"
        " works",
    )

    replay = command(
        "replay",
        "re-drive failed records kept in an on-failure destination (read only: it is never modified)",
    )
    replay.add_argument(
        "--from", dest="source", required=True, metavar="URI", help="the destination URI to read"
    )
    replay.add_argument(
        "--to", dest="function", required=True, metavar="FUNCTION", help="the function (a name in the config)"
    )
    replay.add_argument("-c", "--config", required=True, metavar="FILE", help=CONFIG_HELP)
    replay.add_argument("--dry-run", action="store_true", help="list what would be replayed; invoke nothing")

    status = command("status", "per mapping and partition: owner, position, lag, retries, errors")
    status.add_argument("-c", "--config", required=True, metavar="FILE", help=CONFIG_HELP)
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")

    demo = command("demo", "run the whole pipeline on the bundled broker, no services needed")
    demo.add_argument("--seconds", type=float, default=20.0, metavar="S", help="how long to produce records")
    demo.add_argument("--rate", type=int, default=2000, metavar="N", help="records per second to produce")
    demo.add_argument("--partitions", type=int, default=4, metavar="N", help="partitions of the demo's topic")
    demo.add_argument(
        "--keep-old",
        action="store_true",
        help="keep the folders earlier demos left in the temporary directory (removed otherwise)",
    )

    broker = command(
        "broker",
        "run the bundled Kafka-compatible broker (Tansu) in the foreground, for development: records "
        "are kept in memory; Ctrl-C stops it",
    )
    broker.add_argument(
        "--listen",
        default=DEFAULT_BROKER_LISTEN,
        metavar="HOST:PORT",
        help="the address to listen on, also told to clients",
    )

    topic = command("topic", "manage Kafka topics")
    topic_sub = topic.add_subparsers(dest="topic_command", required=True)
    create = topic_sub.add_parser(
        "create", help="create a topic", description="create a Kafka topic", formatter_class=_HelpFormatter
    )
    create.add_argument("name", help="the topic's name")
    create.add_argument("--partitions", type=int, default=1, metavar="N", help="how many partitions")
    create.add_argument(
        "--bootstrap-servers",
        default=DEFAULT_BOOTSTRAP,
        metavar="HOST:PORT",
        help="the brokers, comma-separated",
    )

    produce = command("produce", "send records to a Kafka topic: one record per line of standard input")
    produce.add_argument("topic", help="the topic's name")
    produce.add_argument(
        "--bootstrap-servers",
        default=DEFAULT_BOOTSTRAP,
        metavar="HOST:PORT",
        help="the brokers, comma-separated",
    )
    produce.add_argument("--key", metavar="KEY", help="the key of every record (default: none)")
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

        return run_demo(
            seconds=args.seconds, rate=args.rate, partitions=args.partitions, keep_old=args.keep_old
        )
    if args.command == "broker":
        from esm.kafka_tools.broker import run_broker

        return run_broker(args.listen)
    if args.command == "topic":
        from esm.kafka_tools.topic import create_topic_command

        return create_topic_command(args.name, args.partitions, args.bootstrap_servers)
    if args.command == "produce":
        from esm.kafka_tools.produce import produce_command

        return produce_command(args.topic, args.bootstrap_servers, args.key)
    print(f"unknown command {args.command}", file=sys.stderr)  # unreachable: argparse enforces choices
    return 2
