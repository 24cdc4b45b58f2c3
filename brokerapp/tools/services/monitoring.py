"""Prometheus for the workers: its configuration, its scrape targets and its service.

``brokerapp services up --monitoring`` starts Debian's ``prometheus`` (apt package
``prometheus``, which also ships ``promtool``) on ``127.0.0.1:<prometheus_port>``, with
everything under the services home::

    var/monitoring/prometheus.yml         :func:`write_prometheus_config`
    var/monitoring/targets/workers.json   :func:`write_targets` (file-based service discovery)
    var/monitoring/data/                  the time series database
    var/log/prometheus.log, var/run/prometheus.pid

Prometheus scrapes ``/metrics`` of every worker web view the settings name (the
``*_web_port`` settings, on ``web_bind``, plus ``prometheus_extra_targets``) as job
``broker`` every ``prometheus_scrape_seconds``, and evaluates the alerting rules of
``deploy/prometheus/rules.yml``. The targets come through ``file_sd_configs``: every
``*.json`` file under ``targets/`` is a list of target groups
(``[{"targets": ["host:port", ...], "labels": {...}}]``) that Prometheus re-reads when it
changes, so a worker started later is scraped without a restart, and an operator (or a
deployment) adds hosts by dropping another file there. A worker that is not running is
scraped as ``up == 0``; its series (labelled ``worker="<branch>"`` by the worker itself, see
:mod:`brokerapp.runtime.metrics`) appear at its first successful scrape.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import yaml

from brokerapp.model.settings import Settings
from brokerapp.tools.services.config import DEPLOY_DIR
from brokerapp.tools.services.probes import LOCAL_HOST, port_open
from brokerapp.tools.services.process import Service, ServiceError

__all__ = [
    "PROMETHEUS_JOB",
    "RULES_FILE",
    "prometheus_config",
    "prometheus_service",
    "prometheus_ready",
    "scrape_targets",
    "write_prometheus_config",
    "write_targets",
]

#: Alerting rules Prometheus evaluates (checked by ``promtool check rules`` in ``make lint``).
RULES_FILE = DEPLOY_DIR / "prometheus" / "rules.yml"
#: Job name of the workers' scrape configuration (the ``job`` label of their series).
PROMETHEUS_JOB = "broker"
#: Seconds between Prometheus's re-reads of the target files (it also watches them).
TARGETS_REFRESH = "30s"


def scrape_targets(settings: Settings) -> list[str]:
    """Return ``host:port`` of every worker web view the settings name, without repeats.

    The host is ``web_bind``, or the loopback address when the views bind every address.

    Parameters
    ----------
    settings : Settings
        The ``*_web_port`` settings, ``web_bind`` and ``prometheus_extra_targets``.

    Returns
    -------
    list of str
        In the overview's order of workers, then the extra targets.
    """
    from brokerapp.tools.overview import workers

    host = settings.web_bind if settings.web_bind not in ("0.0.0.0", "::") else LOCAL_HOST
    targets = [f"{host}:{port}" for port, _path in workers(settings).values()]
    targets += settings.prometheus_extra_targets
    return list(dict.fromkeys(targets))


def write_targets(settings: Settings, targets_dir: Path, name: str = "workers") -> Path:
    """Write the file-based service discovery file ``<targets_dir>/<name>.json``.

    The file is replaced atomically (Prometheus may read it at any time).

    Parameters
    ----------
    settings : Settings
        Where the workers listen (:func:`scrape_targets`).
    targets_dir : Path
        The folder ``prometheus.yml`` discovers targets in.
    name : str, optional
        File name without ``.json``.

    Returns
    -------
    Path
        The file written.
    """
    targets_dir.mkdir(parents=True, exist_ok=True)
    groups = [{"targets": scrape_targets(settings), "labels": {}}]
    path = targets_dir / f"{name}.json"
    partial = path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(groups, indent=2) + "\n")
    os.replace(partial, path)
    return path


def prometheus_config(settings: Settings, targets_dir: Path) -> dict:
    """Return the content of ``prometheus.yml``.

    Parameters
    ----------
    settings : Settings
        ``prometheus_scrape_seconds``.
    targets_dir : Path
        Folder of the target files (every ``*.json`` in it).

    Returns
    -------
    dict
        Global intervals, the rule file and the ``broker`` scrape job.
    """
    interval = f"{settings.prometheus_scrape_seconds:g}s"
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(RULES_FILE)],
        "scrape_configs": [
            {
                "job_name": PROMETHEUS_JOB,
                "metrics_path": "/metrics",
                "scrape_timeout": interval,
                "file_sd_configs": [
                    {"files": [str(targets_dir / "*.json")], "refresh_interval": TARGETS_REFRESH}
                ],
            }
        ],
    }


def write_prometheus_config(settings: Settings, base: Path) -> Path:
    """Write ``base/prometheus.yml`` and ``base/targets/workers.json``; return the former.

    Parameters
    ----------
    settings : Settings
        Scrape interval and worker ports.
    base : Path
        Prometheus's folder under the home.
    """
    targets_dir = base / "targets"
    write_targets(settings, targets_dir)
    config = base / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(settings, targets_dir), sort_keys=False))
    return config


def prometheus_ready(port: int) -> bool:
    """Return whether Prometheus on ``127.0.0.1:port`` reports itself ready (``/-/ready``)."""
    if not port_open(port):
        return False
    try:
        response = httpx.get(f"http://{LOCAL_HOST}:{port}/-/ready", timeout=2.0)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def prometheus_service(settings: Settings, home: Path) -> Service:
    """Return the Prometheus service of a services home, writing its configuration.

    Parameters
    ----------
    settings : Settings
        ``prometheus_port``, ``prometheus_retention``, scrape interval and worker ports.
    home : Path
        The services home (Prometheus's folder is ``monitoring/`` in it).

    Returns
    -------
    Service
        Prometheus bound to ``127.0.0.1:<prometheus_port>``, not yet started.

    Raises
    ------
    ServiceError
        If Prometheus is not installed.
    """
    binary = shutil.which("prometheus")
    if binary is None:
        raise ServiceError(
            "Prometheus is not installed: `apt-get install prometheus` (`make install`)"
        )
    base = home / "monitoring"
    config = write_prometheus_config(settings, base)
    port = settings.prometheus_port
    return Service(
        name="prometheus",
        kind="prometheus",
        port=port,
        command=[
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={base / 'data'}",
            f"--storage.tsdb.retention.time={settings.prometheus_retention}",
            f"--web.listen-address={LOCAL_HOST}:{port}",
            "--web.enable-lifecycle",
        ],
        cwd=base,
        ready=lambda: prometheus_ready(port),
    )
