from brokerapp import userfilter

kept = []


@userfilter.filter()
def hog(alert):
    while True:
        kept.append(bytearray(16 * 1024 * 1024))
