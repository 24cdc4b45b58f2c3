"""Typed settings of the broker, read once from ``BROKER_``-prefixed environment variables.

Every component receives the one :class:`Settings` object built by :func:`load_settings`
(the CLI builds it at start-up and passes it on, e.g. to ``create_app(settings)``); nothing
reads the environment at import time. Each field below can be set as ``BROKER_<FIELD>``
(upper case), e.g. ``BROKER_KAFKA_BOOTSTRAP=127.0.0.1:9092``.

Addresses name the local services that ``brokerapp services up`` starts; the ports those
services listen on are taken from these addresses, so there is one source of truth for each.
Database hosts (``mariadb_host``, ``cassandra_contact_points``) likewise default to the
embedded local servers on 127.0.0.1.

Secrets (``mariadb_password``, ``cassandra_password``, ``web_token`` and the notifiers')
are :class:`pydantic.SecretStr`, set in the environment or, for the first three, when that
is empty, read from a file (``mariadb_password_file``, default ``<home>/mariadb/password``,
which ``services up --databases`` writes; ``cassandra_password_file``; ``web_token_file``):
read them with :meth:`Settings.mariadb_secret`, :meth:`Settings.cassandra_secret` and
:meth:`Settings.web_secret`. :meth:`Settings.masked`, hence ``brokerapp config``, prints
them masked, and nothing logs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from brokerapp.model.streams import load_descriptions, upstream_settings


class Settings(BaseSettings):
    """The broker's configuration (env prefix ``BROKER_``)."""

    model_config = SettingsConfigDict(env_prefix="BROKER_", extra="forbid")

    home: Path = Field(
        Path("var"),
        description="Folder for service data, logs, pid files and downloaded jars "
        "(relative paths are taken from the working directory).",
    )
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092",
        description="Bootstrap servers of the local Kafka cluster (comma separated host:port). "
        "The first entry's port is the port `services up` gives broker 1; the KRaft "
        "controller listens on that port + 1.",
    )
    upstream_bootstrap: str = Field(
        "127.0.0.1:9192",
        description="Bootstrap servers of the upstream cluster (Rubin/ZTF side). "
        "`services up --upstream` starts a single-broker stand-in there for tests and the demo.",
    )
    upstream_feed_bootstrap: str = Field(
        "127.0.0.1:9194",
        description="The embedded upstream stand-in's internal PLAINTEXT listener, standing "
        "for the upstream's own side: its producers (the samples and replays that `produce "
        "--upstream`, the tests, benches and fault suite write), its admin and its registry's "
        "journal. The broker itself reads the upstream only through `upstream_bootstrap`.",
    )
    upstream_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "SASL_SSL",
        description="How the broker connects to `upstream_bootstrap` (Rubin: SASL_SSL). "
        "The embedded upstream serves SASL_SSL with SCRAM-SHA-512 there.",
    )
    upstream_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism on the upstream (Rubin: SCRAM-SHA-512)."
    )
    upstream_sasl_username: str = Field(
        "brokerapp",
        description="SASL user name of the broker on the upstream. Rubin requires every "
        "consumer group ID to start with it (see `upstream_group_prefix`).",
    )
    upstream_sasl_password: SecretStr = Field(
        SecretStr(""),
        description="SASL password on the upstream (masked, never logged); when empty it is "
        "read from `upstream_sasl_password_file`.",
    )
    upstream_sasl_password_file: Path | None = Field(
        None,
        description="File holding the upstream SASL password (its first line); default "
        "`<home>/kafka-upstream/client.password`, which `services up --upstream` writes.",
    )
    upstream_ssl_cafile: Path | None = Field(
        None,
        description="CA certificate(s) (PEM) that sign the upstream brokers' certificates; "
        "default `<home>/tls/ca.pem` when that file exists (`services up --upstream` makes "
        "it), else the system's trust store.",
    )
    upstream_ssl_certfile: Path | None = Field(
        None, description="Client certificate (PEM) for upstreams that require one."
    )
    upstream_ssl_keyfile: Path | None = Field(
        None, description="Private key (PEM) of `upstream_ssl_certfile`."
    )
    upstream_group_prefix: str = Field(
        "brokerapp-",
        description="Prefix every consumer group ID on the upstream must start with (Rubin: "
        "the user name). The gateway refuses to start when `gateway_group` lacks it; empty "
        "turns the check off.",
    )
    upstream_connect_timeout: float = Field(
        20.0,
        gt=0,
        description="Seconds the gateway gives the upstream to accept its connection and "
        "credentials before it stops with the reason (wrong password, CA or group).",
    )
    registry_url: str = Field(
        "http://127.0.0.1:8081/apis/ccompat/v7",
        description="Base URL of the local schema registry's Confluent-compatible REST API. "
        "Point it at a Confluent Schema Registry or Karapace to replace Apicurio.",
    )
    upstream_registry_url: str = Field(
        "http://127.0.0.1:8082/apis/ccompat/v7",
        description="Base URL of the upstream schema registry (read by the gateway only).",
    )
    alerts_topic: str = Field(
        "alerts", description="The local buffer topic every branch reads from."
    )
    alerts_partitions: int = Field(
        12,
        ge=1,
        description="Partition count the gateway gives the `alerts` topic when it creates it. "
        "Raise it later with `brokerapp topics grow` (Kafka cannot shrink a topic).",
    )
    alerts_retention_ms: int = Field(
        7 * 24 * 3600 * 1000,
        ge=-1,
        description="`retention.ms` of the `alerts` buffer (7 days; -1 keeps everything). "
        "Its `cleanup.policy` is `delete`.",
    )
    gateway_topic_patterns: list[str] = Field(
        [r"^ztf_\d{8}_programid1$", r"^lsst-alerts-\d{8}$"],
        description="Regular expressions of the upstream topics the gateway mirrors "
        "(JSON list in the environment).",
    )
    gateway_group: str = Field(
        "brokerapp-gateway",
        description="Consumer group of the gateway on the upstream cluster; its committed "
        "offsets say what has been mirrored.",
    )
    gateway_deadletter_topic: str = Field(
        "gateway-deadletter",
        description="Local topic for upstream messages the gateway cannot mirror, with the "
        "reason in the `error-reason` header.",
    )
    gateway_batch: int = Field(
        500,
        ge=1,
        description="Most upstream messages the gateway takes per fetch; also the most "
        "duplicates one partition can get from a gateway crash.",
    )
    gateway_metadata_max_age_ms: int = Field(
        30_000,
        ge=1000,
        description="How often (ms) the gateway refreshes upstream metadata, so a new daily "
        "topic matching a pattern is mirrored within this time.",
    )
    gateway_retry_attempts: int = Field(
        8,
        ge=0,
        description="Registry failures (unreachable, unknown schema ID) the gateway retries "
        "per message, pausing its partition, before it dead-letters the message.",
    )
    gateway_retry_backoff: float = Field(
        0.5,
        gt=0,
        description="Seconds before the first retry; each further retry waits twice as long, "
        "up to `gateway_retry_backoff_max`.",
    )
    gateway_retry_backoff_max: float = Field(
        30.0, gt=0, description="Longest wait (s) between two retries of the gateway."
    )
    gateway_web_port: int = Field(
        6066, description="Port of the gateway worker's web view (status page)."
    )
    ztf_topic_pattern: str = Field(
        "ztf_{date}_programid1",
        description="Name of an upstream ZTF daily topic; `{date}` becomes YYYYMMDD.",
    )
    lsst_topic_pattern: str = Field(
        "lsst-alerts-{date}",
        description="Name of an upstream LSST daily topic; `{date}` becomes YYYYMMDD.",
    )
    max_message_bytes: int = Field(
        10 * 1024 * 1024,
        description="Largest Kafka message the brokers, producers and consumers accept "
        "(alerts with cutouts reach 190 kB; raise all limits together).",
    )
    kafka_heap: str = Field("512m", description="JVM heap (-Xms and -Xmx) of each Kafka broker.")
    registry_heap: str = Field("384m", description="JVM heap of each Apicurio Registry.")
    startup_timeout: float = Field(
        180.0, description="Seconds `services up` waits for each service to answer."
    )
    cli_connect_timeout: float = Field(
        5.0,
        gt=0,
        description="Seconds a `brokerapp` command waits for Kafka to answer its first request "
        "before it reports the server unreachable (the clients alone would retry for 30 s).",
    )
    store: str = Field(
        "rocksdb://",
        description="Faust table store URL (`rocksdb://` in deploy, `memory://` in unit tests).",
    )
    topic_prefix: str = Field(
        "",
        description="Prefix of the topics the branches create for themselves (dead letters, "
        "repartitioning, filter outputs). Empty in deploy; tests set a unique one.",
    )
    branch_retry_attempts: int = Field(
        8,
        ge=0,
        description="Times a branch retries decoding an alert while the local registry is "
        "unreachable or still starting (backoff as the gateway's: 0.5 s doubling to 30 s, so "
        "8 retries span about 90 s) before it dead-letters the alert.",
    )
    branch_transactions: bool = Field(
        False,
        description="Branches on the batch runtime commit their input offsets in the same "
        "Kafka transaction as their outputs, so readers with `isolation_level=read_committed` "
        "see every output exactly once, even after a `kill -9`. False: at least once (every "
        "send acknowledged before the commit). Turn it on only where every reader of those "
        "outputs is a batch-runtime branch: a Faust agent (watchlist, objects) reads "
        "transactional topics uncommitted and commits past each transaction marker only one "
        "commit interval at a time.",
    )
    branch_batch: int = Field(
        500,
        ge=1,
        description="Most messages a batch-running branch fetches, handles and commits at "
        "once (one transaction per batch).",
    )
    branch_batch_wait_ms: int = Field(
        20,
        ge=0,
        description="Longest wait (ms) of a batch-running branch for its fetch to fill "
        "(a batch goes as soon as anything has arrived and this has passed).",
    )
    branch_fetch_bytes: int = Field(
        50 * 1024 * 1024,
        ge=1024 * 1024,
        description="Most bytes one fetch of a batch-running branch returns (over all "
        "partitions; at least `max_message_bytes`).",
    )
    replication_factor: int = Field(
        1,
        ge=1,
        description="Replication factor of the topics workers create (outputs, dead letters, "
        "table changelogs); 3 on a three-broker cluster.",
    )
    solar_topic: str = Field(
        "alerts-solar", description="Output of the ssfilter branch: solar-system alerts."
    )
    nonsolar_topic: str = Field(
        "alerts-nonsolar", description="Output of the ssfilter branch: every other alert."
    )
    ssfilter_chain: Path = Field(
        Path("deploy/chains/ssfilter.toml"),
        description="Chain file of the ssfilter node (reloaded when it changes).",
    )
    ssfilter_web_port: int = Field(6067, description="Port of the ssfilter worker's web view.")
    node_name: str = Field(
        "node",
        description="Branch name of a generic processing node (`faust -A agents.node worker`): "
        "its app id is `<app_prefix>-<node_name>`, so each node is its own consumer group.",
    )
    node_chain: Path = Field(
        Path("deploy/chains/example.toml"),
        description="Chain file of the generic node (reloaded when it changes).",
    )
    node_web_port: int = Field(6068, description="Port of the generic node's web view.")
    filters: list[int] = Field(
        list(range(1, 101)),
        description="Which of the registered filters (1-based: 7 = Filter007) the filters "
        "branch runs (JSON list in the environment).",
    )
    filters_branch: str = Field(
        "filters",
        description="Branch name of the filters worker (app id `<app_prefix>-<this>`); "
        "`brokerapp filter ... N` uses `filterNNN`, so each runs as its own consumer group.",
    )
    filters_web_port: int = Field(6069, description="Port of the filters worker's web view.")
    filters_window_seconds: float = Field(
        3600.0,
        gt=0,
        description="Window (s) of the per-visit counts: a visit is counted over the current "
        "and the previous window (so at most 20 per visit even across a window boundary), and "
        "counts older than two windows expire.",
    )
    watchlist_source_topic: str = Field(
        "alerts-nonsolar",
        description="Topic the watchlist branch matches (the ssfilter's non-solar stream).",
    )
    ss_watchlist_source_topic: str = Field(
        "alerts-solar",
        description="Topic the solar-system watchlists are matched on (ssfilter's solar stream).",
    )
    watchlist_control_topic: str = Field(
        "watchlist-control",
        description="Compacted topic of watchlist commands (put or delete, keyed by watchlist "
        "ID); `brokerapp watchlist` and the REST endpoint write it, every worker applies it.",
    )
    annotations_topic: str = Field(
        "annotations", description="Output: one JSON Annotation per watchlist match."
    )
    annotated_alerts_topic: str = Field(
        "annotated-alerts",
        description="Output: the alert with all its annotations, Avro (registered locally).",
    )
    watchlist_topics: bool = Field(
        False,
        description="Also send each AnnotatedAlert to a topic of its own watchlist, "
        "`<topic_prefix>watchlist-<watchlist ID>` (for users who follow one watchlist).",
    )
    watchlist_web_port: int = Field(6070, description="Port of the watchlist worker's web view.")
    watchlist_chunk_entries: int = Field(
        5000,
        gt=0,
        description="Entries per chunk message of a watchlist upload (CLI and REST; about 80 "
        "bytes an entry, so 5000 make some 400 kB, under Kafka's default 1 MB message limit). "
        "Chunks are staged under a version and put in force by one commit message.",
    )
    watchlist_upload_max_bytes: int = Field(
        256 * 1024 * 1024,
        gt=0,
        description="Largest watchlist file the REST view accepts (streamed in; a CSV entry "
        "is about 50 bytes, so 256 MiB hold some 5 million).",
    )
    crossmatch_chain: Path = Field(
        Path("deploy/chains/crossmatch.toml"),
        description="Chain file of the crossmatch node (its `catalogue_match` names the "
        "catalogue file, radius and columns).",
    )
    crossmatch_web_port: int = Field(6071, description="Port of the crossmatch worker's web view.")
    overview_port: int = Field(
        6060, description="Port of `brokerapp overview`, the page over every worker."
    )
    chain_poll_seconds: float = Field(
        1.0, gt=0, description="How often (s) a node checks its chain file for changes."
    )
    app_prefix: str = Field(
        "brokerapp",
        description="Prefix of every Faust app id (`<prefix>-<branch>`), hence of consumer "
        "groups and changelog topics. Change it to run a second, independent broker on the "
        "same cluster (tests do).",
    )
    instance_id: str = Field(
        "1",
        description="This worker's identity among the workers of its branch, for Kafka's "
        "static group membership: a worker restarted with the same identity (after a crash, "
        "even kill -9) gets its partitions back at once instead of after the session timeout. "
        "Give each worker of one branch its own.",
    )
    state_dir: Path | None = Field(
        None,
        description="Folder of the workers' table stores (one subfolder per branch); "
        "default `<home>/faust`.",
    )
    web_bind: str = Field("127.0.0.1", description="Address each worker's web view binds to.")
    web_port: int = Field(6066, description="Port of the worker's web view.")
    web_auth: Literal["auto", "always"] = Field(
        "auto",
        description="When the workers' write endpoints (watchlist PUT and DELETE) need "
        "`Authorization: Bearer <web_token>`: `auto` whenever `web_bind` is not a loopback "
        "address, `always` on every address. Read-only pages stay open either way.",
    )
    web_token: SecretStr = Field(
        SecretStr(""),
        description="Bearer token of the workers' write endpoints (masked by `brokerapp "
        "config`, never logged); when empty it is read from `web_token_file`. A worker with "
        "write endpoints refuses to start when a token is needed and none is set.",
    )
    web_token_file: Path | None = Field(
        None,
        description="File holding the web token (its first line), used when `web_token` is empty.",
    )
    mariadb_host: str = Field(
        "127.0.0.1",
        description="Host name or address of the MariaDB server the sinks and the CLI use "
        "(the local server of `services up --databases` listens on 127.0.0.1).",
    )
    mariadb_port: int = Field(
        3306,
        description="TCP port of the MariaDB server (the local one that `services up "
        "--databases` starts listens there; its root is reachable only through its unix socket "
        "under the home).",
    )
    mariadb_user: str = Field(
        "broker",
        description="MariaDB account the sinks and the CLI log in with. `services up "
        "--databases` creates it locally (`<user>@127.0.0.1`) with all privileges on "
        "`mariadb_database`.",
    )
    mariadb_password: SecretStr = Field(
        SecretStr(""),
        description="Password of `mariadb_user` (masked by `brokerapp config`, never logged). "
        "When empty it is read from `mariadb_password_file`.",
    )
    mariadb_password_file: Path | None = Field(
        None,
        description="File holding the MariaDB password (its first line), used when "
        "`mariadb_password` is empty; default `<home>/mariadb/password`, which `services up "
        "--databases` writes (mode 0600) with a generated password for the local server.",
    )
    mariadb_database: str = Field(
        "broker",
        description="MariaDB database that `services up --databases` creates "
        "(letters, digits and underscores).",
    )
    cassandra_contact_points: list[str] = Field(
        ["127.0.0.1"],
        description="Host names or addresses of the Cassandra nodes the driver first connects "
        "to (JSON list in the environment); it discovers the others from them. The local node "
        "of `services up --databases` listens on 127.0.0.1.",
    )
    cassandra_port: int = Field(
        9042,
        description="CQL native transport port of the Cassandra nodes (the local node that "
        "`services up --databases` starts listens there).",
    )
    cassandra_local_datacenter: str = Field(
        "datacenter1",
        description="Datacenter whose nodes serve the requests (the driver's DC-aware load "
        "balancing; LOCAL_QUORUM counts replicas there). The local single node, with "
        "SimpleSnitch, is in `datacenter1`.",
    )
    cassandra_user: str = Field(
        "broker",
        description="Cassandra role to log in as (PasswordAuthenticator); empty for a cluster "
        "without authentication. `services up --databases` creates it on the local node.",
    )
    cassandra_password: SecretStr = Field(
        SecretStr(""),
        description="Password of `cassandra_user` (masked by `brokerapp config`, never "
        "logged). When empty it is read from `cassandra_password_file`, if that is set.",
    )
    cassandra_password_file: Path | None = Field(
        None,
        description="File holding the Cassandra password (its first line), used when "
        "`cassandra_password` is empty; default `<home>/cassandra/password`, which `services "
        "up --databases` writes (mode 0600) with a generated password for the local node.",
    )
    cassandra_storage_port: int = Field(
        7000,
        description="Internode (gossip) port of the local Cassandra node that `services up "
        "--databases` starts.",
    )
    cassandra_heap: str = Field("1G", description="JVM heap (-Xms and -Xmx) of the Cassandra node.")
    cassandra_keyspace: str = Field(
        "broker",
        description="Cassandra keyspace of the sinks' tables (`brokerapp db migrate` creates "
        "it; letters, digits and underscores).",
    )
    cassandra_replication_factor: int = Field(
        1,
        ge=1,
        description="Replication factor `db migrate` gives a new keyspace (SimpleStrategy), "
        "unless `cassandra_replication` names datacenters.",
    )
    # --- database security ---
    mariadb_ssl_ca: Path | None = Field(
        None,
        description="CA file (PEM) that signed the MariaDB server's certificate: when set, "
        "the sinks and the CLI connect with TLS and verify the server's certificate and name.",
    )
    mariadb_ssl_cert: Path | None = Field(
        None,
        description="Client certificate (PEM) shown to MariaDB over TLS (with `mariadb_ssl_key`"
        "; only with `mariadb_ssl_ca`).",
    )
    mariadb_ssl_key: Path | None = Field(
        None, description="Private key (PEM) of `mariadb_ssl_cert`."
    )
    cassandra_ssl_ca: Path | None = Field(
        None,
        description="CA file (PEM) that signed the Cassandra nodes' certificates: when set, "
        "the driver connects with TLS (client encryption) and verifies the nodes' certificates.",
    )
    cassandra_replication: dict[str, int] = Field(
        {},
        description="Replication of the keyspace `db migrate` creates, per datacenter (JSON "
        'object in the environment, e.g. `{"dc1": 3, "dc2": 2}`): NetworkTopologyStrategy. '
        "Empty: SimpleStrategy with `cassandra_replication_factor` (the local single node).",
    )
    cassandra_admin_user: str = Field(
        "broker_admin",
        description="Superuser that `services up --databases` creates on the local Cassandra "
        "node in place of the default `cassandra` role (which it drops); its generated "
        "password is in `<home>/cassandra/admin.password` (mode 0600).",
    )
    candidates_topic: str = Field(
        "candidates",
        description="Output of the candidates worker: one CandidateUpdate (JSON) per non-solar "
        "alert, keyed by object ID, so the topic is partitioned by object.",
    )
    ss_candidates_topic: str = Field(
        "ss-candidates",
        description="Output of the candidates worker: one CandidateUpdate (JSON) per "
        "solar-system alert, keyed by the solar-system object's name.",
    )
    candidate_object_updates_topic: str = Field(
        "candidate-object-updates",
        description="Output of the objects worker: each candidate with its object's "
        "statistics after it (JSON, keyed by object ID).",
    )
    objects_topic: str = Field(
        "objects",
        description="Output of the objects worker: the latest ObjectUpdate (JSON) of each "
        "object, keyed by object ID (compacted).",
    )
    candidates_web_port: int = Field(6072, description="Port of the candidates worker's web view.")
    objects_web_port: int = Field(6073, description="Port of the objects worker's web view.")
    mariadb_sink_web_port: int = Field(
        6074, description="Port of the MariaDB sink worker's web view."
    )
    cassandra_sink_web_port: int = Field(
        6075, description="Port of the Cassandra sink worker's web view."
    )
    history_length: int = Field(
        100,
        ge=1,
        description="Detections kept per object in the objects table (the most recent).",
    )
    rate_window_days: float = Field(
        10.0,
        gt=0,
        description="Rise/decline rate per band: least-squares slope of magnitude over the "
        "band's detections within this many days of its latest one.",
    )
    colour_window_days: float = Field(
        1.0,
        gt=0,
        description="Colour at the latest epoch: latest magnitudes of two bands, each measured "
        "within this many days of the object's latest detection.",
    )
    sink_batch_size: int = Field(
        500, ge=1, description="Most messages a database sink writes in one batch."
    )
    sink_batch_seconds: float = Field(
        0.2,
        gt=0,
        description="Longest a database sink waits for its fetch to fill before writing what "
        "it has.",
    )
    sink_concurrency: int = Field(
        64,
        ge=1,
        description="Most statements a Cassandra sink has in flight at once (and connections "
        "in a MariaDB sink's pool is min(this, 8)).",
    )
    cassandra_batch_rows: int = Field(
        50,
        ge=1,
        description="Most rows a Cassandra sink puts in one UNLOGGED batch (rows the same "
        "replica owns, so one node takes the whole batch); 1 sends one INSERT per row. "
        "Measured here: batches of 50 cost the node about a sixth of the CPU per row.",
    )
    cassandra_batch_bytes: int = Field(
        8_192,
        ge=1,
        description="Most bytes of bound values in one Cassandra batch. Keep it well under "
        "the nodes' `batch_size_fail_threshold` (Cassandra's default 50 KiB), which counts the "
        "whole mutation, several times its values (200 candidate rows of 16 KiB of values were "
        "refused here); a refused batch is written again row by row, so nothing is lost.",
    )
    sink_remember_rows: int = Field(
        1_000_000,
        ge=0,
        description="Keys of detections and annotations a sink remembers having stored (the "
        "latest), so that the previous detections each alert repeats are not rewritten "
        "(about 100 bytes each; 0 rewrites every row).",
    )
    sink_retry_backoff: float = Field(
        0.5, gt=0, description="First delay (s) before a sink retries a failed database write."
    )
    sink_retry_backoff_max: float = Field(
        15.0,
        gt=0,
        description="Longest delay (s) between a sink's retries; it retries until the database "
        "answers, without committing the batch's offsets.",
    )
    # -- Lean internal streams and producer tuning (issue 14 items 4-5). Defaults chosen by
    # bench/bench_lean.py (figures in bench/results/lean.md); the runtime reads these.
    lean_streams: bool = Field(
        True,
        description="Split streams and internal topics carry alerts without their cutouts "
        "(the same schema and schema ID, each cutout null: brokerapp.wire.lean), the cutouts "
        "kept once in `cutouts_topic`; the `alerts` buffer keeps whole alerts either way. "
        "False: every topic carries the full bytes.",
    )
    cutouts_topic: str = Field(
        "cutouts",
        description="Compacted topic of each alert's cutouts (key: alert ID in decimal, value: "
        "a brokerapp.cutouts_v1 Avro body), read by `brokerapp cutouts ALERT_ID`.",
    )
    local_compression: Literal["none", "gzip", "lz4", "zstd"] = Field(
        "none",
        description="Compression of the batches the broker's producers write to the local "
        "cluster (faust `producer_compression_type`, aiokafka `compression_type`; none = no "
        "codec). lz4 and zstd need the `cramjam` package in aiokafka (not installed; zstd "
        "is the choice once it is: lean alerts 3.3x smaller at ~15 us/alert); aiokafka's gzip "
        "is Python's at level 9: ~0.12 ms more per lean ZTF alert, 1.5 ms (ZTF) to 50 ms "
        "(LSST) per whole alert.",
    )
    producer_linger_ms: int = Field(
        5,
        ge=0,
        description="How long (ms) a producer waits to fill a batch before sending it "
        "(faust `producer_linger` is this / 1000 s; aiokafka `linger_ms`).",
    )
    producer_batch_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Largest batch (bytes) a producer builds per partition (faust "
        "`producer_max_batch_size`, aiokafka `max_batch_size`); their default, 16 KiB, holds "
        "no alert with cutouts and gave 2x (whole) to 4x (lean) fewer alerts/s. At most "
        "`max_message_bytes`.",
    )
    # -- Notifications: VOEvent over VTP, email, webhooks (issue 16 items 2-4). Read by
    # agents/voevent.py, agents/email_notify.py, agents/webhooks.py and brokerapp/runtime/notify.py.
    voevents_topic: str = Field(
        "voevents", description="Topic of the VOEvent 2.0 packets (XML bytes, keyed by object)."
    )
    voevent_web_port: int = Field(6085, description="Port of the voevent worker's web view.")
    email_web_port: int = Field(
        6086, description="Port of the email worker's web view (status, unsubscribe links)."
    )
    webhooks_web_port: int = Field(6087, description="Port of the webhooks worker's web view.")
    notify_state_dir: Path | None = Field(
        None,
        description="Folder of the notifiers' delivery ledgers (SQLite, one per worker: what "
        "is queued, sent, held for a digest, retried or dead-lettered); default "
        "`<home>/notify`. Keep it on a persistent disk: a restart reads it back.",
    )
    notify_subscriptions: Path = Field(
        Path("deploy/notify/subscriptions.toml"),
        description="TOML file of the email and webhook subscriptions (per watchlist ID or "
        "annotation source); re-read when it changes.",
    )
    notify_poll_seconds: float = Field(
        1.0, gt=0, description="How often (s) the email and webhook senders look for work."
    )
    notify_retry_backoff: float = Field(
        1.0, gt=0, description="First delay (s) before a failed email or webhook is retried."
    )
    notify_retry_backoff_max: float = Field(
        300.0, gt=0, description="Longest delay (s) between retries of an email or webhook."
    )
    alert_url_template: str = Field(
        "http://127.0.0.1:6060/alerts/{survey}/{alert_id}",
        description="Link back to an alert in VOEvents, emails and webhooks (`{survey}`, "
        "`{alert_id}` and `{object_id}` are filled in).",
    )
    voevent_authority: str = Field(
        "broker.example.org",
        description="IVOA authority of the VOEvent IVORNs: "
        "`ivo://<authority>/<voevent_stream>#<kind>-<alert ID>`.",
    )
    voevent_stream: str = Field("alerts", description="Stream part of the VOEvent IVORNs.")
    voevent_author: str = Field(
        "Alert broker", description="Author shortName in each VOEvent's Who."
    )
    voevent_contact_email: str = Field(
        "broker@example.org", description="Author contactEmail in each VOEvent's Who."
    )
    vtp_host: str = Field(
        "127.0.0.1", description="Address the VOEvent Transport Protocol broadcaster binds."
    )
    vtp_port: int = Field(
        8099, description="TCP port of the VTP broadcaster subscribers connect to."
    )
    vtp_iamalive_seconds: float = Field(
        60.0, gt=0, description="Interval (s) of the VTP iamalive sent to each subscriber."
    )
    vtp_ack_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="How long (s) a VTP subscriber may take to acknowledge an event, or "
        "answer an iamalive, before it is disconnected.",
    )
    smtp_host: str = Field("127.0.0.1", description="SMTP server host for the emails.")
    smtp_port: int = Field(8025, description="SMTP server port.")
    smtp_starttls: bool = Field(
        False, description="Upgrade the SMTP connection with STARTTLS (required if true)."
    )
    smtp_tls_ca_file: Path | None = Field(
        None, description="CA bundle verifying the SMTP server's certificate (default: system)."
    )
    smtp_user: str = Field("", description="SMTP AUTH user name (empty: no authentication).")
    smtp_password: SecretStr = Field(SecretStr(""), description="SMTP AUTH password.")
    smtp_timeout_seconds: float = Field(10.0, gt=0, description="SMTP connect/command timeout.")
    email_from: str = Field("broker@localhost", description="From address of the emails.")
    email_digest_seconds: float = Field(
        3600.0,
        gt=0,
        description="Digest period (s): at most one digest per subscription per period, sent "
        "after the period ends, with what the period held back.",
    )
    email_rate_limit: int = Field(
        20,
        ge=0,
        description="Per-alert emails a recipient gets per `email_rate_window_seconds`; "
        "alerts beyond it are held back and folded into the next digest.",
    )
    email_rate_window_seconds: float = Field(
        3600.0, gt=0, description="Window (s) of the per-recipient rate limit."
    )
    email_digest_plots: int = Field(
        5, ge=0, description="Most light-curve images (distinct objects) in one digest."
    )
    email_public_url: str = Field(
        "http://127.0.0.1:6086",
        description="Base URL of the email worker's web view, as recipients reach it (the "
        "unsubscribe links point there).",
    )
    email_unsubscribe_secret: SecretStr = Field(
        SecretStr("change-me"),
        description="Key of the HMAC that signs unsubscribe links (set it in deploy).",
    )
    webhook_retry_attempts: int = Field(
        6, ge=1, description="Attempts per webhook before it is dead-lettered."
    )
    webhook_timeout_seconds: float = Field(10.0, gt=0, description="Timeout of one POST (s).")
    webhook_ca_file: Path | None = Field(
        None, description="CA bundle verifying subscribers' HTTPS certificates (default: system)."
    )
    # -- User filters in sandboxes (issue 17 items 1-3). Read by brokerapp/runtime/userfilter/.
    userfilter_bwrap: str = Field("bwrap", description="The bubblewrap executable.")
    userfilter_python: str = Field(
        "/usr/bin/python3",
        description="Python interpreter run inside the sandboxes (under /usr: the sandbox sees "
        "only /usr, the filter's code and the SDK; stdlib only).",
    )
    userfilter_uid_base: int = Field(
        61000,
        ge=1000,
        description="First of the unprivileged uids given to sandboxes, one per sandbox of a "
        "runner process (no account needed); give each runner process its own range. Reserve "
        "the range: no account or other process may use these uids (a stopped sandbox's "
        "leftovers are found, and killed, by uid).",
    )
    userfilter_answer_timeout: float = Field(
        5.0,
        gt=0,
        description="Seconds a filter may take to answer one alert before it is "
        "killed and restarted.",
    )
    userfilter_start_timeout: float = Field(
        10.0, gt=0, description="Seconds a filter may take to start and say hello."
    )
    userfilter_window: int = Field(
        16, ge=1, description="Alerts written to a filter's pipe ahead of its answers."
    )
    userfilter_max_restarts: int = Field(
        5, ge=0, description="Consecutive faults after which a filter is given up (failed)."
    )
    userfilter_restart_initial: float = Field(
        0.5, gt=0, description="First delay (s) before a faulted filter is restarted."
    )
    userfilter_restart_max: float = Field(
        30.0, gt=0, description="Longest delay (s) before a faulted filter is restarted."
    )
    userfilter_cpu_seconds: int = Field(
        3600, ge=1, description="RLIMIT_CPU (s) of a sandbox's processes (a backstop)."
    )
    userfilter_memory_mb: int = Field(
        512, ge=16, description="RLIMIT_AS (MiB) of a sandbox's processes."
    )
    userfilter_open_files: int = Field(64, ge=8, description="RLIMIT_NOFILE of a sandbox.")
    userfilter_processes: int = Field(
        32,
        ge=3,
        description="RLIMIT_NPROC (processes and threads, bwrap's two included) of a sandbox, "
        "and its cgroup pids.max.",
    )
    userfilter_tmp_mb: int = Field(
        64, ge=1, description="Size (MiB) of a sandbox's private tmpfs /tmp (host memory)."
    )
    userfilter_cpu_share: float = Field(
        1.0, ge=0, description="CPU quota of a sandbox in cores (cgroup v1 cpu; 0: none)."
    )
    userfilter_cgroups: bool = Field(
        True, description="Give each sandbox cgroup v1 pids and cpu groups where writable."
    )
    userfilter_batch: int = Field(
        100, ge=1, description="Alerts a runner reads, filters and commits per batch."
    )
    # --- archivers ---
    # Avro backup and Parquet archivers (issue 16 item 1): agents/avro_archive.py,
    # agents/parquet_archive.py, brokerapp/adapters/archive/.
    archive_root: str | None = Field(
        None,
        description="Root the archivers write under: a local path or any fsspec URL "
        "(`s3://bucket/prefix`, `memory://x`); default `<home>/archive`. Read it with "
        "`Settings.archive_url`.",
    )
    archive_block_records: int = Field(
        500,
        ge=1,
        description="Offsets per Avro backup file: the records of partition offsets "
        "`[k*n, (k+1)*n)` of one survey, night, hour and schema go to one file, so a replay "
        "rewrites the same file rather than adding one. The worker holds the bodies of the "
        "current block of each partition in memory (up to n x 190 KB for Rubin alerts).",
    )
    archive_parquet_block_records: int = Field(
        2000,
        ge=1,
        description="Offsets per Parquet file (the same scheme as `archive_block_records`; "
        "rows are a few KB, so blocks can be larger: each row is held in memory, about "
        "20 KB for a ZTF alert with 30 previous detections).",
    )
    archive_avro_codec: Literal["deflate", "zstandard", "null"] = Field(
        "zstandard",
        description="Codec of the Avro backup container files (see bench/bench_archive.py).",
    )
    archive_parquet_row_group_rows: int = Field(
        500,
        ge=1,
        description="Rows per Parquet row group (a file has at most "
        "`archive_parquet_block_records` rows): the unit a scan reads or skips by its "
        "column statistics.",
    )
    archive_parquet_compression: Literal["zstd", "snappy", "gzip", "none"] = Field(
        "zstd", description="Compression of the Parquet columns."
    )
    archive_linger_seconds: float = Field(
        1.0,
        ge=0,
        description="Pause (s) of an archiver after a batch smaller than `branch_batch` "
        "(it is ahead of the stream), so that its next batch rewrites each block file with "
        "more alerts at once.",
    )
    avro_archive_web_port: int = Field(
        6088, description="Port of the Avro backup archiver's web view."
    )
    parquet_archive_web_port: int = Field(
        6089, description="Port of the Parquet archiver's web view."
    )
    # --- image and light-curve archivers ---
    # Cutout images and light curves (issue 16 item 1): agents/cutout_archive.py,
    # agents/lightcurve_archive.py, brokerapp/domain/cutout_images.py and lightcurve_files.py.
    cutout_archive_web_port: int = Field(
        6090, description="Port of the cutout image archiver's web view."
    )
    lightcurve_archive_web_port: int = Field(
        6091, description="Port of the light-curve archiver's web view."
    )
    cutout_jpeg_quality: int = Field(
        90, ge=1, le=95, description="JPEG quality of the archived cutout pictures (1-95)."
    )
    lightcurve_source_topic: str | None = Field(
        None,
        description="What the light-curve archiver reads: each object's whole history, JSON, "
        "keyed by object ID (JSON string), one record per change. Default (None): the "
        "objects worker's history changelog, `<app_prefix>-objects-object_history-changelog`; "
        "see `agents.lightcurve_archive.source_topic`.",
    )
    archive_delay_ms: float = Field(
        0.0,
        ge=0,
        description="Extra time (ms) the image and light-curve archivers spend per alert or "
        "object, asleep (the event loop is free): a way to run a slow archiver, in tests "
        "and demos, and check that the fast branches do not wait for it.",
    )

    # --- streams and federation --- (issue 15 items 6-7: brokerapp/model/streams.py,
    # brokerapp/runtime/streams.py, brokerapp/tools/federation.py; `streams describe`,
    # the overview's /streams/, `registry export|import`).
    upstream_description: Path | None = Field(
        None,
        description="An upstream's stream description file (one JSON description or a list, "
        "e.g. saved from another broker's /streams/). When set, the gateway's "
        "`upstream_bootstrap`, `gateway_topic_patterns` and `upstream_registry_url` are taken "
        "from it (they override those settings); it is validated against the JSON Schema.",
    )
    streams_bootstrap: str = Field(
        "",
        description="Kafka bootstrap servers published in the stream descriptions, as readers "
        "reach the cluster (empty: `kafka_bootstrap`).",
    )
    streams_registry_url: str = Field(
        "",
        description="Registry URL published in the stream descriptions (empty: `registry_url`).",
    )
    streams_auth: str = Field(
        "urn:brokerapp:auth:none",
        pattern=r"^urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:\S+$",
        description="Authentication method of the published cluster, as a URN "
        "(`urn:brokerapp:auth:none`, or e.g. `urn:brokerapp:auth:sasl-ssl:scram-sha-512`).",
    )
    streams_public_url: str = Field(
        "",
        description="Base URL of the overview as readers reach it; schema files of the "
        "`json-file` streams are published under `<this>/streams/schemas/` (empty: "
        "`http://<web_bind>:<overview_port>`).",
    )
    streams_vtp_endpoint: str = Field(
        "",
        description="VTP endpoint published for VOEvent streams, `tcp://host:port` (empty: "
        "`tcp://<vtp_host>:<vtp_port>`).",
    )

    # --- monitoring --- (issue 15 item 9: brokerapp/runtime/metrics.py,
    # brokerapp/tools/services/monitoring.py, deploy/prometheus/, deploy/grafana/;
    # `services up --monitoring`).
    prometheus_port: int = Field(
        6095,
        description="Port of the Prometheus server `services up --monitoring` starts (bound "
        "to 127.0.0.1; its data under `<home>/monitoring`).",
    )
    prometheus_scrape_seconds: float = Field(
        5.0, gt=0, description="How often (s) Prometheus scrapes every worker's `/metrics`."
    )
    prometheus_retention: str = Field(
        "15d",
        pattern=r"^[0-9]+(ms|s|m|h|d|w|y)$",
        description="How long Prometheus keeps samples (`--storage.tsdb.retention.time`).",
    )
    overview_history_seconds: float = Field(
        600.0,
        gt=0,
        description="How far back (s) the overview's page draws each worker's lag and p99 "
        "latency, from the polls it keeps in memory.",
    )
    overview_poll_seconds: float = Field(
        5.0, gt=0, description="How often (s) the overview polls every worker for that history."
    )
    prometheus_extra_targets: list[str] = Field(
        [],
        description="More `host:port` web views to scrape besides the workers' `*_web_port` "
        "settings (e.g. a second filters worker; JSON list in the environment).",
    )

    # --- registry security --- (issue 15 item 2: brokerapp/adapters/registry.py
    # registry_access/registry_client, brokerapp/tools/services/tls.py ensure_registry_tls).
    registry_ca_file: Path | None = Field(
        None,
        description="CA certificate(s) (PEM) trusted for an `https` `registry_url` "
        "(Confluent's `schema.registry.ssl` truststore); unset: the system store.",
    )
    registry_basic_auth_user_info: SecretStr = Field(
        SecretStr(""),
        description="Basic-auth credentials of the local registry, `user:password` "
        "(Confluent's `basic.auth.user.info`; masked, never logged). Empty: the URL's own "
        "user-info, if any.",
    )
    upstream_registry_ca_file: Path | None = Field(
        None,
        description="CA certificate(s) (PEM) trusted for an `https` `upstream_registry_url`; "
        "unset: the system store plus the upstream Kafka CA (`upstream_ssl_cafile`, default "
        "the project CA `<home>/tls/ca.pem` when it exists, which also signs the embedded "
        "registry's certificate when its URL is `https`).",
    )
    upstream_registry_basic_auth_user_info: SecretStr = Field(
        SecretStr(""),
        description="Basic-auth credentials of the upstream registry, `user:password` "
        "(Confluent's `basic.auth.user.info`; masked). Empty: the URL's own user-info, if any.",
    )

    @model_validator(mode="after")
    def _apply_upstream_description(self) -> Settings:
        """Take the gateway's upstream settings from ``upstream_description`` when it is set."""
        if self.upstream_description is not None:
            taken = upstream_settings(load_descriptions(self.upstream_description))
            for name, value in taken.items():
                setattr(self, name, value)
        return self

    @property
    def data_dir(self) -> Path:
        """Absolute services home."""
        return self.home.resolve()

    @property
    def faust_dir(self) -> Path:
        """Absolute folder of the workers' table stores."""
        return (self.state_dir or self.home / "faust").resolve()

    @property
    def archive_url(self) -> str:
        """Root of the archive files: `archive_root`, or the absolute `<home>/archive`."""
        return self.archive_root or str((self.home / "archive").resolve())

    @property
    def notify_dir(self) -> Path:
        """Absolute folder of the notifiers' delivery ledgers."""
        return (self.notify_state_dir or self.home / "notify").resolve()

    def kafka_port(self) -> int:
        """Port of broker 1 of the local cluster, from the first bootstrap address."""
        return _port_of(self.kafka_bootstrap.split(",")[0])

    def upstream_kafka_port(self) -> int:
        """Port of the upstream stand-in broker, from the first upstream bootstrap address."""
        return _port_of(self.upstream_bootstrap.split(",")[0])

    def upstream_feed_port(self) -> int:
        """Port of the upstream stand-in's internal listener, from ``upstream_feed_bootstrap``."""
        return _port_of(self.upstream_feed_bootstrap.split(",")[0])

    def registry_port(self) -> int:
        """Port of the local registry, from its URL."""
        return _url_port(self.registry_url)

    def upstream_registry_port(self) -> int:
        """Port of the upstream registry, from its URL."""
        return _url_port(self.upstream_registry_url)

    @property
    def mariadb_password_path(self) -> Path:
        """Absolute path of the MariaDB password file (``mariadb_password_file`` or default)."""
        return (self.mariadb_password_file or self.home / "mariadb" / "password").resolve()

    def mariadb_secret(self) -> SecretStr:
        """Return the MariaDB password: ``mariadb_password``, else the password file's.

        Returns
        -------
        SecretStr
            Empty when neither is set (the file does not exist).
        """
        return _secret(self.mariadb_password, self.mariadb_password_path)

    def cassandra_secret(self) -> SecretStr:
        """Return the Cassandra password: ``cassandra_password``, else the password file's.

        Returns
        -------
        SecretStr
            Empty when neither is set.
        """
        return _secret(self.cassandra_password, self.cassandra_password_path)

    @property
    def cassandra_password_path(self) -> Path:
        """Absolute path of the Cassandra password file (setting or ``<home>/cassandra``)."""
        return (self.cassandra_password_file or self.home / "cassandra" / "password").resolve()

    @property
    def upstream_password_path(self) -> Path:
        """Absolute path of the upstream SASL password file (setting or default)."""
        default = self.home / "kafka-upstream" / "client.password"
        return (self.upstream_sasl_password_file or default).resolve()

    def upstream_secret(self) -> SecretStr:
        """Return the upstream SASL password: the setting, else the password file's.

        Returns
        -------
        SecretStr
            Empty when neither is set.
        """
        return _secret(self.upstream_sasl_password, self.upstream_password_path)

    @property
    def upstream_cafile(self) -> Path | None:
        """The upstream CA file: ``upstream_ssl_cafile``, else ``<home>/tls/ca.pem`` if made."""
        if self.upstream_ssl_cafile is not None:
            return self.upstream_ssl_cafile.resolve()
        default = (self.home / "tls" / "ca.pem").resolve()
        return default if default.is_file() else None

    def web_secret(self) -> SecretStr:
        """Return the write endpoints' bearer token: ``web_token``, else the token file's.

        Returns
        -------
        SecretStr
            Empty when neither is set.
        """
        return _secret(self.web_token, self.web_token_file)

    def masked(self) -> dict:
        """Return the effective settings as JSON-ready values, secrets masked.

        A password in a URL's user-info (the registry URLs accept one) is masked too.
        """
        shown = self.model_dump(mode="json")
        for name in URL_FIELDS:
            shown[name] = _mask_url(shown[name])
        return shown

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, _mask_url(value) if name in URL_FIELDS else value


def _secret(value: SecretStr, path: Path | None) -> SecretStr:
    """Return ``value`` if it is set, else the first line of ``path`` (if it exists)."""
    if value.get_secret_value() or path is None or not path.is_file():
        return value
    lines = path.read_text().splitlines()
    return SecretStr(lines[0].strip() if lines else "")


#: URL settings that may carry ``user:password@`` (masked when shown).
URL_FIELDS = ("registry_url", "upstream_registry_url", "streams_registry_url")


def _mask_url(url: str) -> str:
    """Return a URL with the password of its user-info replaced by asterisks."""
    parts = urlparse(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    return parts._replace(netloc=f"{user.split(':', 1)[0]}:**********@{host}").geturl()


def _url_port(url: str) -> int:
    """Return the port of a URL (its scheme's default when it names none)."""
    parts = urlparse(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def _port_of(address: str) -> int:
    """Return the port of a ``host:port`` address."""
    return int(address.rsplit(":", 1)[1])


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment, with explicit overrides on top.

    Parameters
    ----------
    **overrides
        Field values that win over the environment (used by the CLI and tests).

    Returns
    -------
    Settings
        The one settings object to pass on.
    """
    return Settings(**overrides)
