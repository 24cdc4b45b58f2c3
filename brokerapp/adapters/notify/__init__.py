"""The notifiers' I/O: the delivery ledger (SQLite), the VTP broadcaster, SMTP, HTTPS."""
