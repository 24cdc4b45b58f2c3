"""``brokerapp topics`` and ``brokerapp replay``: describe, grow and delete topics; move groups."""

from __future__ import annotations

import click

from brokerapp.model.settings import Settings
from brokerapp.tools.cli.errors import needs_kafka


class _ListOrSubcommand(click.Group):
    """A group that lists when called bare or with topic names, and runs a sub-command by name.

    ``brokerapp topics [OPTIONS] [TOPIC...]`` lists; ``brokerapp topics grow ...`` grows. A
    sub-command is recognised only as the first word after the group's name, and then the
    group's own ``TOPIC`` argument is left out of parsing (it would swallow the sub-command's
    words). A topic named like a sub-command is listed with ``--pattern``.
    """

    _META_KEY = "brokerapp.tools.cli.topics"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse, leaving a leading sub-command and its words to the sub-command."""
        subcommand = bool(args) and args[0] in self.commands
        ctx.meta[self._META_KEY] = subcommand
        # Listing takes options after topic names too; a sub-command's options are its own.
        ctx.allow_interspersed_args = not subcommand
        return super().parse_args(ctx, args)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        """Drop the positional TOPIC argument when a sub-command follows."""
        params = super().get_params(ctx)
        if ctx.meta.get(self._META_KEY):
            params = [p for p in params if not isinstance(p, click.Argument)]
        return params


def _admin_errors():
    """Errors of ``brokerapp.adapters.topics`` that the commands report in one line and exit 1."""
    from confluent_kafka import KafkaException

    from brokerapp.adapters.topics import TopicsError

    return TopicsError, KafkaException, OSError


@click.group(cls=_ListOrSubcommand, invoke_without_command=True)
@click.argument("topic_names", metavar="[TOPIC]...", nargs=-1)
@click.option("--upstream", is_flag=True, help="Describe the upstream cluster's topics.")
@click.option("--pattern", default=None, help="Regular expression (search) of topics to show.")
@click.option(
    "--all", "include_internal", is_flag=True, help="Also show internal topics (leading _)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
@needs_kafka
def topics(
    ctx: click.Context,
    upstream: bool,
    pattern: str | None,
    include_internal: bool,
    as_json: bool,
    topic_names: tuple[str, ...] = (),
) -> None:
    """List topics (partitions, retention, disk, offsets, timestamps), or run a sub-command.

    Without TOPIC or --pattern every topic is listed except internal ones. Counts are
    earliest and latest offsets summed over partitions; "disk" sums every replica.
    """
    if ctx.invoked_subcommand is not None:
        return
    from brokerapp.adapters.topics import describe_topics, format_json, format_table

    settings: Settings = ctx.obj
    bootstrap = settings.upstream_feed_bootstrap if upstream else settings.kafka_bootstrap
    try:
        infos = describe_topics(bootstrap, topic_names, pattern, include_internal)
    except _admin_errors() as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(format_json(infos))
    elif infos:
        click.echo(format_table(infos))
    else:
        click.echo("no topics match", err=True)


@topics.command("grow")
@click.argument("topic")
@click.option(
    "--partitions",
    "-p",
    type=click.IntRange(min=1),
    required=True,
    help="New total partition count (more than now: Kafka cannot shrink a topic).",
)
@click.option("--upstream", is_flag=True, help="Grow a topic of the upstream cluster.")
@click.pass_obj
@needs_kafka
def topics_grow(settings: Settings, topic: str, partitions: int, upstream: bool) -> None:
    """Raise TOPIC's partition count; keys then hash to new partitions (see README)."""
    from brokerapp.adapters.topics import grow_topic

    bootstrap = settings.upstream_feed_bootstrap if upstream else settings.kafka_bootstrap
    try:
        result = grow_topic(bootstrap, topic, partitions)
    except _admin_errors() as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{result.topic}: {result.old} -> {result.new} partitions")


@click.command()
@click.argument("group")
@click.option(
    "--to-datetime",
    "to_datetime",
    default=None,
    metavar="ISO8601",
    help="First offset at or after this time (no timezone = UTC); partitions with nothing "
    "that late go to the latest offset.",
)
@click.option("--to-earliest", is_flag=True, help="Earliest offset held of each partition.")
@click.option("--to-latest", is_flag=True, help="Latest offset of each partition (skip all).")
@click.option(
    "--shift-by",
    type=int,
    default=None,
    metavar="N",
    help="Move each committed offset by N (negative = back), clamped to what is held; a "
    "partition without a committed offset counts as at its earliest offset.",
)
@click.option("--topic", "-t", default=None, help="Topic (default: the settings' alerts_topic).")
@click.option("--dry-run", is_flag=True, help="Print the new offsets without setting them.")
@click.pass_obj
@needs_kafka
def replay(
    settings: Settings,
    group: str,
    to_datetime: str | None,
    to_earliest: bool,
    to_latest: bool,
    shift_by: int | None,
    topic: str | None,
    dry_run: bool,
) -> None:
    """Reset GROUP's committed offsets on every partition of a local topic.

    The group must have no active members (stop its workers first); otherwise nothing is
    changed and the exit status is 1. Prints old -> new offset per partition.
    """
    from brokerapp.adapters.topics import ReplayTarget, parse_datetime
    from brokerapp.adapters.topics import replay as run_replay

    chosen = [to_datetime is not None, to_earliest, to_latest, shift_by is not None]
    if sum(chosen) != 1:
        raise click.UsageError(
            "give exactly one of --to-datetime, --to-earliest, --to-latest, --shift-by"
        )
    if to_datetime is not None:
        try:
            target = ReplayTarget.at(parse_datetime(to_datetime))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--to-datetime") from exc
    elif to_earliest:
        target = ReplayTarget.earliest()
    elif to_latest:
        target = ReplayTarget.latest()
    else:
        target = ReplayTarget.shift_by(shift_by)
    try:
        result = run_replay(
            settings.kafka_bootstrap, group, topic or settings.alerts_topic, target, dry_run
        )
    except _admin_errors() as exc:
        raise click.ClickException(str(exc)) from exc
    for line in result.lines():
        click.echo(line)


@topics.command("delete")
@click.argument("names", metavar="TOPIC...", nargs=-1, required=True)
@click.option("--upstream", is_flag=True, help="Delete topics of the upstream cluster.")
@click.pass_obj
@needs_kafka
def topics_delete(settings: Settings, names: tuple[str, ...], upstream: bool) -> None:
    """Delete the named topics that exist (their messages are gone for good)."""
    from brokerapp.adapters.kafka_admin import delete_topics

    bootstrap = settings.upstream_feed_bootstrap if upstream else settings.kafka_bootstrap
    try:
        deleted = delete_topics(bootstrap, list(names))
    except _admin_errors() as exc:
        raise click.ClickException(str(exc)) from exc
    for name in names:
        click.echo(f"{name}: {'deleted' if name in deleted else 'did not exist'}")
