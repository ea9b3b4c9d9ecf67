"""`smsgate product ...`: products (the `g` parameter), their price, carrier and caps."""

from __future__ import annotations

from typing import Annotated

import typer

from smsgate.cli.context import DataDir, open_database
from smsgate.cli.output import out, print_table, say
from smsgate.cli.values import NUMERIC_ARGS, Cap, Reset, caps, show_caps, whole_number
from smsgate.core.accounts import Product

group = typer.Typer(
    help="Products (the `g` parameter): price, carrier, templates.", no_args_is_help=True
)

ProductId = Annotated[str, typer.Argument(metavar="ID")]


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="product")


@group.command("add", context_settings=NUMERIC_ARGS)
def product_add(
    product_id: Annotated[str, typer.Argument(metavar="ID", help="The `g` value clients send.")],
    name: Annotated[str, typer.Argument(metavar="NAME")],
    carrier: Annotated[
        str,
        typer.Option(
            "--carrier",
            "--carriers",
            help="Carrier, or carriers in order of failover: A,B (see `smsgate carrier list`).",
        ),
    ] = "simulator",
    price: Annotated[str, typer.Option(help="Units charged per message unit.")] = "1",
    template_required: Annotated[
        bool, typer.Option("--template-required", help="Only approved templates (54).")
    ] = False,
    private: Annotated[
        bool, typer.Option("--private", help="Only for accounts granted it.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Add a product (goods id `g`)."""
    product = Product(
        product_id, name, whole_number(price, "--price"), carrier, template_required, private
    )
    with open_database(data_dir) as db:
        db.admin.add_product(product)
    out.print(f"added product {product_id} ({name})")


@group.command("set")
def product_set(
    product_id: ProductId,
    carriers: Annotated[
        str,
        typer.Option(
            help="Carriers in order: messages go to the first that serves the number and is "
            "up; one that fails is skipped for its cooling period (never sending twice).",
        ),
    ],
    data_dir: DataDir = None,
) -> None:
    """Route a product's messages through carriers, with failover in the order given."""
    with open_database(data_dir) as db:
        route = db.carrier_admin.set_route(product_id, carriers)
    say(f"product {product_id} now routes through {' -> '.join(route)}")


@group.command("list")
def product_list(data_dir: DataDir = None) -> None:
    """All products."""
    with open_database(data_dir) as db:
        products = db.admin.products()
    print_table(
        ("id", "name", "price", "carriers", "template", "visibility"),
        (
            (
                p.id,
                p.name,
                str(p.price),
                p.carrier,
                "required" if p.template_required else "-",
                "private" if p.private else "all accounts",
            )
            for p in products
        ),
    )


@group.command("limits")
def product_limits(
    product_id: ProductId,
    per_minute: Cap = None,
    per_hour: Cap = None,
    per_day: Cap = None,
    reset: Reset = False,
    data_dir: DataDir = None,
) -> None:
    """Per-number frequency caps for every account on one product."""
    values = caps(per_minute, per_hour, per_day, reset)
    with open_database(data_dir) as db:
        db.policy_admin.set_product_limits(product_id, values)
    out.print(f"limits for product {product_id}: {show_caps(values)}")
