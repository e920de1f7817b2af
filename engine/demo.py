"""``clusterbus demo``: the simulator, the engine and the handlers in one process, two clusters.

Everything runs on the embedded defaults: the local RabbitMQ, a SQLite store and the simulated
cloud. The demo keeps to itself (its own store file and topology prefix), so it never touches a
``clusterbus run`` on the same machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
from rich.console import Console
from rich.live import Live
from rich.table import Table

from engine.bus import Bus
from engine.handler_service import start_handlers
from engine.messages.envelope import envelope_for
from engine.messages.spec import ClusterSpec
from engine.secrets import StoreSecrets
from engine.service import EngineService
from engine.settings import Settings
from engine.store import Store
from handlers.bastion import ssh_config
from simulator.profile import Profile
from simulator.serve import BackgroundSimulator, write_clouds_yaml
from statemachines import ClusterAggregate

DEMO_CLUSTERS = (("demo-a", "clusterbus-sim"), ("demo-b", "clusterbus-sim-alt"))
CONDITIONS = (
    "NetworkReady",
    "SecurityGroupsReady",
    "APIEndpointReady",
    "BastionReady",
    "ControlPlaneInitialized",
    "ControlPlaneReady",
    "WorkersReady",
)


class BrokerDown(Exception):
    """RabbitMQ does not answer; the message says how to start it."""


@dataclass
class DemoRun:
    settings: Settings
    workdir: Path
    console: Console


async def check_broker(settings: Settings) -> None:
    url = settings.amqp_url.get_secret_value()
    try:
        connection = await asyncio.wait_for(aio_pika.connect(url), timeout=5)
    except (OSError, TimeoutError, aio_pika.exceptions.AMQPError) as exc:
        raise BrokerDown(
            f"RabbitMQ does not answer at {_safe_url(url)} ({type(exc).__name__}).\n"
            "Start it with:  rabbitmq-server -detached\n"
            "and enable the shard exchange once with:\n"
            "  rabbitmq-plugins enable rabbitmq_consistent_hash_exchange"
        ) from None
    await connection.close()


def _safe_url(url: str) -> str:
    """The URL without its password."""
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user + '@' if at else ''}{host}"


def demo_spec(name: str, cloud: str) -> dict[str, Any]:
    spec = ClusterSpec.model_validate(
        {
            "name": name,
            "cloud": cloud,
            "control_plane": {"replicas": 3},
            "worker_pools": [{"name": "md-0", "replicas": 2}],
            "bastion": {"enabled": True},
        }
    )
    return spec.model_dump(mode="json")


async def run_demo(
    settings: Settings, workdir: Path, *, time_scale: float, console: Console
) -> int:
    """Bring everything up, create the clusters, show progress, clean up on Ctrl-C."""
    await check_broker(settings)
    profile = Profile(time_scale=time_scale)
    sim = BackgroundSimulator(profile=profile).start()
    clouds = write_clouds_yaml(workdir / "clouds.yaml", sim.base_url, profile)
    os.environ["OS_CLIENT_CONFIG_FILE"] = str(clouds.resolve())
    console.print(f"simulated OpenStack on [bold]{sim.base_url}[/] (clouds.yaml: {clouds})")
    store = await Store.open(settings.store_url)
    bus = Bus(settings, name="clusterbus-demo")
    await bus.declare()
    await bus.connect()
    engine = EngineService(settings, bus, store)
    try:
        await engine.start()
        await start_handlers(settings, bus, store)
        for name, cloud in DEMO_CLUSTERS:
            command = envelope_for(
                "cluster.create", name, {"spec": demo_spec(name, cloud)}, source="clusterbus/demo"
            )
            await bus.publish(command, exchange=None)
        console.print("creating clusters: " + ", ".join(n for n, _ in DEMO_CLUSTERS))
        states = await _follow(store, console, until={"ready", "failed"})
        if any(state == "failed" for state in states.values()):
            await _print_failures(store, console)
            return 1
        await _print_access(store, settings, workdir, console)
        interrupted = _interrupt_event()  # before the prompt: a quick Ctrl-C must not kill us
        console.print("\n[bold]Clusters are running.[/] Press Ctrl-C to delete them and stop.")
        await interrupted.wait()
        _restore_signals()
        console.print("\ndeleting the clusters ...")
        for name, _ in DEMO_CLUSTERS:
            await bus.publish(
                envelope_for("cluster.delete", name, {}, source="clusterbus/demo"), exchange=None
            )
        await _follow(store, console, until={"deleted"})
        leaks = sim.cloud.resources
        console.print(f"done; servers left in the cloud: {len(leaks.get('servers', {}))}")
        return 0
    finally:
        await engine.stop()
        await bus.close()
        await store.close()
        sim.stop()


def _interrupt_event() -> asyncio.Event:
    """An event set by SIGINT/SIGTERM (instead of KeyboardInterrupt)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


