"""Safe layer extraction (issue 5) against real, crafted-to-attack tar layers."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from kubeos.errors import ImageError
from kubeos.rootfs.extract import RootfsExtractor, TooLarge, UnsafeEntry
from tests.container.tarcraft import (
    Member,
    device,
    directory,
    hardlink,
    layer_bytes,
    reg,
    symlink,
)

MiB = 1 << 20
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (owners, mknod)")


@pytest.fixture
def box(tmp_path: Path) -> tuple[Path, Path]:
    """(root being extracted to, a sibling directory that must stay untouched)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host secret\n")
    (tmp_path / "work").mkdir(mode=0o700)
    return tmp_path / "work" / "rootfs", outside


def apply(ex: RootfsExtractor, *layers: list[Member], whiteouts: bool = True) -> None:
    for n, members in enumerate(layers):
        ex.apply_layer(io.BytesIO(layer_bytes(members)), f"layer{n}", whiteouts=whiteouts)


def untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_text() == "host secret\n"
    assert os.stat(outside / "secret").st_nlink == 1


def test_path_traversal_is_refused(box: tuple[Path, Path]) -> None:
    root, outside = box
    ex = RootfsExtractor(root, 10 * MiB)
    with pytest.raises(UnsafeEntry, match=r"'\.\.'"):
        apply(ex, [reg("etc/ok", b"x"), reg("../outside/pwned", b"evil")])
    with pytest.raises(UnsafeEntry, match=r"'\.\.'"):
        apply(ex, [reg("a/b/../../../outside/pwned", b"evil")])
    untouched(outside)


def test_absolute_path_is_refused(box: tuple[Path, Path]) -> None:
    root, outside = box
    ex = RootfsExtractor(root, 10 * MiB)
    with pytest.raises(UnsafeEntry, match="absolute"):
        apply(ex, [reg(str(outside / "pwned"), b"evil")])
    untouched(outside)


def test_symlink_escape_is_resolved_inside_the_root(box: tuple[Path, Path]) -> None:
    """A symlink pointing out is kept as data; entries written through it stay inside."""
    root, outside = box
    ex = RootfsExtractor(root, 10 * MiB)
    apply(
        ex,
        [
            symlink("abs", str(outside)),
            symlink("rel", "../../../../../../.."),
            reg("abs/pwned", b"evil"),
        ],
        [reg("rel/pwned2", b"evil"), symlink("lib", "usr/lib"), reg("lib/libc.so", b"elf")],
    )
    untouched(outside)
    assert os.readlink(root / "abs") == str(outside)  # stored as it is
    assert (root / str(outside).lstrip("/") / "pwned").read_bytes() == b"evil"
    assert (root / "pwned2").read_bytes() == b"evil"  # '..' stops at the root
    assert (root / "usr/lib/libc.so").read_bytes() == b"elf"  # merged-usr style still works


def test_symlink_chain_loop_is_refused(box: tuple[Path, Path]) -> None:
    root, outside = box
    ex = RootfsExtractor(root, 10 * MiB)
    with pytest.raises(UnsafeEntry, match="too many symlinks"):
        apply(ex, [symlink("a", "b"), symlink("b", "a"), reg("a/x", b"")])
    untouched(outside)


def test_existing_symlink_is_replaced_not_followed(box: tuple[Path, Path]) -> None:
    root, outside = box
    ex = RootfsExtractor(root, 10 * MiB)
    apply(ex, [symlink("etc-passwd", str(outside / "secret"))], [reg("etc-passwd", b"root:x:0")])
    untouched(outside)
    assert (root / "etc-passwd").read_bytes() == b"root:x:0"
    assert not (root / "etc-passwd").is_symlink()


