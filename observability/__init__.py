"""What the server tells its operators: logs without secrets, the request's record, Prometheus
metrics and OpenTelemetry traces (R91-R93). A leaf: it imports nothing of the API's own layers."""
