"""`esm replay --from DESTINATION-URI --to FUNCTION -c FILE [--dry-run]`: the composition root of a replay.

Reads every failure record kept in an on-failure destination, oldest first, and invokes the
function with each record's payload (the event exactly as the function first received it),
through the function's endpoints, with its Timeout, under its ReservedConcurrentExecutions,
one record at a time. Prints one line per record and a summary line. An entry that cannot be
read (a torn line, not JSON, not a failure record) is named, counted and passed over. With
`--dry-run` each record is read and listed as it would be replayed, and nothing is invoked.

Read only: the destination is never deleted or modified; replaying twice re-drives the same
records twice.

Exit status: 0 when no record failed (skipped ones included) and every entry could be read;
1 when some record failed or partially failed, some entry could not be read, or the config or
function cannot be used; 2 when the destination cannot be read at all or does not exist (the
message names it and says why).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from prometheus_client import CollectorRegistry

from esm.client_logs import command_logging
from esm.config import ConfigError, EsmConfig, FunctionConfig, load_config
from esm.destinations import DestinationError, parse_destination_uri, read_records
from esm.destinations.uri import RedisStreamTarget
from esm.dispatch.endpoints import EndpointPool
from esm.dispatch.invoker import FunctionIdentity, FunctionInvoker
from esm.dispatch.limiter import make_limiter
from esm.dispatch.tls import channel_credentials
from esm.metrics import Metrics
from esm.replay.replayer import DryRun, RecordReplayer, Replayer, ReplayTally, replay_records
from esm.replay.source_cluster import names_own_cluster, source_cluster_for
from esm.stores import Store, StoreError, open_store
from esm.tls_files import TlsFileError

EXIT_FAILED = 1
EXIT_DESTINATION_UNREADABLE = 2


def replay_command(config_path: str, source: str, function: str, dry_run: bool = False) -> int:
    """Re-drive the failure records in destination `source` through `function` (never changes
    `source`); `dry_run`: only list what would be replayed."""
    command_logging()
    try:
        config = load_config(config_path).config
    except ConfigError as error:
        for problem in error.problems:
            _error(problem)
        return EXIT_FAILED
    try:
        target = config.function(function)
    except KeyError:
        defined = ", ".join(repr(f.FunctionName) for f in config.Functions) or "none"
        _error(f"--to {function!r} is not a function in {config_path}; Functions defines: {defined}")
        return EXIT_FAILED
    return asyncio.run(_replay(config, target, source, dry_run))


async def _replay(config: EsmConfig, function: FunctionConfig, uri: str, dry_run: bool) -> int:
    cluster = source_cluster_for(uri, config, function.FunctionName)
    if cluster is None and names_own_cluster(uri):
        _error(
            f"cannot tell which Kafka cluster {uri!r} is on: it means a mapping's own cluster, and no "
            f"Kafka mapping writing its failures there or invoking {function.FunctionName!r} names exactly "
            "one cluster; name the brokers instead: kafka://host:port/topic"
        )
        return EXIT_DESTINATION_UNREADABLE
    try:
        destination = parse_destination_uri(uri, cluster)
    except DestinationError as exc:
        # The error names the URI itself (a Redis password masked), so `uri` is not repeated.
        _error(f"cannot read the destination: {exc}")
        return EXIT_DESTINATION_UNREADABLE
    shown = destination.display_url if isinstance(destination, RedisStreamTarget) else uri
    if dry_run:
        _print(f"dry run: what would be replayed from {shown} into function {function.FunctionName!r}")
        return await _replay_all(DryRun(), ReplayTally(dry_run=True), uri, cluster, shown)
    try:
        credentials = channel_credentials(function, f"function {function.FunctionName!r}: Tls")
    except TlsFileError as exc:
        _error(str(exc))
        return EXIT_FAILED
    try:
        store = open_store(config.Store) if function.ReservedConcurrentExecutions is not None else None
    except StoreError as exc:
        _error(
            f"function {function.FunctionName!r} has ReservedConcurrentExecutions, but its permit store "
            f"cannot be opened: {exc}"
        )
        return EXIT_FAILED
    read_batch_responses = _reads_batch_responses(config, function.FunctionName)
    async with _function_invoker(function, store, credentials, config.PermitLeaseSeconds) as invoker:
        _print(
            f"replaying {shown} into function {function.FunctionName!r} "
            "(read only: the destination is left unchanged)"
        )
        replayer = RecordReplayer(invoker.invoke, read_batch_responses=read_batch_responses)
        return await _replay_all(replayer, ReplayTally(), uri, cluster, shown)


async def _replay_all(
    replayer: Replayer, tally: ReplayTally, uri: str, cluster: tuple[str, ...] | None, shown: str
) -> int:
    try:
        await replay_records(read_records(uri, cluster), replayer, tally, _print)
    except DestinationError as exc:
        if tally.total:
            _print(tally.summary())
        _error(f"cannot read destination {shown!r}: {exc}")
        return EXIT_DESTINATION_UNREADABLE
    _print(tally.summary())
    return tally.exit_code


@asynccontextmanager
async def _function_invoker(
    function: FunctionConfig,
    store: Store | None,
    credentials: grpc.ChannelCredentials | None,
    permit_lease_seconds: float,
) -> AsyncIterator[FunctionInvoker]:
    """The function's invoker; closes its channels, limiter and `store` afterwards."""
    # shared=True: the engine's pollers may be invoking the same function meanwhile, so a
    # limit is held in the store, which they share.
    limiter = make_limiter(
        function.ReservedConcurrentExecutions,
        store,
        function.FunctionName,
        f"{socket.gethostname()}:{os.getpid()}:replay",
        shared=True,
        lease_seconds=permit_lease_seconds,
    )
    pool = EndpointPool(function.Endpoints, time.monotonic, credentials)
    identity = FunctionIdentity(function.FunctionName, float(function.Timeout), function.MemorySize)
    try:
        yield FunctionInvoker(identity, pool, limiter, Metrics(CollectorRegistry()))
    finally:
        await pool.close()
        await limiter.close()
        if store is not None:
            await store.close()


def _reads_batch_responses(config: EsmConfig, function: str) -> bool:
    """Whether the function's answers are partial batch responses: a mapping of it says so."""
    return any(
        mapping.report_batch_item_failures
        for mapping in config.EventSourceMappings
        if mapping.function_name == function
    )


def _print(line: str) -> None:
    # Flushed per line: a long replay piped into `tee` or a log shows its progress.
    print(line, flush=True)


def _error(message: str) -> None:
    print(f"esm replay: {message}", file=sys.stderr, flush=True)
