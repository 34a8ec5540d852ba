"""`turnout tenants`, `turnout keys`, `turnout spend`: tenants, their keys and what they
spent, read from and written to the ledger database the gateway uses (the settings'
`governance.database_url`, SQLite under `home` by default)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from ._context import CliState, console

if TYPE_CHECKING:
    from turnout.gateway.governance import Database

tenants = typer.Typer(help="Create tenants and set their budgets, caps and limits.")
keys = typer.Typer(help="Issue and revoke tenants' API keys.")


def _db(ctx: typer.Context) -> Database:
    from turnout.gateway.governance import Database, ledger_url

    state: CliState = ctx.obj
    return Database.open(ledger_url(state.settings))


def _parse_value(raw: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _changes(pairs: list[str]) -> dict[str, Any]:
    """`key=value` pairs; dotted keys nest (`tenant_limits.requests_per_minute=60`)."""
    from turnout.core import InvalidInputError

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"{pair!r}: expected key=value, e.g. daily_budget_usd=100")
        value = None if raw.lower() in ("none", "null", "") else _parse_value(raw)
        target = out
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    return out


def _show(data: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, indent=2))
        return
    console().print_json(json.dumps(data))


@tenants.command("create")
def tenants_create(
    ctx: typer.Context,
    tenant_id: str = typer.Argument(..., help="Tenant id: lowercase letters, digits, - and _."),
    policy: list[str] = typer.Argument(None, help="Policy as key=value, as in `tenants set`."),
    name: str | None = typer.Option(None, "--name", help="A display name."),
) -> None:
    """Create a tenant, optionally with its policy (daily_budget_usd=100 ...)."""
    from turnout.gateway.governance import TenantDirectory, parse_policy

    directory = TenantDirectory(_db(ctx))
    tenant = directory.create_tenant(tenant_id, name, parse_policy(_changes(policy or [])))
    _show(tenant.public(), False)


@tenants.command("list")
def tenants_list(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON output.")
) -> None:
    """Every tenant with its budgets, caps and today's spend."""
    from rich.table import Table

    from turnout.gateway.governance import Ledger, TenantDirectory

    db = _db(ctx)
    directory, ledger = TenantDirectory(db), Ledger(db)
    rows = []
    for tenant in directory.list_tenants():
        totals = ledger.totals(tenant.id, tenant.policy)
        rows.append((tenant, totals))
    if as_json:
        _show([{**t.public(), "spend": s} for t, s in rows], True)
        return
    table = Table()
    for column in ("tenant", "daily budget", "spent today", "monthly budget", "image cap"):
        table.add_column(column)
    for tenant, totals in rows:
        p = tenant.policy
        table.add_row(
            tenant.id,
            f"${p.daily_budget_usd}" if p.daily_budget_usd is not None else "-",
            f"${totals['day']['spent_micros'] / 1e6:.6f}",
            f"${p.monthly_budget_usd}" if p.monthly_budget_usd is not None else "-",
            str(p.image_token_cap) if p.image_token_cap is not None else "-",
        )
    console().print(table)


@tenants.command("show")
def tenants_show(ctx: typer.Context, tenant_id: str = typer.Argument(...)) -> None:
    """A tenant's policy, users and spend this day and month."""
    from turnout.gateway.governance import Ledger, TenantDirectory

    db = _db(ctx)
    directory = TenantDirectory(db)
    tenant = directory.tenant(tenant_id)
    _show(
        {
            **tenant.public(),
            "users": directory.list_users(tenant_id),
            "spend": Ledger(db).totals(tenant.id, tenant.policy),
        },
        False,
    )


@tenants.command("set")
def tenants_set(
    ctx: typer.Context,
    tenant_id: str = typer.Argument(...),
    policy: list[str] = typer.Argument(
        ...,
        help="key=value: daily_budget_usd, monthly_budget_usd, timezone, alert_thresholds "
        "([50,80,100]), image_token_cap, max_images, allowed_routes, allowed_models, "
        "tenant_limits.requests_per_minute / tokens_per_minute / concurrent, user_limits.*, "
        "log_prompts. 'none' clears a key.",
    ),
) -> None:
    """Change a tenant's policy; the gateway picks it up within seconds."""
    from turnout.gateway.governance import TenantDirectory

    directory = TenantDirectory(_db(ctx))
    tenant = directory.tenant(tenant_id)
    changes = _changes(policy)
    for group in ("tenant_limits", "user_limits"):
        if isinstance(changes.get(group), dict):
            current = getattr(tenant.policy, group).model_dump()
            changes[group] = {**current, **changes[group]}
    _show(directory.set_policy(tenant_id, changes).public(), False)


@keys.command("create")
def keys_create(
    ctx: typer.Context,
    tenant: str = typer.Option(..., "--tenant", "-t", help="The tenant the key spends for."),
    name: str = typer.Option("", "--name", help="What the key is for."),
    user: str | None = typer.Option(None, "--user", help="Bind the key to one user."),
) -> None:
    """Issue a key; it is printed once and stored only as a hash."""
    from turnout.gateway.governance import TenantDirectory

    key, info = TenantDirectory(_db(ctx)).create_key(tenant, name, user)
    print(key)
    console().print(
        f"[dim]key {info.id} for tenant {info.tenant_id}: shown once, keep it safe[/dim]"
    )


@keys.command("revoke")
def keys_revoke(
    ctx: typer.Context, key_id: str = typer.Argument(..., help="The key's id.")
) -> None:
    """Revoke a key (its id is the part after `tk-`)."""
    from turnout.gateway.governance import TenantDirectory

    info = TenantDirectory(_db(ctx)).revoke_key(key_id)
    console().print(f"revoked key {info.id} of tenant {info.tenant_id}")


@keys.command("list")
def keys_list(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="One tenant's keys."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Keys with their tenant, user and state; never their secrets."""
    from rich.table import Table

    from turnout.gateway.governance import TenantDirectory

    found = TenantDirectory(_db(ctx)).list_keys(tenant)
    if as_json:
        _show([k.public() for k in found], True)
        return
    table = Table()
    for column in ("id", "tenant", "user", "name", "created", "revoked"):
        table.add_column(column)
    for k in found:
        table.add_row(
            k.id,
            k.tenant_id,
            k.user_id or "-",
            k.name,
            k.created_at.strftime("%Y-%m-%d %H:%M"),
            k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "-",
        )
    console().print(table)


def spend(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="One tenant (default all)."),
    by: str = typer.Option("day", "--by", help="day, route, model, pattern, user, tier, tenant."),
    since: str | None = typer.Option(None, "--since", help="First day, YYYY-MM-DD."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """What tenants spent, from the ledger: cost, requests and tokens by modality."""
    from rich.table import Table

    from turnout.gateway.governance._reports import spend_report

    report = spend_report(_db(ctx), tenant=tenant, by=by, since=since)
    if as_json:
        _show(report, True)
        return
    table = Table(title=f"spend by {by}" + (f" for {tenant}" if tenant else ""))
    columns = (
        by,
        "requests",
        "refused",
        "cost_usd",
        "text_tokens",
        "image_tokens",
        "output_tokens",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == by else "right")
    for row in report["rows"]:
        table.add_row(*(str(row[c]) if row[c] is not None else "-" for c in columns))
    out = console()
    out.print(table)
    out.print(f"total ${report['total_usd']}; in flight ${report['in_flight_usd']}")
