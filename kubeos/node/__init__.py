"""One node's A/B root partitions: layout discovery, upgrade, rollback, reboot, boot check.

Each module has one job; `upgrade.py` strings them together through the plugin hooks so
that fetching, installing, switching and rebooting stay replaceable.
"""
