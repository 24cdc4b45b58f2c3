import os

from brokerapp import userfilter


@userfilter.filter()
def crash(alert):
    os._exit(3)
