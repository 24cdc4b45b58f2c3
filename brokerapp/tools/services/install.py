"""One installer for every server resolved from Maven Central: Kafka, Apicurio, Cassandra.

Each server is pinned by a POM under ``deploy/<server>/pom.xml`` and installed into
``<home>/lib/<server>/`` in one of two ways (:class:`MavenServer`):

class path
    ``mvn dependency:copy-dependencies`` copies the POM's runtime dependencies, jars that a
    JVM runs with ``-cp lib/<server>/*`` (Kafka, Cassandra);
archive
    ``mvn dependency:copy`` fetches the one archive the POM names into
    ``lib/<server>-download/``, which is unpacked into ``lib/<server>/`` and deleted
    (Apicurio's runnable ``tar.gz``).

``lib/<server>/.pom-sha256`` records the SHA-256 of the POM it was resolved from: a server
whose stamp matches its POM is left alone, one whose POM changed is deleted and resolved
again. Maven's ``target/`` folder beside the POM is removed after each run.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from brokerapp.tools.services.config import APICURIO_POM, CASSANDRA_POM, KAFKA_POM
from brokerapp.tools.services.process import ServiceError

__all__ = [
    "MAVEN_SERVERS",
    "STAMP",
    "MavenServer",
    "install_server",
    "run_mvn",
]

#: Name of the file, in a server's folder, holding the SHA-256 of its POM.
STAMP = ".pom-sha256"
#: Characters of Maven's output kept in an error message (from each of stdout and stderr).
MVN_OUTPUT_TAIL = 3000

Mvn = Callable[..., None]
"""``mvn(pom, *args)``: runs Maven on a POM (:func:`run_mvn`, or a stand-in in tests)."""


@dataclass(frozen=True)
class MavenServer:
    """A server installed from Maven Central.

    Attributes
    ----------
    name : str
        Folder under ``<home>/lib``.
    pom : Path
        The POM that pins it.
    archive : bool
        False: copy the runtime dependencies (a class path); True: fetch the one
        ``tar.gz`` the POM names and unpack it.
    """

    name: str
    pom: Path
    archive: bool = False


#: The Maven-resolved servers, by name.
MAVEN_SERVERS = {
    "kafka": MavenServer("kafka", KAFKA_POM),
    "apicurio": MavenServer("apicurio", APICURIO_POM, archive=True),
    "cassandra": MavenServer("cassandra", CASSANDRA_POM),
}


def run_mvn(pom: Path, *args: str) -> None:
    """Run ``mvn -q -B -f POM ARGS...`` and remove the ``target/`` folder it leaves.

    Raises
    ------
    ServiceError
        If Maven is not installed or fails (with the end of its output).
    """
    if shutil.which("mvn") is None:
        raise ServiceError("Maven (mvn) is not installed: `apt-get install maven`")
    cmd = ["mvn", "-q", "-B", "-f", str(pom), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServiceError(
            f"{' '.join(cmd)} failed:\n{done.stdout[-MVN_OUTPUT_TAIL:]}"
            f"{done.stderr[-MVN_OUTPUT_TAIL:]}"
        )
    shutil.rmtree(pom.parent / "target", ignore_errors=True)


def install_server(server: MavenServer, lib: Path, mvn: Mvn = run_mvn) -> bool:
    """Resolve one server into ``lib/<name>`` unless it is there for the same POM.

    Parameters
    ----------
    server : MavenServer
        What to install.
    lib : Path
        The services home's ``lib`` folder.
    mvn : callable
        Runs Maven (:func:`run_mvn`).

    Returns
    -------
    bool
        True if it was resolved now, False if it was already installed from this POM.

    Raises
    ------
    ServiceError
        If Maven fails, or an archive install finds other than one archive.
    """
    target = lib / server.name
    stamp = target / STAMP
    digest = hashlib.sha256(server.pom.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return False
    shutil.rmtree(target, ignore_errors=True)
    if server.archive:
        download = lib / f"{server.name}-download"
        shutil.rmtree(download, ignore_errors=True)
        download.mkdir(parents=True)
        mvn(server.pom, "dependency:copy", f"-DoutputDirectory={download}")
        archives = list(download.glob("*.tar.gz"))
        if len(archives) != 1:
            raise ServiceError(
                f"expected one {server.name} archive in {download}, found {archives}"
            )
        target.mkdir(parents=True)
        with tarfile.open(archives[0]) as tar:
            tar.extractall(target, filter="data")
        shutil.rmtree(download)
    else:
        target.mkdir(parents=True)
        mvn(
            server.pom,
            "dependency:copy-dependencies",
            f"-DoutputDirectory={target}",
            "-DincludeScope=runtime",
        )
    stamp.write_text(digest)
    return True
