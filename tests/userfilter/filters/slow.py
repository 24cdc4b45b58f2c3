import time

from brokerapp import userfilter


class Slow(userfilter.AlertFilter):
    def setup(self, params):
        self.delay = params["delay"]

    def filter(self, alert):
        time.sleep(self.delay)
        return True
