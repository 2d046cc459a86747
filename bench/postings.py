"""Transfer throughput of the back office: transfers per second, with latencies.

Run it from the repository root, once ``make test`` or ``make run`` has created the venv:

    .venv/bin/python bench/postings.py                      # every case on both stores
    .venv/bin/python bench/postings.py --duration 5 --store sqlite --case http
    make bench                                              # the same as the first line

PostgreSQL is expected at postgresql://postgres@127.0.0.1:5432/test (``--pg-url``); the
benchmark works in a schema of its own (``bench_<random>``) that it drops at the end.
SQLite stores are fresh files in a temporary directory, removed at the end.

What it measures, one line per (case, store):

* ``app``: the application alone. A ``Bank`` from ``bootstrap()``, funded accounts, then
  ``--threads`` threads calling ``bank.transfer(...)`` between random distinct accounts,
  each call with an idempotency ``Claim`` built as the HTTP layer builds it (``--no-claim``
  for claim-less calls). No HTTP, no JSON parsing, no auth.
* ``batch``: the whole server, as ``http`` but each client posts ``POST /v1/batches``
  with ``--batch-size`` (default 1,000) transfers in one atomic batch; transfers/s
  counts the items of accepted batches and the latencies are per batch.
  ``make bench-batch`` runs it on PostgreSQL with 2 clients and 2,000 accounts.
* ``http``: the whole server. A real uvicorn server (``python -m interfaces.cli serve``,
  ``--workers`` processes, JSON logs to /dev/null) started as a subprocess on 127.0.0.1,
  a teller key created on its store beforehand, then ``--clients`` concurrent
  ``httpx.AsyncClient`` clients (one asyncio loop, in this process) posting
  ``POST /v1/transfers`` between random distinct accounts, each with a unique
  ``Idempotency-Key``.

Both run a warm-up (``--warmup`` s, not counted) and then ``--duration`` s of measurement.
Reported: accepted transfers per second in the measured window, latency p50/p95/p99/max
of the requests completed in it, errors by status/code (``outside_window:...`` for those
during the warm-up), the CPU used (as a share of one core) by the benchmark/load
generator, the server and PostgreSQL during the window plus ``other``, the rest of the
machine (well above a few percent: something else was running and the figures are low),
for the app case ``retried_conflicts`` (saves refused by optimistic concurrency and
retried), and a check of the store afterwards: balances still sum to what was deposited
and the accounts hold exactly two events per accepted transfer (``check=ok``). The exit
status is 1 when a case failed or its check did not pass.

Output, one line per case, e.g.:

    http  postgres  clients=32 workers=1  transfers/s=612.3  p50=40.1ms p95=70.2ms
    p99=88.0ms max=120.3ms  errors={}  cpu[loadgen=60% server=95% postgres=30% other=2%]
    check=ok

(on one line; ``--json`` prints one JSON object per case instead).

Every loop is bounded by a deadline; the server is killed and the schema dropped in
``finally`` blocks, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(ROOT))

from eventsourcing.persistence import IntegrityError
from procstat import (  # bench/procstat.py
    cpu_seconds,
    machine_busy_seconds,
    process_tree,
)

from application.idempotency import Claim, fingerprint
from domain.cause import Cause
from domain.errors import BankError
from infrastructure.bootstrap import bootstrap

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
CURRENCY = "EUR"
FUNDING = Decimal("1000000.00")  # per account: random 1.00 transfers never run it dry
AMOUNT = "1.00"
ACCOUNTS_PER_CUSTOMER = 10
READY_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    case: str
    store: str
    concurrency: str  # "clients=32 workers=1" / "threads=8 claim=yes"
    duration_s: float
    accepted: int = 0  # in the measured window
    accepted_total: int = 0  # warm-up included: what the store must hold
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=dict)  # % of one core
    check: str = "not run"
    conflicts: int | None = None  # app case: save() conflicts retried, in the window
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.accepted / self.duration_s if self.duration_s > 0 else 0.0

    def percentiles(self) -> dict[str, float | None]:
        values = sorted(self.latencies_ms)
        if not values:
            return {"p50": None, "p95": None, "p99": None, "max": None}

        def nearest_rank(p: float) -> float:
            return values[max(0, min(len(values) - 1, int(round(p / 100 * len(values))) - 1))]

        return {
            "p50": nearest_rank(50),
            "p95": nearest_rank(95),
            "p99": nearest_rank(99),
            "max": values[-1],
        }

    def line(self) -> str:
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f}ms"

        p = self.percentiles()
        cpu = " ".join(f"{name}={value:.0f}%" for name, value in self.cpu.items())
        return (
            f"{self.case:<5} {self.store:<9} {self.concurrency}  "
            f"transfers/s={self.rate:.1f}  "
            f"p50={ms(p['p50'])} p95={ms(p['p95'])} p99={ms(p['p99'])} max={ms(p['max'])}  "
            f"errors={dict(sorted(self.errors.items()))}  "
            + ("" if self.conflicts is None else f"retried_conflicts={self.conflicts}  ")
            + f"cpu[{cpu}]  check={self.check}"
        )

    def as_json(self) -> str:
        return json.dumps(
            {
                "case": self.case,
                "store": self.store,
                **self.params,
                "duration_s": self.duration_s,
                "transfers": self.accepted,
                "transfers_per_s": round(self.rate, 1),
                "latency_ms": {
                    k: (None if v is None else round(v, 2)) for k, v in self.percentiles().items()
                },
                "errors": dict(sorted(self.errors.items())),
                "retried_conflicts": self.conflicts,
                "cpu_percent_of_one_core": {k: round(v, 1) for k, v in self.cpu.items()},
                "check": self.check,
            }
        )


# ------------------------------------------------------------------------ CPU probes

def _postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    pids.append(int(entry.name))
    return pids


class CpuMeter:
    """CPU seconds used between start() and stop() by named groups of processes.

    ``other`` is what the rest of the machine used meanwhile: anything well above a few
    percent means the figures were disturbed (a test suite running beside, say).
    """

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self.before: dict[str, dict[int, float]] = {}
        self.machine = 0.0
        self.wall = 0.0

    def _sample(self) -> dict[str, dict[int, float]]:
        return {
            name: {pid: cpu_seconds(pid) for pid in pids()}
            for name, pids in self.groups.items()
        }

    def start(self) -> None:
        self.before = self._sample()
        self.machine = machine_busy_seconds()
        self.wall = time.perf_counter()

    def stop(self) -> dict[str, float]:
        after = self._sample()
        machine = machine_busy_seconds() - self.machine
        wall = time.perf_counter() - self.wall
        usage = {}
        for name, now in after.items():
            then = self.before.get(name, {})
            # A process born in the window counts from zero.
            used = sum(max(0.0, seconds - then.get(pid, 0.0)) for pid, seconds in now.items())
            usage[name] = 100.0 * used / wall if wall > 0 else 0.0
        if wall > 0:
            usage["other"] = max(0.0, 100.0 * machine / wall - sum(usage.values()))
        return usage


def _self_cpu() -> list[int]:
    return [os.getpid()]


# ---------------------------------------------------------------------------- stores


@contextlib.contextmanager
def fresh_store(store: str, pg_url: str, workdir: Path) -> Iterator[str]:
    """A database URL for an empty store, cleaned up afterwards."""
    if store == "sqlite":
        directory = Path(tempfile.mkdtemp(prefix="sqlite-", dir=workdir))
        try:
            yield f"sqlite:///{directory / 'bench.sqlite'}"
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    base = pg_url.split("?", 1)[0]
    with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}?schema={schema}"
    finally:
        try:
            with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        except Exception as error:  # noqa: BLE001 (report, never mask the run's own error)
            print(f"warning: could not drop schema {schema}: {error}", file=sys.stderr)


@dataclass(frozen=True)
class Fixture:
    account_ids: list[UUID]
    versions: dict[UUID, int]  # after funding


def set_up_accounts(database_url: str, accounts: int) -> Fixture:
    """Customers and funded accounts, through the application (faster than HTTP)."""
    cause = Cause.cli()
    bank = bootstrap(database_url=database_url, with_views=False)  # the log itself
    try:
        ids: list[UUID] = []
        customer_id: UUID | None = None
        for index in range(accounts):
            if index % ACCOUNTS_PER_CUSTOMER == 0:
                customer = bank.register_customer(
                    {"name": f"Bench customer {index // ACCOUNTS_PER_CUSTOMER}",
                     "kind": "person", "country": "DE"},
                    cause,
                )
                customer_id = UUID(customer.body["customer_id"])
            assert customer_id is not None
            account = bank.open_account(customer_id, CURRENCY, cause)
            account_id = UUID(account.body["account_id"])
            bank.deposit(account_id, str(FUNDING), CURRENCY, "cash", cause)
            ids.append(account_id)
        versions = {a: int(bank.get_account(a)["version"]) for a in ids}
        return Fixture(ids, versions)
    finally:
        bank.close()


def check_store(database_url: str, fixture: Fixture, committed_by_clients: int) -> str:
    """Money conserved, and two account events per transfer the clients saw accepted."""
    bank = bootstrap(database_url=database_url, with_views=False)  # the log itself
    try:
        total = Decimal(0)
        events = 0
        for account_id in fixture.account_ids:
            view = bank.get_account(account_id)
            total += Decimal(view["ledger_balance"])
            events += int(view["version"]) - fixture.versions[account_id]
    finally:
        bank.close()
    problems = []
    expected = FUNDING * len(fixture.account_ids)
    if total != expected:
        problems.append(f"balances sum to {total}, not {expected}")
    if events != 2 * committed_by_clients:
        problems.append(
            f"{events} account events for {committed_by_clients} accepted transfers "
            f"(expected {2 * committed_by_clients})"
        )
    return "ok" if not problems else "FAILED: " + "; ".join(problems)


def pick_pair(rng: random.Random, accounts: list[UUID]) -> tuple[UUID, UUID]:
    source, destination = rng.sample(accounts, 2)
    return source, destination


# -------------------------------------------------------------------------- app case


def run_app(store: str, database_url: str, args: argparse.Namespace) -> Result:
    fixture = set_up_accounts(database_url, args.accounts)
    result = Result(
        "app", store,
        f"threads={args.threads} claim={'yes' if args.claim else 'no'}",
        args.duration,
        params={"threads": args.threads, "claim": args.claim, "accounts": args.accounts},
    )
    bank = bootstrap(database_url=database_url)
    run_id = uuid.uuid4().hex[:8]
    lock = threading.Lock()
    conflicts = Counter()
    save = bank.save

    def counting_save(*aggregates: Any, **kwargs: Any) -> Any:
        # Bank._execute retries a write whose save() raised IntegrityError (an
        # optimistic concurrency conflict): count them, without touching the app.
        try:
            return save(*aggregates, **kwargs)
        except IntegrityError:
            with lock:
                conflicts["total"] += 1
                if window_start <= time.perf_counter() <= window_end:
                    conflicts["window"] += 1
            raise

    bank.save = counting_save  # type: ignore[method-assign]  (this instance only)
    meter = CpuMeter({"bench": _self_cpu, "postgres": _postgres_pids} if store == "postgres"
                     else {"bench": _self_cpu})
    start = time.perf_counter()
    window_start = start + args.warmup
    window_end = window_start + args.duration
    meter_started = threading.Event()
    stop = threading.Event()  # set when the run is interrupted

    def worker(number: int) -> None:
        rng = random.Random(args.seed * 1000 + number)
        cause = Cause.cli()
        latencies: list[float] = []
        errors: Counter = Counter()
        accepted = accepted_total = 0
        sequence = 0
        while True:
            began = time.perf_counter()
            if began >= window_end or stop.is_set():
                break
            source, destination = pick_pair(rng, fixture.account_ids)
            sequence += 1
            claim = None
            if args.claim:
                body = {"from_account_id": str(source), "to_account_id": str(destination),
                        "amount": AMOUNT, "currency": CURRENCY}
                claim = Claim(
                    scope="bench",
                    key=f"bench-{run_id}-{number}-{sequence}",
                    fingerprint=fingerprint("POST", "/v1/transfers", body),
                )
            outcome = "ok"
            try:
                bank.transfer(source, destination, AMOUNT, CURRENCY, cause, claim=claim)
            except BankError as error:
                outcome = error.code
            except Exception as error:  # noqa: BLE001 (counted, the run goes on)
                outcome = type(error).__name__
            ended = time.perf_counter()
            if outcome == "ok":
                accepted_total += 1
            if window_start <= began and ended <= window_end:
                if outcome == "ok":
                    accepted += 1
                    latencies.append((ended - began) * 1000)
                else:
                    errors[outcome] += 1
            elif outcome != "ok":
                errors["outside_window:" + outcome] += 1
        with lock:
            result.accepted += accepted
            result.accepted_total += accepted_total
            result.latencies_ms.extend(latencies)
            result.errors.update(errors)

    def meter_thread() -> None:
        time.sleep(max(0.0, window_start - time.perf_counter()))
        meter.start()
        meter_started.set()
        time.sleep(max(0.0, window_end - time.perf_counter()))

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(args.threads)]
    timer = threading.Thread(target=meter_thread, daemon=True)
    try:
        timer.start()
        for thread in threads:
            thread.start()
        hard_stop = window_end + REQUEST_TIMEOUT_S * 2
        for thread in [timer, *threads]:
            thread.join(timeout=max(0.1, hard_stop - time.perf_counter()))
        result.cpu = meter.stop() if meter_started.is_set() else {}
        result.conflicts = conflicts["window"]
        if any(thread.is_alive() for thread in threads):
            result.errors["stuck_threads"] += sum(t.is_alive() for t in threads)
    finally:
        stop.set()  # interrupted: let the workers finish their call, then close
        for thread in threads:
            thread.join(timeout=REQUEST_TIMEOUT_S / len(threads))
        bank.close()
    if not result.errors["stuck_threads"]:
        result.check = check_store(database_url, fixture, result.accepted_total)
    return result


# ------------------------------------------------------------------------- http case


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def create_teller_key(database_url: str) -> str:
    bank = bootstrap(database_url=database_url)
    try:
        _view, secret = bank.create_api_key("bench", "teller", Cause.cli())
        return secret
    finally:
        bank.close()


class Server:
    """``python -m interfaces.cli serve`` in its own process group, always stopped."""

    def __init__(
        self, database_url: str, port: int, workers: int, workdir: Path, projections: bool = True
    ) -> None:
        self.projections = projections
        self.database_url = database_url
        self.port = port
        self.workers = workers
        self.stderr_path = workdir / f"server-{port}.stderr"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "BACKOFFICE_DATABASE_URL": self.database_url,
            "BACKOFFICE_HOST": "127.0.0.1",
            "BACKOFFICE_PORT": str(self.port),
            "BACKOFFICE_LOG_FORMAT": "json",
            "BACKOFFICE_RUN_PROJECTIONS": "true" if self.projections else "false",
            "PYTHONUNBUFFERED": "1",
        }
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "interfaces.cli", "serve",
                 "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", str(self.workers)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,  # its own group: workers are stopped with it
            )

    def pids(self) -> list[int]:
        return process_tree(self.process.pid) if self.process else []

    def stderr_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def wait_ready(self, client_factory: Callable[[], Any]) -> None:
        import httpx

        deadline = time.monotonic() + READY_TIMEOUT_S
        with client_factory() as client:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    raise RuntimeError(
                        f"the server exited with status {self.process and self.process.returncode}"
                        f":\n{self.stderr_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/readyz", timeout=2).status_code == 200:
                        return
                time.sleep(0.1)
        raise RuntimeError(f"the server was not ready in {READY_TIMEOUT_S:.0f} s:\n"
                           f"{self.stderr_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        group = self.process.pid  # start_new_session: the group id is the leader's pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            self.process.wait(timeout=5)
        # Workers left behind by a leader that died first.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)


async def _load(
    base_url: str, secret: str, fixture: Fixture, args: argparse.Namespace,
    result: Result, meter: CpuMeter,
) -> None:
    import httpx

    run_id = uuid.uuid4().hex[:8]
    loop = asyncio.get_running_loop()
    start = loop.time()
    window_start = start + args.warmup
    window_end = window_start + args.duration

    def transfer_body(rng: random.Random) -> dict[str, str]:
        source, destination = pick_pair(rng, fixture.account_ids)
        return {"from_account_id": str(source), "to_account_id": str(destination),
                "amount": AMOUNT, "currency": CURRENCY}

    # One request is one transfer, or one atomic batch of --batch-size transfers.
    batched = args.case_now == "batch"
    path = "/v1/batches" if batched else "/v1/transfers"
    per_request = args.batch_size if batched else 1

    async def client_task(number: int, client: httpx.AsyncClient) -> None:
        rng = random.Random(args.seed * 1000 + number)
        sequence = 0
        while True:
            began = loop.time()
            if began >= window_end:
                return
            sequence += 1
            body: dict[str, Any] = (
                {"atomic": True,
                 "items": [{"type": "transfer", **transfer_body(rng)} for _ in range(per_request)]}
                if batched
                else transfer_body(rng)
            )
            headers = {"Idempotency-Key": f"bench-{run_id}-{number}-{sequence}"}
            try:
                response = await client.post(path, json=body, headers=headers)
                status = response.status_code
                if status == 201:
                    outcome = "ok"
                else:
                    code = ""
                    with contextlib.suppress(ValueError, AttributeError):
                        code = response.json().get("code", "")
                    outcome = f"{status}:{code}" if code else str(status)
            except httpx.HTTPError as error:
                outcome = type(error).__name__
            ended = loop.time()
            if outcome == "ok":
                result.accepted_total += per_request
            if window_start <= began and ended <= window_end:
                if outcome == "ok":
                    result.accepted += per_request
                    result.latencies_ms.append((ended - began) * 1000)
                else:
                    result.errors[outcome] += 1
            elif outcome != "ok":
                result.errors["outside_window:" + outcome] += 1

    async def metering() -> None:
        await asyncio.sleep(max(0.0, window_start - loop.time()))
        meter.start()
        await asyncio.sleep(max(0.0, window_end - loop.time()))
        result.cpu = meter.stop()

    # One AsyncClient (a pool of one keep-alive connection) per client, as each teller
    # system would have its own. One shared pool of C connections costs httpcore 1.0's
    # pool bookkeeping O(C^2) per request: about 3.4 ms of client CPU per request at
    # C=32 against 0.6 ms here, which made the load generator the bottleneck.
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=base_url,
                    headers={"Authorization": f"Bearer {secret}"},
                    limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                    timeout=REQUEST_TIMEOUT_S,
                )
            )
            for _ in range(args.clients)
        ]
        tasks = [asyncio.create_task(client_task(n, c)) for n, c in enumerate(clients)]
        tasks.append(asyncio.create_task(metering()))
        try:
            hard_stop = args.warmup + args.duration + REQUEST_TIMEOUT_S + 10
            done, pending = await asyncio.wait(tasks, timeout=hard_stop)
            if pending:
                result.errors["stuck_clients"] += len(pending)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()
        finally:
            for task in tasks:  # interrupted or stuck: stop them, quietly
                if task.done() and not task.cancelled():
                    task.exception()
                else:
                    task.cancel()


def _spare_the_load_generator() -> None:
    """httpcore imports ``sniffio`` on every request; absent (anyio 4 needs it no more),
    each attempt searches sys.path again. A None entry makes the import fail at once."""
    try:
        import sniffio  # noqa: F401
    except ImportError:
        sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]


def run_http(store: str, database_url: str, args: argparse.Namespace, workdir: Path) -> Result:
    import httpx

    _spare_the_load_generator()

    fixture = set_up_accounts(database_url, args.accounts)
    secret = create_teller_key(database_url)
    port = args.port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    batched = args.case_now == "batch"
    result = Result(
        args.case_now, store,
        f"clients={args.clients} workers={args.workers}"
        + (f" batch={args.batch_size}" if batched else ""),
        args.duration,
        params={"clients": args.clients, "workers": args.workers, "accounts": args.accounts,
                **({"batch_size": args.batch_size} if batched else {})},
    )
    server = Server(database_url, port, args.workers, workdir, args.projections)
    groups: dict[str, Callable[[], list[int]]] = {"loadgen": _self_cpu, "server": server.pids}
    if store == "postgres":
        groups["postgres"] = _postgres_pids
    meter = CpuMeter(groups)
    try:
        server.start()
        server.wait_ready(lambda: httpx.Client(base_url=base_url))
        asyncio.run(_load(base_url, secret, fixture, args, result, meter))
    finally:
        server.stop()
    if server.stderr_tail() and args.verbose:
        print(f"server stderr (tail):\n{server.stderr_tail()}", file=sys.stderr)
    if not result.errors.get("stuck_clients"):
        result.check = check_store(database_url, fixture, result.accepted_total)
    return result


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Transfers per second through the application and through HTTP.",
    )
    parser.add_argument("--store", choices=("sqlite", "postgres", "all"), default="all")
    parser.add_argument("--case", choices=("app", "http", "batch", "all"), default="all",
                        help="all = app and http (batch runs only when named)")
    parser.add_argument("--no-projections", dest="projections", action="store_false",
                        help="http/batch: the server runs no projection runners "
                             "(BACKOFFICE_RUN_PROJECTIONS=false)")
    parser.add_argument("--batch-size", type=int, default=1000,
                        help="transfers per atomic batch in the batch case (default 1000)")
    parser.add_argument("--duration", type=float, default=15.0,
                        help="measured seconds per case (default 15)")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="seconds of load before measuring (default 3)")
    parser.add_argument("--clients", type=int, default=32,
                        help="concurrent HTTP clients (default 32)")
    parser.add_argument("--threads", type=int, default=8,
                        help="threads calling the application in the app case (default 8)")
    parser.add_argument("--accounts", type=int, default=200,
                        help="funded accounts transfers pick from (default 200)")
    parser.add_argument("--workers", type=int, default=1,
                        help="uvicorn worker processes (default 1)")
    parser.add_argument("--no-claim", dest="claim", action="store_false",
                        help="app case: call transfer without an idempotency Claim")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_PG_URL),
                        help=f"PostgreSQL database to make a schema in (default {DEFAULT_PG_URL})")
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    parser.add_argument("--verbose", action="store_true", help="print the server's stderr")
    args = parser.parse_args(argv)
    if args.accounts < 2:
        parser.error("--accounts must be at least 2")
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be > 0 and --warmup >= 0")
    if min(args.clients, args.threads, args.workers) < 1:
        parser.error("--clients, --threads and --workers must be at least 1")
    return args


def warn_if_busy() -> None:
    """Other work on the machine skews every figure: say so before starting."""
    before, start = machine_busy_seconds(), time.perf_counter()
    time.sleep(1.0)
    busy = 100.0 * (machine_busy_seconds() - before) / (time.perf_counter() - start)
    if busy > 25.0:
        print(f"warning: the machine is already busy ({busy:.0f}% of one core of "
              f"{os.cpu_count()}); the figures will be low (see cpu[other=...])",
              file=sys.stderr, flush=True)


def _terminate(signum: int, _frame: Any) -> None:
    # SIGTERM would end the process without running the finally blocks: the server
    # (in a session of its own) would live on and the schema stay behind.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    warn_if_busy()
    stores = ["sqlite", "postgres"] if args.store == "all" else [args.store]
    cases = ["app", "http"] if args.case == "all" else [args.case]
    failed = False
    workdir = Path(tempfile.mkdtemp(prefix="backoffice-bench-"))
    try:
        for case in cases:
            for store in stores:
                try:
                    with fresh_store(store, args.pg_url, workdir) as database_url:
                        args.case_now = case
                        if case == "app":
                            result = run_app(store, database_url, args)
                        else:
                            result = run_http(store, database_url, args, workdir)
                except Exception as error:  # noqa: BLE001 (one broken case, not the others)
                    failed = True
                    message = f"{type(error).__name__}: {error}"
                    if args.json:
                        print(json.dumps({"case": case, "store": store, "error": message}),
                              flush=True)
                    else:
                        print(f"{case:<5} {store:<9} FAILED  {message}", flush=True)
                    continue
                failed = failed or result.check != "ok"
                print(result.as_json() if args.json else result.line(), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted (server stopped, stores removed)", file=sys.stderr)
        sys.exit(130)
