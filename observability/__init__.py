"""What the server tells its operators: logs (and, later, metrics and traces)."""
