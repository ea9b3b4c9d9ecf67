"""`smsgate template ...`: templates (报备) customers apply for and operators review."""

from __future__ import annotations

from typing import Annotated

import typer

from smsgate.cli.context import DataDir, open_database
from smsgate.cli.output import out, print_table
from smsgate.cli.values import Name
from smsgate.core.accounts import TemplateStatus

group = typer.Typer(
    help="Templates (报备): apply, approve, reject. Template-required products accept only "
    "content matching an approved template (54).",
    no_args_is_help=True,
)

TemplateId = Annotated[int, typer.Argument(metavar="ID")]


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="template")


@group.command("add")
def template_add(
    name: Name,
    text: Annotated[str, typer.Argument(help="e.g. '【短信宝】您的验证码是{code}'")],
    product: Annotated[str, typer.Option("--product", help="Product id (`g`).")] = "general",
    data_dir: DataDir = None,
) -> None:
    """Apply for a template on a product (pending until approved)."""
    with open_database(data_dir) as db:
        template_id = db.policy_admin.apply_template(name, product, text)
    out.print(f"template #{template_id} is pending: `smsgate template approve {template_id}`")


@group.command("approve")
def template_approve(
    template_id: TemplateId,
    note: Annotated[str | None, typer.Option(help="Kept with the review.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Approve a template: matching content is accepted on its product."""
    with open_database(data_dir) as db:
        record = db.policy_admin.review(template_id, approve=True, note=note)
    out.print(f"template #{record.id} approved for {record.username} on {record.product_id}")


@group.command("reject")
def template_reject(
    template_id: TemplateId,
    note: Annotated[str | None, typer.Option(help="Why, for the customer.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Reject a template (an approved one stops matching)."""
    with open_database(data_dir) as db:
        record = db.policy_admin.review(template_id, approve=False, note=note)
    out.print(f"template #{record.id} rejected")


@group.command("set-upstream")
def template_set_upstream(
    template_id: TemplateId,
    carrier: Annotated[str, typer.Option("--carrier", help="The upstream carrier's name.")],
    code: Annotated[
        str | None,
        typer.Option(help="The provider's template code (Aliyun SMS_..., Tencent TemplateId)."),
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Drop the mapping.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Map an approved template to its code at a template-based upstream (aliyun, tencent)."""
    if (code is None) == (not remove):
        raise typer.BadParameter("give --code CODE, or --remove")
    with open_database(data_dir) as db:
        record = db.policy_admin.set_upstream(template_id, carrier, None if remove else code)
    if remove:
        out.print(f"template #{record.id}: no code at {carrier} any more")
    else:
        out.print(f"template #{record.id} is sent through {carrier} as {code}")


@group.command("upstream-list")
def template_upstream_list(data_dir: DataDir = None) -> None:
    """Templates mapped to upstream providers' codes."""
    with open_database(data_dir) as db:
        rows = db.policy_admin.upstream_templates()
    print_table(
        ("template", "carrier", "code"),
        ((f"#{template_id}", carrier, code) for template_id, carrier, code in rows),
        empty="no template is mapped to an upstream code",
    )


@group.command("list")
def template_list(
    status: Annotated[TemplateStatus | None, typer.Option(help="Only this status.")] = None,
    account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Templates and their review status."""
    with open_database(data_dir) as db:
        rows = db.policy_admin.templates(status=status, username=account)
    print_table(
        ("id", "account", "product", "status", "text", "note"),
        ((str(r.id), r.username, r.product_id, r.status.value, r.text, r.note or "") for r in rows),
        empty="no templates",
    )
