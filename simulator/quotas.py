"""Per-project quotas, counted from live resources, refused with each service's real error."""

from __future__ import annotations

from simulator.core import ApiError, Cloud, Record
from simulator.profile import Quota

# quota name -> (service, kind counted)
RESOURCES: dict[str, tuple[str, str]] = {
    "instances": ("compute", "servers"),
    "cores": ("compute", "servers"),
    "ram": ("compute", "servers"),
    "network": ("network", "networks"),
    "subnet": ("network", "subnets"),
    "port": ("network", "ports"),
    "router": ("network", "routers"),
    "floatingip": ("network", "floatingips"),
    "security_group": ("network", "security_groups"),
    "security_group_rule": ("network", "security_group_rules"),
    "loadbalancer": ("load-balancer", "loadbalancers"),
}


def limits(cloud: Cloud, project_id: str) -> Quota:
    """The project's quota from the profile (defaults for the admin project and unknown ones)."""
    project = cloud.table("projects").get(project_id)
    name = project["name"] if project else None
    for spec in cloud.profile.projects:
        if spec.name == name:
            quota: Quota = spec.quota
            return quota
    return Quota()


def usage(cloud: Cloud, project_id: str, resource: str) -> int:
    """How much of ``resource`` the project uses now (owned records only, not shared ones)."""
    _, kind = RESOURCES[resource]
    owned = [r for r in cloud.table(kind).values() if r.get("_project_id") == project_id]
    if resource in ("cores", "ram"):
        field = "vcpus" if resource == "cores" else "ram"
        return sum(_flavor_value(r, field) for r in owned)
    return len(owned)


def _flavor_value(server: Record, field: str) -> int:
    flavor = server.get("flavor") or {}
    return int(flavor.get(field) or 0)


def check(cloud: Cloud, project_id: str, resource: str, requested: int = 1) -> None:
    """Raise the service's over-quota error if ``requested`` more would exceed the limit."""
    if resource not in RESOURCES:
        raise KeyError(f"unknown quota resource {resource!r}")
    limit = int(getattr(limits(cloud, project_id), resource))
    if limit < 0:
        return
    used = usage(cloud, project_id, resource)
    if used + requested <= limit:
        return
    service, _ = RESOURCES[resource]
    if service == "compute":
        raise ApiError(
            403,
            f"Quota exceeded for {resource}: Requested {requested}, but already used "
            f"{used} of {limit} {resource}.",
            kind="Forbidden",
        )
    if service == "network":
        raise ApiError(409, f"Quota exceeded for resources: ['{resource}'].", kind="OverQuota")
    raise ApiError(403, "Quota has been met for resources: LoadBalancer", kind="Forbidden")


def quota_set(cloud: Cloud, project_id: str) -> dict[str, dict[str, int]]:
    """Limit and usage of every resource, for reports."""
    quota = limits(cloud, project_id)
    return {
        name: {"limit": int(getattr(quota, name)), "in_use": usage(cloud, project_id, name)}
        for name in RESOURCES
    }
