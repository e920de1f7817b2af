"""Run the simulator: in the foreground (``python -m simulator``) or in a background thread.

Both write a ``clouds.yaml`` whose entries point at the simulator, merged into any existing file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from simulator import keystone, state
from simulator.app import create_app
from simulator.core import Cloud
from simulator.http import CLOUD_KEY
from simulator.profile import Profile

CLOUD_NAME = "clusterbus-sim"
# Opt-in for containers only: there 0.0.0.0 is the container's private network namespace.
ALLOW_ANY_HOST_ENV = "SIMULATOR_ALLOW_ANY_HOST"


def check_loopback(host: str) -> None:
    """The simulator must never listen beyond this machine, unless ALLOW_ANY_HOST_ENV=1."""
    if os.environ.get(ALLOW_ANY_HOST_ENV) == "1":
        return
    try:
        address = ipaddress.ip_address("127.0.0.1" if host == "localhost" else host)
    except ValueError as exc:
        raise ValueError(f"host must be a loopback address, got {host!r}") from exc
    if address not in ipaddress.ip_network("127.0.0.0/8"):
        raise ValueError(f"host must be in 127.0.0.0/8, got {host}")


def cloud_entries(base_url: str, profile: Profile) -> dict[str, dict[str, Any]]:
    """clouds.yaml entries: ``clusterbus-sim`` (first project) and one per project, admin too."""
    users = [(p.name, p.user, p.password) for p in profile.projects]
    users.append((keystone.ADMIN, keystone.ADMIN, keystone.ADMIN_PASSWORD))

    def entry(project: str, user: str, password: str) -> dict[str, Any]:
        return {
            "auth": {
                "auth_url": f"{base_url}/identity",
                "username": user,
                "password": password,
                "project_name": project,
                "user_domain_name": "Default",
                "project_domain_name": "Default",
            },
            "region_name": keystone.REGION,
            "identity_api_version": 3,
            "interface": "public",
        }

    entries = {f"{CLOUD_NAME}-{name}": entry(name, user, pw) for name, user, pw in users}
    entries[CLOUD_NAME] = entry(*users[0])
    return entries


def write_clouds_yaml(path: Path, base_url: str, profile: Profile) -> Path:
    """Add or replace our entries in ``path``, keeping every other cloud in it."""
    existing: dict[str, Any] = {}
    if path.exists():
        existing = yaml.safe_load(path.read_text()) or {}
    clouds = existing.setdefault("clouds", {})
    clouds.update(cloud_entries(base_url, profile))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(existing, sort_keys=False))
    return path


async def start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Start serving ``app``; returns the runner and the base URL (with the real port)."""
    check_loopback(host)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    assert server is not None and server.sockets  # type: ignore[attr-defined]
    bound_port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return runner, f"http://{host}:{bound_port}"


@dataclass
class BackgroundSimulator:
    """The simulator on its own event loop in a daemon thread, for synchronous callers (tests)."""

    profile: Profile = field(default_factory=Profile)
    host: str = "127.0.0.1"
    port: int = 0
    state_path: Path | None = None
    base_url: str = ""
    app: web.Application | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    @property
    def cloud(self) -> Cloud:
        assert self.app is not None, "not started"
        return self.app[CLOUD_KEY]

    def start(self, timeout: float = 10.0) -> BackgroundSimulator:
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, failure), name="simulator", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("simulator did not start")
        if failure:
            raise failure[0]
        return self

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self.app = create_app(self.profile)
            if self.state_path is not None:
                self.app.cleanup_ctx.append(state.persistence(self.state_path))
            self._runner, self.base_url = loop.run_until_complete(
                start(self.app, self.host, self.port)
            )
        except BaseException as exc:  # reported to the starting thread
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is None or self._thread is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop may already be closed
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._thread = None


async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    profile_path: Path | None = None,
    state_path: Path | None = None,
    clouds_yaml: Path = Path("clouds.yaml"),
) -> None:
    """Serve until SIGINT/SIGTERM; writes ``clouds_yaml`` and prints where everything is."""
    check_loopback(host)
    profile = Profile.from_yaml(profile_path) if profile_path else Profile()
    app = create_app(profile)
    if state_path is not None:
        app.cleanup_ctx.append(state.persistence(state_path))
    runner, base_url = await start(app, host, port)
    written = write_clouds_yaml(clouds_yaml, base_url, profile)
    print(f"simulator listening on {base_url}", flush=True)
    print(f"clouds.yaml: {written.resolve()} (cloud '{CLOUD_NAME}')", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="simulator", description="Simulated OpenStack cloud")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--profile", type=Path, help="realism profile (YAML)")
    p.add_argument("--state", type=Path, help="keep resources in this JSON file across restarts")
    p.add_argument("--clouds-yaml", type=Path, default=Path("clouds.yaml"))
    p.add_argument("--routes", action="store_true", help="print every route and exit")
    return p


def route_table(app: web.Application) -> list[tuple[str, str, str]]:
    """(method, path, operation key) of every route, sorted by path."""
    rows = []
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info() if route.resource else {}
        path = str(info.get("path") or info.get("formatter") or "")
        name = route.name or (route.resource.name if route.resource else "") or ""
        rows.append((route.method, path, name))
    return sorted(set(rows), key=lambda row: (row[1], row[0]))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.routes:
        for method, path, name in route_table(create_app()):
            print(f"{method:6} {path:70} {name}")
        return 0
    try:
        check_loopback(args.host)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve(args.host, args.port, args.profile, args.state, args.clouds_yaml))
    return 0
