"""Prints to stdout (debugging): the SDK sends prints to the log, not into the frames."""

from brokerapp import userfilter


@userfilter.filter()
def printer(alert):
    print("debug: looking at", alert["n"])
    return True
