"""Command-line entry points: `kubeos-agent`, `kubeos-operator` and `kubeos`."""
