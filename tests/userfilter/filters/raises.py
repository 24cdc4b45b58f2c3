from brokerapp import userfilter


@userfilter.filter()
def raises(alert):
    raise ValueError(f"cannot handle alert {alert['n']}")
