"""The `clearport` command: the Typer app and the commands it registers.

Each command group is its own module; what they share at start-up is in cli/context.py. The
modules import wiring, the web stack and alembic inside the commands that use them, so
`clearport --help` loads none of it (docs/decisions/0010-cli-output.md).
"""

from __future__ import annotations

import typer

from clearport.cli.bins import bins_app
from clearport.cli.cloud import cloud_app
from clearport.cli.db import db_app
from clearport.cli.keys import keys_app
from clearport.cli.merchants import merchants_app
from clearport.cli.operators import operators_app
from clearport.cli.reconcile import reconcile, reconcile_fees
from clearport.cli.routing import routing_app
from clearport.cli.serve import run, serve
from clearport.cli.settle import payouts_app, settle
from clearport.cli.simulate import simulate_app
from clearport.cli.txlog import txlog_app
from clearport.cli.worker import janitor, worker

app = typer.Typer(help="Clearport: merchant services platform.", no_args_is_help=True)
# `--help` lists the commands, then the groups, each in the order registered here.
app.command()(worker)
app.command()(janitor)
app.command()(settle)
app.command()(reconcile)
app.command("reconcile-fees")(reconcile_fees)
app.command()(serve)
app.command()(run)
app.add_typer(db_app, name="db")
app.add_typer(operators_app, name="operators")
app.add_typer(merchants_app, name="merchants")
app.add_typer(keys_app, name="keys")
app.add_typer(txlog_app, name="txlog")
app.add_typer(payouts_app, name="payouts")
app.add_typer(cloud_app, name="cloud")
app.add_typer(simulate_app, name="simulate")
app.add_typer(bins_app, name="bins")
app.add_typer(routing_app, name="routing")
