"""The log domain: the event model, filters, the wire envelope, the `logs` indexes,
write-time rollups and the recent-events ring."""
