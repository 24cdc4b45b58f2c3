"""Try to read the paths in params, list the root and report its uid and environment."""

import os

from brokerapp import userfilter


class Snoop(userfilter.AlertFilter):
    def setup(self, params):
        self.paths = params["paths"]

    def filter(self, alert):
        read, refused = [], []
        for path in self.paths:
            try:
                with open(path, "rb") as handle:
                    read.append([path, handle.read(100).decode("latin-1")])
            except OSError as exc:
                refused.append([path, exc.strerror])
        wrote = True
        try:
            with open("/code/planted.py", "w") as handle:
                handle.write("x = 1\n")
        except OSError:
            wrote = False
        status = dict(
            line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines()
        )
        return userfilter.Pass(
            {
                "cap_eff": status["CapEff"].strip(),
                "no_new_privs": status["NoNewPrivs"].strip(),
                "read": read,
                "refused": refused,
                "root": sorted(os.listdir("/")),
                "uid": os.getuid(),
                "env": dict(os.environ),
                "wrote_code": wrote,
                "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
            }
        )
