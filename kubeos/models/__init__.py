"""The resources kubeos reads and writes: OS (admin's intent) and OSInstance (per node)."""
