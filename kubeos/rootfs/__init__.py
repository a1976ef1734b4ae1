"""Turning a container image into a root-partition image, shared by the container plugins.

The docker and containerd plugins only differ in how they pull an image and hand over its
filesystem (a flat export, or OCI layers). Everything after that is here, in the core, so
both produce the same root filesystem (U2) through the same hostile-input checks:

- `reference`: the `containerimage` forms and the early digest check (U2, D4).
- `extract`: applies layer tars onto a private directory without letting any entry escape.
- `oci`: reads an OCI image-layout archive and yields its layers, digest-checked.
- `ext4`: builds the partition image with `mke2fs -d` (no loop mount).
- `build`: the scratch-directory life cycle around the three steps above.
"""
