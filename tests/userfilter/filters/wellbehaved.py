from brokerapp import userfilter


@userfilter.filter()
def even(alert):
    return userfilter.Pass({"n": alert["n"]}) if alert["n"] % 2 == 0 else None
