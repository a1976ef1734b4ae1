"""The cluster operator: watches OS objects, nodes and OSInstances and dispatches work.

`planner` decides (pure, no API); `controller` is the only code that talks to the API;
`service.Operator` wires informers, Lease leader election and the controller together.
"""
