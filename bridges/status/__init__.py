"""The status page and Prometheus metrics of the hub (read-only by default)."""
