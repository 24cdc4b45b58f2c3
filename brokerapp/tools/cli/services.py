"""``brokerapp services``: install, start, stop and inspect the local development servers."""

from __future__ import annotations

import sys

import click

from brokerapp.model.settings import Settings


@click.group()
def services() -> None:
    """Install, start, stop and inspect the local Kafka, schema registry and databases."""


@services.command("install")
@click.pass_obj
def services_install(settings: Settings) -> None:
    """Resolve the Kafka and Cassandra jars and the Apicurio archive from Maven Central."""
    from brokerapp.tools.services import Services

    Services(settings).install()
    click.echo(f"installed under {settings.data_dir / 'lib'}")


@services.command("up")
@click.option(
    "--brokers",
    type=click.IntRange(1, 3),
    default=1,
    show_default=True,
    help="Brokers in the local cluster: 1, or 3 for fault tests.",
)
@click.option(
    "--upstream",
    is_flag=True,
    help="Also start an upstream cluster and registry (the Rubin/ZTF side).",
)
@click.option("--no-registry", is_flag=True, help="Start Kafka only.")
@click.option(
    "--databases",
    is_flag=True,
    help="Also start MariaDB (Debian's mariadbd) and Cassandra 5.0, on the loopback address, "
    "and create MariaDB's broker database and account (its password generated once into "
    "<home>/mariadb/password unless BROKER_MARIADB_PASSWORD is set).",
)
@click.option(
    "--monitoring",
    is_flag=True,
    help="Also start Prometheus (Debian's `prometheus`) on 127.0.0.1:<prometheus_port>, "
    "scraping every worker's /metrics and evaluating deploy/prometheus/rules.yml.",
)
@click.pass_obj
def services_up(
    settings: Settings,
    brokers: int,
    upstream: bool,
    no_registry: bool,
    databases: bool,
    monitoring: bool,
) -> None:
    """Start the services and wait until each answers."""
    from brokerapp.tools.services import LOCAL_HOST, ServiceError, Services

    svc = Services(settings)
    try:
        started = svc.up(
            brokers=brokers,
            upstream=upstream,
            registry=not no_registry,
            databases=databases,
            monitoring=monitoring,
        )
    except ServiceError as exc:
        click.echo(f"services up failed: {exc}", err=True)
        sys.exit(1)
    for service in started:
        click.echo(f"{service.name:<22} up on {LOCAL_HOST}:{service.port}")


@services.command("down")
@click.pass_obj
def services_down(settings: Settings) -> None:
    """Stop every service started from this services home."""
    from brokerapp.tools.services import Services

    stopped = Services(settings).down()
    click.echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@services.command("reset")
@click.confirmation_option(prompt="Stop the services and delete all their data?")
@click.pass_obj
def services_reset(settings: Settings) -> None:
    """Stop the services and delete their data (downloaded jars are kept)."""
    from brokerapp.tools.services import Services

    Services(settings).reset()
    click.echo("services stopped and data deleted")


@services.command("status")
@click.pass_obj
def services_status(settings: Settings) -> None:
    """Report each service: up, starting or down."""
    from brokerapp.tools.services import Services

    states = Services(settings).status()
    if not states:
        click.echo("no services set up under " + str(settings.data_dir))
    for state in states:
        click.echo(state.line())
