"""The decoded alert that every branch and processor sees.

A branch decodes each alert once and wraps the decoded Avro record in an :class:`Alert`:
the record itself (shared, never modified), the :class:`~brokerapp.model.profiles.SurveyProfile`
that reads it, its survey-agnostic :class:`~brokerapp.model.profiles.AlertView`, the writer
schema's local registry ID when the alert came Confluent-framed, and the annotations the
processors of a chain add as it runs (a dict keyed by processor name, see
:mod:`brokerapp.domain.processors`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from brokerapp.model.profiles import AlertView, SurveyProfile, profile_for

__all__ = ["Alert"]


@dataclass
class Alert:
    """One decoded alert, as every processor of a chain sees it.

    Attributes
    ----------
    record : mapping
        The decoded Avro record (decoded once per node, shared by the chain: do not modify).
    profile : SurveyProfile
        The survey profile that reads ``record``.
    view : AlertView
        The survey-agnostic summary of ``record``.
    schema_id : int or None
        Local registry ID of the writer schema, when the alert came framed.
    annotations : dict
        Annotations added by the processors that ran before, by processor name.
    """

    record: Mapping[str, Any]
    profile: SurveyProfile
    view: AlertView
    schema_id: int | None = None
    annotations: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, record: Mapping[str, Any], schema_id: int | None = None) -> Alert:
        """Wrap a decoded record, choosing its survey profile from its fields.

        Parameters
        ----------
        record : mapping
            Decoded ZTF or LSST alert.
        schema_id : int, optional
            Its writer schema's registry ID.

        Returns
        -------
        Alert
            With no annotations yet.

        Raises
        ------
        brokerapp.model.profiles.UnknownSurveyError
            If the record is neither a ZTF nor an LSST alert.
        """
        profile = profile_for(record)
        return cls(record, profile, profile.view(record), schema_id)
