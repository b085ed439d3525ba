"""Alerts: detections and model scores become decisions (green / yellow / red), written to an
append-only audit trail and, in the same transaction, to the Telegram outbox."""
