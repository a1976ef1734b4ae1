"""One node's A/B root partitions: layout discovery, upgrade, rollback, reboot, boot check.

Each module has one job; `upgrade.py` strings them together through the plugin hooks so
that fetching, installing, switching and rebooting stay replaceable.

    layout      which disk, where roots A/B are, which one the node booted from
    rootspec    parse root= of the kernel command line (device, UUID=, PARTUUID=)
    parttable   partition offsets and sizes from `sfdisk -J`
    sysblock    real nodes: booted partition -> parent disk through /sys and /dev
    ext4        superblock UUID, files read with debugfs, "is this a usable root?"
    blockio     bounded writes onto a partition, writeback, read-back hashing, wiping
    grubenv     the boot switch: grubenv saved_entry=A|B
    upgrade     upgrade / rollback / reboot: hook order and guards
    bootcheck   after the reboot: expected root and version?
    lock        one root-changing operation per node at a time
    progress    progress as throttled log lines (the CLI draws a bar on a terminal)
"""
