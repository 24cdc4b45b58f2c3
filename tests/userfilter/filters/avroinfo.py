"""An Avro-mode filter: reports the schema name and body size it was given (no decoding)."""

from brokerapp import userfilter


@userfilter.filter(input="avro")
def info(alert):
    return userfilter.Pass(
        {
            "schema": alert.schema["name"],
            "schema_id": alert.schema_id,
            "bytes": len(alert.body),
            "head": list(alert.body[:8]),
            "offset": alert.offset,
        }
    )
