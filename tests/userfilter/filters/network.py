"""Try to reach the address in params (a server the test runs) and the Kafka port."""

import socket

from brokerapp import userfilter


class Network(userfilter.AlertFilter):
    def setup(self, params):
        self.targets = [tuple(t) for t in params["targets"]]

    def filter(self, alert):
        reached, failures = [], []
        for host, port in self.targets:
            try:
                with socket.create_connection((host, port), timeout=1):
                    reached.append(port)
            except OSError as exc:
                failures.append(f"{port}: {exc}")
        try:
            socket.getaddrinfo("pypi.org", 443)
            reached.append("dns")
        except OSError as exc:
            failures.append(f"dns: {exc}")
        return userfilter.Pass({"reached": reached, "failures": failures})
