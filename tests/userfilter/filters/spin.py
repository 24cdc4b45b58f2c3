from brokerapp import userfilter


@userfilter.filter()
def spin(alert):
    while True:
        pass
