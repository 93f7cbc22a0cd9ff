"""Log shipper protocols (OTLP, Loki push, Elasticsearch bulk): decode, map, reply."""
