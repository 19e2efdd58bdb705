# -*- coding: utf-8 -*-
"""Writer -> reader round trips, compared byte for byte with the source tree."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.unikernel.ops.plugins.module_utils.tfs import writer as tfs_writer
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.codec import SECTOR
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import TFS

from ansible_collections.unikernel.ops.tests.unit.plugins.module_utils.tfs_helpers import build, host_tree, volume_tree


def make_rich_tree(root):
    os.makedirs(os.path.join(root, "a", "b", "c"))
    os.makedirs(os.path.join(root, "empty"))
    open(os.path.join(root, "empty-file"), "wb").close()
    with open(os.path.join(root, "a", "b", "c", "deep.txt"), "wb") as f:
        f.write(b"deep\n")
    with open(os.path.join(root, u"h\u00e9llo w\u00f6rld \u2603.txt"), "wb") as f:
        f.write(u"caf\u00e9\n".encode("utf-8"))
    os.symlink("a/b/c/deep.txt", os.path.join(root, "link"))
    os.symlink("/nonexistent/target", os.path.join(root, "a", "dangling"))
    with open(os.path.join(root, "big.bin"), "wb") as f:  # 40 MB: two extents
        f.write(os.urandom(40 * 1000 * 1000))
    with open(os.path.join(root, "a", "odd.bin"), "wb") as f:
        f.write(os.urandom(SECTOR * 3 + 17))


def test_rich_tree_reads_back_identical(tmp_path):
    src = str(tmp_path / "src")
    make_rich_tree(src)
    vol = str(tmp_path / "vol.raw")
    uuid = bytes(range(16))
    build(src, vol, label="rich", uuid=uuid)
    assert volume_tree(vol) == host_tree(src)
    with TFS(vol) as tfs:
        assert tfs.label == "rich"
        assert tfs.uuid_bytes == uuid
        assert tfs.version == 5
        big = tfs.lookup("/big.bin")
        assert len(tfs.extents(big)) == 2  # split at 65536 sectors, as mkfs does
        # data starts where Nanos mkfs starts it, leaving the guest its 2048 free sectors
        assert min(e[1] for e in tfs.extents(big)) >= tfs_writer.DATA_START_SECTOR


def test_volume_stays_sparse(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"x" * 1000)
    vol = str(tmp_path / "vol.raw")
    plan = tfs_writer.plan_tree(str(src))
    log = tfs_writer.prepare(plan)
    fd = os.open(vol, os.O_RDWR | os.O_CREAT, 0o600)
    tfs_writer.write_filesystem(fd, plan, log, os.urandom(16), "v", 1024 ** 3)
    os.close(fd)
    st = os.stat(vol)
    assert st.st_size == 1024 ** 3
    assert st.st_blocks * 512 < 8 * 1024 * 1024  # a 1 GiB volume holding 1 KB stays small on disk


def test_many_files_span_several_log_extensions(tmp_path):
    src = tmp_path / "src"
    for d in range(30):
        sub = src / ("dir-%02d" % d)
        sub.mkdir(parents=True)
        for i in range(900):
            (sub / ("file-with-a-longish-name-%04d.txt" % i)).write_bytes(b"%d" % (i * d))
    vol = str(tmp_path / "vol.raw")
    plan, log = build(str(src), vol)
    assert len(log.extensions) >= 2
    with TFS(vol) as tfs:
        assert len(tfs.log_extensions) == 1 + len(log.extensions)
        assert tfs.log_extensions[2][0] >= plan.data_end - 1  # extensions after the data
    assert volume_tree(vol) == host_tree(str(src))


def test_version_4(tmp_path):
    src = str(tmp_path / "src")
    make_rich_tree(src)
    vol = str(tmp_path / "v4.raw")
    build(src, vol, version=4)
    with TFS(vol) as tfs:
        assert tfs.version == 4
    assert volume_tree(vol) == host_tree(src)


def test_label_too_long(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    with pytest.raises(OpsError, match="at most 31"):
        build(str(src), str(tmp_path / "v.raw"), label="x" * 32)


def test_special_files_refused(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    os.mkfifo(str(src / "pipe"))
    with pytest.raises(OpsError, match="pipe.*not a regular file"):
        tfs_writer.plan_tree(str(src))


def test_missing_source(tmp_path):
    with pytest.raises(OpsError, match="cannot be used"):
        tfs_writer.plan_tree(str(tmp_path / "nope"))


def test_file_shrinking_during_copy_is_an_error(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"x" * 4096)
    plan = tfs_writer.plan_tree(str(src))
    (src / "f").write_bytes(b"x" * 10)
    log = tfs_writer.prepare(plan)
    fd = os.open(str(tmp_path / "v.raw"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OpsError, match="changed size"):
            tfs_writer.write_filesystem(fd, plan, log, os.urandom(16), "v", 8 * 1024 * 1024)
    finally:
        os.close(fd)


# -- property: random trees read back equal ---------------------------------------------------

def _usable_name(name):
    return name not in (".", "..") and len(name.encode("utf-8")) < 200


_names = st.text(alphabet=st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
                 min_size=1, max_size=40).filter(_usable_name)
_leaf = st.one_of(
    st.binary(max_size=3000).map(lambda b: ("file", b)),
    st.integers(min_value=0, max_value=300000).map(lambda n: ("sized", n)),
    _names.map(lambda t: ("symlink", t)),
)
_trees = st.recursive(_leaf, lambda kids: st.dictionaries(_names, kids, max_size=6),
                      max_leaves=25)


def _materialise(path, node):
    if isinstance(node, dict):
        os.makedirs(path)
        for name, child in node.items():
            _materialise(os.path.join(path, name), child)
    elif node[0] == "file":
        with open(path, "wb") as f:
            f.write(node[1])
    elif node[0] == "sized":
        with open(path, "wb") as f:
            f.write(bytes((i * 131) & 0xFF for i in range(node[1] % 997)) * (node[1] // 997 + 1))
    else:
        os.symlink(node[1], path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=st.dictionaries(_names, _trees, max_size=8), version=st.sampled_from([4, 5]))
def test_random_trees_roundtrip(tmp_path_factory, tree, version):
    base = tmp_path_factory.mktemp("prop")
    src = str(base / "src")
    _materialise(src, tree)
    vol = str(base / "vol.raw")
    build(src, vol, version=version)
    assert volume_tree(vol) == host_tree(src)


def test_virtual_tree_at_a_partition_offset(tmp_path):
    """What an image's rootfs needs: single files, inline data, links and a tree at guest paths,
    written into a file at a byte offset (a partition)."""
    prog = tmp_path / "prog"
    prog.write_bytes(os.urandom(3000))
    extra = tmp_path / "extra"
    (extra / "sub").mkdir(parents=True)
    (extra / "sub" / "x").write_bytes(b"x")
    plan = tfs_writer.TreePlan()
    plan.add_file("/bin/prog", str(prog))
    plan.add_data("/etc/passwd", b"root:x:0:0:root:/:/bin/nobody\n")
    plan.add_symlink("/lib64", "lib")
    plan.add_tree("/opt/extra", str(extra))
    plan.directory("/mnt/data")
    with pytest.raises(OpsError, match="given twice"):
        plan.add_data("/etc/passwd", b"")
    with pytest.raises(OpsError, match="not a directory"):
        plan.add_data("/etc/passwd/x", b"")
    log = tfs_writer.prepare(plan)
    img = str(tmp_path / "img")
    base = 7 * 1024 * 1024
    with open(img, "wb") as f:
        f.write(b"\xee" * base)  # what lies before the partition must stay untouched
    fd = os.open(img, os.O_RDWR)
    size = tfs_writer.required_sectors(plan, log) * SECTOR
    tfs_writer.write_filesystem(fd, plan, log, bytes(16), "", size, base=base)
    os.close(fd)
    with open(img, "rb") as f:
        assert f.read(base) == b"\xee" * base
    tree = volume_tree(img, offset=base)
    assert tree[b"/bin/prog"] == ("file", prog.read_bytes())
    assert tree[b"/etc/passwd"][1].startswith(b"root:")
    assert tree[b"/lib64"] == ("symlink", b"lib")
    assert tree[b"/opt/extra/sub/x"] == ("file", b"x")
    assert tree[b"/mnt/data"] == ("directory", None)
