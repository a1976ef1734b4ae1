"""The node agent: carries out what the operator wrote into this node's OSInstance.

`loop` watches the OSInstance, `operations` runs upgrade / rollback / config as
resumable steps whose progress lives in the OSInstance status, `drain` cordons and
evicts, `osinstance` reads and writes the object with optimistic concurrency.
"""
