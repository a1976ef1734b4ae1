"""The host's own default plugins.

They are registered through the core's `kubeos` entry points exactly like third-party
plugins, so a site or a test replaces one by registering another implementation.
"""
