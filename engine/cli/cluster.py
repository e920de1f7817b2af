"""``clusterbus cluster ...``: create, inspect, follow, scale, delete and reach clusters."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError

from engine.cli import views
from engine.cli.common import console, fail, run
from engine.client import ClusterClient, ClusterFailed
from engine.messages import ClusterSpec, format_errors

app = typer.Typer(help="Kubernetes clusters.", no_args_is_help=True)

DEFAULT_CLOUD = "clusterbus-sim"
WORKER_POOL = "worker"
Json = dict[str, Any]


def _default_cloud() -> str:
    return os.environ.get("OS_CLOUD") or DEFAULT_CLOUD


def build_spec(
    name: str | None,
    file: Path | None,
    overrides: Json,
) -> ClusterSpec:
    """The spec from ``-f`` (YAML) and/or the flags; flags given explicitly win."""
    doc: Json = {}
    if file is not None:
        loaded = yaml.safe_load(file.read_text())
        if not isinstance(loaded, dict):
            raise fail(f"{file}: a cluster spec must be a YAML mapping", code=2)
        doc = loaded
    if name is not None:
        doc["name"] = name
    if "name" not in doc:
        raise fail("give a cluster NAME or -f spec.yaml with a name", code=2)
    doc.setdefault("cloud", _default_cloud())
    for key, value in overrides.items():
        if isinstance(value, dict):
            doc[key] = {**doc.get(key, {}), **value}
        else:
            doc[key] = value
    try:
        return ClusterSpec.model_validate(doc)
    except ValidationError as error:
        raise fail(f"invalid cluster spec: {format_errors(error, 'spec')}", code=2) from None


def _overrides(
    cloud: str | None,
    control_plane: int | None,
    workers: int | None,
    flavor: str | None,
    image: str | None,
    no_bastion: bool,
) -> Json:
    cp: Json = {k: v for k, v in (("replicas", control_plane), ("flavor", flavor),
                                  ("image", image)) if v is not None}  # fmt: skip
    out: Json = {"control_plane": cp} if cp else {}
    if cloud is not None:
        out["cloud"] = cloud
    if workers is not None:
        pool: Json = {"name": WORKER_POOL, "replicas": workers}
        pool.update({k: v for k, v in (("flavor", flavor), ("image", image)) if v is not None})
        out["worker_pools"] = [pool] if workers else []
    if no_bastion:
        out["bastion"] = {"enabled": False}
    return out


async def _wait(client: ClusterClient, name: str, within: float, deleting: bool) -> None:
    try:
        if deleting:
            await client.wait_deleted(name, within)
            console.print(f"cluster {name} deleted")
        else:
            snap = await client.wait_ready(name, within)
            console.print(f"cluster {name} ready: {snap['endpoint']}")
    except ClusterFailed as failed:
        raise fail(f"cluster {name} failed: {failed.reason}") from None
    except TimeoutError as error:
        raise fail(str(error)) from None


@app.command("create")
def create(
    name: Annotated[str | None, typer.Argument(help="cluster name (DNS label)")] = None,
    file: Annotated[Path | None, typer.Option("-f", "--file", help="spec YAML")] = None,
    cloud: Annotated[
        str | None,
        typer.Option(
            "--cloud", "--os-cloud", help="clouds.yaml entry [$OS_CLOUD or clusterbus-sim]"
        ),
    ] = None,
    control_plane: Annotated[int | None, typer.Option(help="control-plane replicas")] = None,
    workers: Annotated[int | None, typer.Option(help="replicas of the 'worker' pool")] = None,
    flavor: Annotated[str | None, typer.Option(help="flavor of every node")] = None,
    image: Annotated[str | None, typer.Option(help="image of every node")] = None,
    no_bastion: Annotated[bool, typer.Option("--no-bastion", help="no SSH bastion")] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="wait until ready (exit 1 on failed)")
    ] = False,
    timeout: Annotated[float, typer.Option(help="seconds to --wait")] = 1800.0,
) -> None:
    """Ask the engine to create a cluster."""
    spec = build_spec(
        name, file, _overrides(cloud, control_plane, workers, flavor, image, no_bastion)
    )

    async def go(client: ClusterClient) -> None:
        correlation = await client.create_cluster(spec)
        console.print(f"cluster {spec.name} accepted (correlation id {correlation})")
        if wait:
            await _wait(client, spec.name, timeout, deleting=False)

    run(go)


@app.command("list")
def list_clusters(
    output: Annotated[str, typer.Option("-o", "--output", help="table or json")] = "table",
) -> None:
    """Every cluster with its state and endpoint."""
    rows = run(lambda client: client.list())
    if output == "json":
        console.print_json(json.dumps(rows))
    else:
        console.print(views.cluster_table(rows))


@app.command("get")
def get(
    name: str,
    output: Annotated[str, typer.Option("-o", "--output", help="table, json or yaml")] = "table",
) -> None:
    """State, conditions with reasons, machines, endpoint and timings of one cluster."""
    if output not in ("table", "json", "yaml"):
        raise fail("--output must be table, json or yaml", code=2)
    snap = run(lambda client: client.get(name))
    if snap is None:
        raise fail(f"no cluster named {name}")
    if output == "json":
        console.print_json(json.dumps(snap))
    elif output == "yaml":
        print(yaml.safe_dump(snap, sort_keys=False), end="")
    else:
        views.print_snapshot(console, snap)


@app.command("watch")
def watch(
    name: str,
    timeout: Annotated[float, typer.Option(help="give up after this many seconds")] = 1800.0,
) -> None:
    """Follow a cluster's progress live until it is ready (exit 0) or failed (exit 1)."""
    from engine.cli.watching import follow

    final = run(lambda client: follow(client, name, timeout, console))
    if final == "failed":
        raise typer.Exit(1)
    if final is None:
        raise fail(f"no cluster named {name}")


