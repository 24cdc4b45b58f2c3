import sys

from brokerapp import userfilter


@userfilter.filter()
def chatty(alert):
    sys.stderr.write(("x" * 5000 + "\n") * 200)
    return None
