"""The model layer: settings, survey profiles and the alert every processor sees.

Nothing here imports another layer of the broker. Survey field names (ZTF's ``candidate.*``,
LSST's ``diaSource.*``) live only in :mod:`brokerapp.model.profiles`.
"""