def test_hardlink_escape_is_refused(box: tuple[Path, Path]) -> None:
    root, outside = box
    for target in ("../outside/secret", str(outside / "secret")):
        ex = RootfsExtractor(root, 10 * MiB)
        with pytest.raises(UnsafeEntry):
            apply(ex, [hardlink("stolen", target)])
    ex = RootfsExtractor(root, 10 * MiB)
    with pytest.raises(UnsafeEntry, match="not in the image"):
        apply(ex, [symlink("esc", str(outside)), hardlink("stolen", "esc/secret")])
    untouched(outside)


def test_hardlink_inside_the_image(box: tuple[Path, Path]) -> None:
    root, _ = box
    ex = RootfsExtractor(root, 10 * MiB)
    apply(ex, [reg("usr/bin/a", b"same", mode=0o755)], [hardlink("usr/bin/b", "usr/bin/a")])
    assert os.stat(root / "usr/bin/a").st_ino == os.stat(root / "usr/bin/b").st_ino
    with pytest.raises(UnsafeEntry, match="directory"):
        apply(ex, [hardlink("dirlink", "usr/bin")])


def test_whiteouts_remove_lower_entries(box: tuple[Path, Path]) -> None:
    root, _ = box
    ex = RootfsExtractor(root, 10 * MiB)
    apply(
        ex,
        [reg("a/x", b"1"), reg("a/y", b"2"), reg("b/z", b"3"), reg("c", b"4")],
        [reg("a/.wh.x"), reg(".wh.b"), reg("c", b"5"), reg(".wh.c"), reg("nowhere/.wh.q")],
    )
    assert sorted(os.listdir(root / "a")) == ["y"]
    assert not (root / "b").exists()
    assert (root / "c").read_bytes() == b"5"  # a whiteout never hides its own layer's entry
    assert not (root / "nowhere").exists()
    assert not any(n.startswith(".wh.") for _, _, fs in os.walk(root) for n in fs)


def test_opaque_directory(box: tuple[Path, Path]) -> None:
    root, _ = box
    ex = RootfsExtractor(root, 10 * MiB)
    apply(
        ex,
        [reg("d/old", b"1"), reg("d/sub/deep", b"2"), reg("keep/me", b"3")],
        [directory("d"), reg("d/-early", b"4"), reg("d/.wh..wh..opq"), reg("d/new", b"5")],
    )
    assert sorted(os.listdir(root / "d")) == ["-early", "new"]
    assert (root / "keep/me").exists()


def test_whiteout_names_in_a_flat_export_are_skipped(box: tuple[Path, Path]) -> None:
    root, _ = box
    ex = RootfsExtractor(root, 10 * MiB)
    apply(ex, [reg("x", b"1"), reg(".wh.x")], whiteouts=False)
    assert (root / "x").exists()
    assert not (root / ".wh.x").exists()
    assert ex.usage.skipped == [".wh.x: whiteout name in a flat export"]


def test_size_limit_stops_early(box: tuple[Path, Path]) -> None:
    root, _ = box
    ex = RootfsExtractor(root, 2 * MiB)
    with pytest.raises(TooLarge, match="exceeds"):
        apply(ex, [reg("a", b"\0" * MiB), reg("b", b"\0" * MiB), reg("c", b"\0" * 10)])
    assert not (root / "c").exists()


def test_size_limit_counts_what_is_alive(box: tuple[Path, Path]) -> None:
    """Overwritten and whited-out files give their budget back."""
    root, _ = box
    ex = RootfsExtractor(root, 2 * MiB)
    apply(
        ex,
        [reg("a", b"\0" * MiB)],
        [reg("a", b"\0" * MiB)],
        [reg(".wh.a"), reg("b", b"\0" * MiB)],
        [reg("c", b"\0" * (MiB - 4096))],
    )
    assert ex.usage.bytes == 2 * MiB - 4096


