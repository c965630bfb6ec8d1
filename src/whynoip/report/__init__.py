"""Reports: the only place that prints a diagnosis (terminal text, JSON, HTML)."""
