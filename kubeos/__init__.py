"""kubeos-py: A/B-partition OS upgrades, configuration and rollback for Kubernetes nodes."""

__version__ = "0.1.0"

GROUP = "upgrade.openeuler.org"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
NODE_SELECTOR_LABEL = f"{GROUP}/node-selector"
