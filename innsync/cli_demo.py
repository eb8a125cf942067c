"""`innsync demo seed`: realistic demo volume for demos and benchmarks."""

from __future__ import annotations

import typer
from rich.console import Console

demo_app = typer.Typer(no_args_is_help=True, help="Demo data.")
console = Console(stderr=True)


@demo_app.command("seed")
def seed(
    reservations: int = typer.Option(1000, "--reservations", min=0,
                                     help="reservations (and guests) to create per hotel"),
    properties: int = typer.Option(
        1, "--properties", min=1,
        help="hotels of the demo group, each connected to its own hotel of the simulators' "
             "partner accounts (serve them with `innsync simulate --hotels N`)"),
    seed_value: int = typer.Option(42, "--seed", help="random seed (same seed, same data)"),
    reset: bool = typer.Option(False, "--reset", help="replace an existing demo property"),
    migrate_first: bool = typer.Option(True, "--migrate/--no-migrate"),
) -> None:
    """Create the demo hotel (or `--properties N` of them): room types, rate plans, a year
    of inventory and rates, guests, reservations, the four channels with mappings and
    channel bookings."""
    from db import migrate
    from db.demo import DemoExistsError, seed_demo
    from db.engine import database_url

    url = database_url()
    if migrate_first:
        migrate.upgrade("head", url)
    try:
        summary = seed_demo(url, reservations=reservations, seed=seed_value, reset=reset,
                            properties=properties)
    except DemoExistsError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    group = f"{summary.properties} demo properties from id " if summary.properties > 1 else \
        "demo property "
    console.print(
        f"{group}{summary.property_id}: {summary.room_types} room types, "
        f"{summary.rooms} rooms, {summary.rate_plans} rate plans, "
        f"{summary.inventory_days} inventory days, {summary.rate_days} rate days, "
        f"{summary.guests} guests, {summary.reservations} reservations, "
        f"{summary.channel_bookings} channel bookings in {summary.seconds:.1f} s"
    )