def _restore_signals() -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(signum)


async def _follow(store: Store, console: Console, *, until: set[str]) -> dict[str, str]:
    """Redraw a progress table from the store until every demo cluster is in ``until``."""
    with Live(console=console, refresh_per_second=4) as live:
        while True:
            rows = {name: await store.load(name) for name, _ in DEMO_CLUSTERS}
            live.update(_table(rows))
            states = {name: (row[0].state if row else "pending") for name, row in rows.items()}
            if all(state in until for state in states.values()):
                return states
            await asyncio.sleep(0.25)


def _table(rows: dict[str, Any]) -> Table:
    table = Table(title="clusterbus demo")
    table.add_column("cluster")
    table.add_column("state")
    for condition in CONDITIONS:
        table.add_column(condition.removesuffix("Ready").removesuffix("Initialized") or condition)
    table.add_column("machines running")
    for name, row in rows.items():
        if row is None:
            table.add_row(name, "pending", *["" for _ in CONDITIONS], "")
            continue
        cluster, machines = row
        conditions = cluster.doc.get("conditions", {})
        marks = [_mark(conditions.get(c, {}).get("status")) for c in CONDITIONS]
        live = [m for m in machines if m.state != "deleted"]
        running = sum(1 for m in live if m.state == "running")
        table.add_row(name, cluster.state, *marks, f"{running}/{len(live)}")
    return table


def _mark(status: str | None) -> str:
    return {"True": "[green]✓[/]", "False": "[yellow]…[/]"}.get(status or "", "·")


async def _print_failures(store: Store, console: Console) -> None:
    for name, _ in DEMO_CLUSTERS:
        row = await store.load(name)
        if row and row[0].state == "failed":
            console.print(f"[red]{name} failed:[/] {row[0].doc.get('failure_reason')}")


async def _print_access(store: Store, settings: Settings, workdir: Path, console: Console) -> None:
    secrets = StoreSecrets.from_settings(store, settings)
    for name, _ in DEMO_CLUSTERS:
        row = await store.load(name)
        assert row is not None
        cluster, machines = row
        endpoint = ClusterAggregate.from_rows(
            cluster.id,
            cluster.state,
            cluster.doc,
            [(m.id, m.role, m.state, m.doc) for m in machines],
        ).endpoint
        kubeconfig = workdir / f"{name}.kubeconfig"
        material = await secrets.get(name, "kubeconfig")
        if material is not None:
            kubeconfig.write_bytes(material)
            kubeconfig.chmod(0o600)
        addresses = {m.id: str(m.doc["address"]) for m in machines if m.doc.get("address")}
        bastion = next((m.doc.get("floating_ip") for m in machines if m.role == "bastion"), None)
        console.rule(name)
        console.print(f"API endpoint : {endpoint}")
        console.print(f"kubeconfig   : {kubeconfig}")
        if bastion:
            nodes = {k: v for k, v in addresses.items() if not k.endswith("-bastion")}
            console.print("ssh-config   :")
            console.print(ssh_config(name, str(bastion), nodes), markup=False)


def demo_settings(workdir: Path) -> Settings:
    """The embedded defaults, but with a store and prefix of the demo's own."""
    with contextlib.suppress(FileNotFoundError):
        (workdir / "clusterbus-demo.db").unlink()
    # Only the broker URL comes from the environment: the demo's topology is always the same,
    # so a later run never meets queues declared with other shard counts or delays.
    return Settings(
        amqp_url=Settings().amqp_url,
        store_url=f"sqlite+aiosqlite:///{workdir / 'clusterbus-demo.db'}",
        topology_prefix="clusterbus-demo",
        secret_key_file=workdir / "clusterbus.key",
        shards=4,
        queue_type="classic",
        reconcile_interval_s=5,
    )
