"""A filter whose import fails (a missing module): it never says hello."""

import a_module_that_is_not_in_the_sandbox  # noqa: F401

from brokerapp import userfilter


@userfilter.filter()
def never(alert):
    return True