@app.command("scale")
def scale(
    name: str,
    workers: Annotated[
        list[str], typer.Option("--workers", help="POOL=N (repeatable)", default_factory=list)
    ],
    control_plane: Annotated[int | None, typer.Option(help="control-plane replicas")] = None,
) -> None:
    """Change worker pool sizes and/or the control-plane size."""
    pools: dict[str, int] = {}
    for item in workers:
        pool, sep, count = item.partition("=")
        if not sep or not count.isdigit():
            raise fail(f"--workers takes POOL=N, not {item!r}", code=2)
        pools[pool] = int(count)
    try:
        correlation = run(lambda client: client.scale(name, pools, control_plane))
    except ValidationError as error:
        raise fail(f"invalid scale request: {format_errors(error)}", code=2) from None
    console.print(f"scale of {name} sent (correlation id {correlation})")


@app.command("delete")
def delete(
    name: str,
    wait: Annotated[bool, typer.Option("--wait", help="wait until deleted")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to --wait")] = 1800.0,
) -> None:
    """Delete a cluster and everything it owns."""

    async def go(client: ClusterClient) -> None:
        correlation = await client.delete_cluster(name)
        console.print(f"delete of {name} sent (correlation id {correlation})")
        if wait:
            await _wait(client, name, timeout, deleting=True)

    run(go)


@app.command("retry")
def retry(name: str) -> None:
    """Resume a failed cluster from the part that failed."""
    correlation = run(lambda client: client.retry(name))
    console.print(f"retry of {name} sent (correlation id {correlation})")


@app.command("kubeconfig")
def kubeconfig(
    name: str,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write to FILE")] = None,
) -> None:
    """The admin kubeconfig (decrypted); a file is written with mode 0600."""
    config = run(lambda client: client.kubeconfig(name))
    if config is None:
        raise fail(f"no kubeconfig for {name} yet (is the cluster's PKI ready?)")
    if output is None:
        typer.echo(config.decode(), nl=False)
        return
    # Created 0600 from the start: never a moment where others can read the key.
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(config)
    os.chmod(output, 0o600)  # an existing file keeps its mode on open(): tighten it
    console.print(f"wrote {output}")


@app.command("ssh-config")
def ssh_config(name: str) -> None:
    """An OpenSSH config: every machine by its fixed address, through the bastion."""
    agg = run(lambda client: client.aggregate(name))
    if agg is None:
        raise fail(f"no cluster named {name}")
    try:
        typer.echo(views.ssh_config(agg), nl=False)
    except ValueError as error:
        raise fail(str(error)) from None