def test_gzip_bomb_is_cut_at_the_budget(box: tuple[Path, Path]) -> None:
    root, _ = box
    info = tarfile.TarInfo("zeros")
    info.size = 64 * MiB
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    bomb = gzip.compress(raw.getvalue())
    assert len(bomb) < MiB
    ex = RootfsExtractor(root, 8 * MiB)
    with pytest.raises(TooLarge):
        ex.apply_layer(io.BytesIO(bomb), "bomb")
    assert not (root / "zeros").exists()


def test_entry_count_limit(box: tuple[Path, Path]) -> None:
    root, _ = box
    ex = RootfsExtractor(root, MiB, max_entries=50)
    with pytest.raises(TooLarge, match="entries"):
        apply(ex, [reg(f"f{i}") for i in range(51)])


def test_zstd_and_garbage_layers_are_refused(box: tuple[Path, Path]) -> None:
    root, _ = box
    ex = RootfsExtractor(root, MiB)
    with pytest.raises(ImageError, match="zstd"):
        ex.apply_layer(io.BytesIO(b"\x28\xb5\x2f\xfd" + bytes(100)), "z")
    with pytest.raises(ImageError, match="not a readable tar"):
        ex.apply_layer(io.BytesIO(b"this is no tar" * 100), "junk")


@needs_root
def test_owners_modes_and_xattrs_survive(box: tuple[Path, Path]) -> None:
    root, _ = box
    ex = RootfsExtractor(root, 10 * MiB)
    passwd_info, data = reg("usr/bin/passwd", b"elf", mode=0o4755)
    passwd_info.pax_headers = {"SCHILY.xattr.user.kubeos": "yes"}
    apply(
        ex,
        [
            directory(".", 0o755),
            directory("tmp", 0o1777),
            (passwd_info, data),
            reg("home/u/f", b"u", mode=0o600, uid=1000, gid=1000),
        ],
    )
    st = os.stat(root / "usr/bin/passwd")
    assert stat.S_IMODE(st.st_mode) == 0o4755 and st.st_uid == 0
    assert stat.S_IMODE(os.stat(root / "tmp").st_mode) == 0o1777
    home = os.stat(root / "home/u/f")
    assert (home.st_uid, home.st_gid, stat.S_IMODE(home.st_mode)) == (1000, 1000, 0o600)
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o755
    try:
        assert os.getxattr(root / "usr/bin/passwd", "user.kubeos") == b"yes"
    except OSError:
        pytest.skip("user xattrs unsupported on this file system")


@needs_root
def test_device_nodes_only_where_a_root_needs_them(box: tuple[Path, Path]) -> None:
    root, _ = box
    ex = RootfsExtractor(root, 10 * MiB)
    apply(
        ex,
        [
            device("dev/null", 1, 3),
            device("dev/console", 5, 1),
            device("dev/mem", 1, 1),
            device("dev/sda", 8, 0, block=True),
            device("etc/null", 1, 3),
        ],
    )
    made = os.lstat(root / "dev/null")
    if ex.usage.skipped and "mknod not permitted" in ex.usage.skipped[0]:
        pytest.skip("mknod is not permitted in this container")
    assert stat.S_ISCHR(made.st_mode) and os.major(made.st_rdev) == 1
    assert stat.S_ISCHR(os.lstat(root / "dev/console").st_mode)
    for refused in ("dev/mem", "dev/sda", "etc/null"):
        assert not (root / refused).exists()
    assert len(ex.usage.skipped) == 3


def test_directory_attributes_never_land_outside(box: tuple[Path, Path]) -> None:
    """Directory modes are applied at the end of a layer: by then 'x' points out."""
    root, outside = box
    (outside / "d").mkdir(mode=0o700)
    ex = RootfsExtractor(root, 10 * MiB)
    apply(ex, [directory("x"), directory("x/d", 0o777), symlink("x", str(outside))])
    apply(ex, [directory("y/d", 0o777), symlink("y", "../../outside")])
    assert stat.S_IMODE(os.stat(outside / "d").st_mode) == 0o700
    (outside / "d").rmdir()
    untouched(outside)
