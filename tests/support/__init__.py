"""Shared test helpers: real disks, root images, host-root trees and HTTPS image servers.

Plain functions and classes (import them); `tests.support.fixtures` wraps a few as pytest
fixtures. Everything here drives the real tools (sfdisk, mke2fs, debugfs, grub-editenv)
and real TLS (trustme certificates) so tests exercise what a node would do.
"""
