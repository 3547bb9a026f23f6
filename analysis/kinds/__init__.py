"""Report plugins, one module per experiment kind (see analysis/report.py: kind_plugin)."""
