# -*- coding: utf-8 -*-
"""A sparse disk file as the oldgnu sparse .tar.gz Compute Engine imports: read back by Python's
tarfile and by GNU tar, holes never read, the same bytes every time."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import hashlib
import os
import random
import shutil
import subprocess
import tarfile
import time

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.cloud import targz
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.blocks import data_ranges
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
READ = 4 * MIB


def _gnu_tar():
    path = shutil.which("tar")
    if not path:
        return None
    out = subprocess.run([path, "--version"], stdout=subprocess.PIPE, check=False).stdout
    return path if b"GNU tar" in out else None


GNU_TAR = _gnu_tar()
needs_gnu_tar = pytest.mark.skipif(not GNU_TAR, reason="GNU tar is not installed")


def _noise(seed, n):
    return random.Random(seed).getrandbits(8 * n).to_bytes(n, "little") if n else b""


def make_sparse(directory, size, writes):
    """directory/disk.raw: size bytes of hole with each (offset, length) of writes filled with
    random bytes."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "disk.raw")
    with open(path, "wb") as f:
        f.truncate(size)
        for n, (offset, length) in enumerate(writes):
            f.seek(offset)
            f.write(_noise(n, length))
    return path


def stream(path, out, **kwargs):
    """path's .tar.gz written to out; returns (seconds, sha256 hex, chunk lengths)."""
    h = hashlib.sha256()
    lengths = []
    fd = os.open(path, os.O_RDONLY)
    try:
        started = time.monotonic()
        with open(out, "wb") as f:
            for piece in targz.targz_chunks(fd, os.fstat(fd).st_size, **kwargs):
                assert isinstance(piece, bytes)
                lengths.append(len(piece))
                h.update(piece)
                f.write(piece)
        seconds = time.monotonic() - started
    finally:
        os.close(fd)
    return seconds, h.hexdigest(), lengths


def _ranges(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return list(data_ranges(fd, os.fstat(fd).st_size))
    finally:
        os.close(fd)


def assert_same_content(a, b):
    """a and b hold the same bytes, compared over the data regions of either (outside them both
    read as zeros), so a sparse 9 GiB file costs what its data costs."""
    assert os.path.getsize(a) == os.path.getsize(b)
    spans = sorted(_ranges(a) + _ranges(b))
    with open(a, "rb") as fa, open(b, "rb") as fb:
        done = 0
        for start, end in spans:
            pos = max(start, done)
            while pos < end:
                n = min(READ, end - pos)
                fa.seek(pos)
                fb.seek(pos)
                assert fa.read(n) == fb.read(n), "differ in %d..%d" % (pos, pos + n)
                pos += n
            done = max(done, end)


def assert_member_matches(member_file, source, size):
    """The extracted stream of the member equals source: read in chunks where source has data,
    spot-checked as zeros in the holes."""
    with open(source, "rb") as src:
        pos = 0
        for start, end in _ranges(source) + [(size, size)]:
            for probe in sorted({pos, (pos + start) // 2, start - 1}):
                if pos <= probe < start:
                    member_file.seek(probe)
                    assert member_file.read(1) == b"\0", "hole byte %d" % probe
            while start < end:
                n = min(READ, end - start)
                member_file.seek(start)
                src.seek(start)
                assert member_file.read(n) == src.read(n), "data at %d" % start
                start += n
            pos = max(pos, end)
    member_file.seek(size)
    assert member_file.read(1) == b""


def check_with_tarfile(archive, source, size, tmp_path):
    with tarfile.open(archive, "r:gz") as tf:
        members = tf.getmembers()
        assert [m.name for m in members] == ["disk.raw"]
        m = members[0]
        assert m.isfile() and m.issparse()
        assert m.size == size
        assert (m.mode, m.uid, m.gid, m.mtime) == (0o644, 0, 0, 0)
        assert_member_matches(tf.extractfile(m), source, size)
        out = tmp_path / "tarfile-out"
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tf.extract(m, str(out), **kwargs)
    assert_same_content(str(out / "disk.raw"), source)


def check_with_gnu_tar(archive, source, size, tmp_path):
    listing = subprocess.run([GNU_TAR, "-tvzf", archive], stdout=subprocess.PIPE, check=True,
                             universal_newlines=True).stdout.splitlines()
    assert len(listing) == 1, listing
    fields = listing[0].split()
    assert fields[-1] == "disk.raw" and fields[2] == str(size) and fields[0] == "-rw-r--r--", listing
    out = tmp_path / "gnu-tar-out"
    out.mkdir()
    subprocess.run([GNU_TAR, "-xSzf", archive, "-C", str(out)], check=True)
    assert_same_content(str(out / "disk.raw"), source)
    return str(out / "disk.raw")


def gnu_tar_stream(source):
    """The uncompressed tar GNU tar writes for source with the owner, mode and mtime targz uses."""
    return subprocess.run([GNU_TAR, "--format=oldgnu", "-Scf", "-", "--owner=root:0", "--group=root:0",
                           "--mtime=@0", "--mode=0644", "disk.raw"], cwd=os.path.dirname(source),
                          stdout=subprocess.PIPE, check=True).stdout


CASES = {
    # data in the first and the last sector and in between, a sector written unaligned
    "first-and-last-sector": (4 * MIB, [(0, 512), (MIB + 512, 3000), (2 * MIB + 7, 100), (4 * MIB - 512, 512)]),
    "ends-in-hole": (8 * MIB, [(64 * KIB, 5000), (2 * MIB, 64 * KIB)]),
    # 4 map entries fit the header, 21 each extension block: 60 regions need 3 extension blocks
    "extension-blocks": (60 * 128 * KIB, [(i * 128 * KIB + (i % 3) * 4 * KIB, 1000 + 97 * i) for i in range(60)]),
    "all-hole": (16 * MIB, []),
    "dense": (192 * KIB, [(0, 192 * KIB)]),
    "size-not-a-sector-multiple": (MIB + 100, [(4 * KIB, 10), (MIB + 90, 10)]),
    "empty": (0, []),
}


@pytest.fixture(params=sorted(CASES))
def disk(request, tmp_path):
    size, writes = CASES[request.param]
    return make_sparse(str(tmp_path / "src"), size, writes), size


def test_tarfile_reads_the_archive_back(disk, tmp_path):
    source, size = disk
    archive = str(tmp_path / "image.tar.gz")
    stream(source, archive)
    check_with_tarfile(archive, source, size, tmp_path)


@needs_gnu_tar
def test_gnu_tar_reads_the_archive_back(disk, tmp_path):
    source, size = disk
    archive = str(tmp_path / "image.tar.gz")
    stream(source, archive)
    check_with_gnu_tar(archive, source, size, tmp_path)


def test_the_stream_is_deterministic_and_chunked(disk, tmp_path):
    source, size = disk
    _s, first, lengths = stream(source, str(tmp_path / "a.tar.gz"), chunk=4096)
    _s, second, _l = stream(source, str(tmp_path / "b.tar.gz"), chunk=4096)
    assert first == second
    assert lengths and all(n == 4096 for n in lengths[:-1]) and 0 < lengths[-1] <= 4096
    raw = (tmp_path / "a.tar.gz").read_bytes()
    assert raw[:4] == b"\x1f\x8b\x08\x00" and raw[4:8] == bytes(4)  # gzip, mtime 0
    tar = gzip.decompress(raw)  # checks the CRC32 and ISIZE trailer
    assert len(tar) % 10240 == 0 and tar[-1024:] == bytes(1024)
    _s, third, _l = stream(source, str(tmp_path / "c.tar.gz"))
    assert gzip.decompress((tmp_path / "c.tar.gz").read_bytes()) == tar


@needs_gnu_tar
def test_the_tar_stream_is_what_gnu_tar_writes(disk, tmp_path):
    source, size = disk
    stream(source, str(tmp_path / "image.tar.gz"))
    mine = gzip.decompress((tmp_path / "image.tar.gz").read_bytes())
    gnu = gnu_tar_stream(source)
    if gnu[156:157] != b"S":
        pytest.skip("GNU tar does not store this file as sparse (it is not sparse on disk)")
    if gnu[386:482] != mine[386:482]:
        pytest.skip("GNU tar mapped the file differently on this file system")
    assert mine == gnu


def test_holes_are_never_read(monkeypatch, tmp_path):
    size, writes = CASES["extension-blocks"]
    source = make_sparse(str(tmp_path / "src"), size, writes)
    regions = _ranges(source)
    reads = []
    real_pread = os.pread

    def pread(fd, n, offset):
        reads.append((offset, n))
        return real_pread(fd, n, offset)

    monkeypatch.setattr(targz.os, "pread", pread)
    stream(source, str(tmp_path / "image.tar.gz"), chunk=64 * KIB)
    monkeypatch.undo()
    assert reads
    for offset, n in reads:
        assert any(start - 511 <= offset and offset + n <= end + 511 for start, end in regions), (offset, n)
    assert sum(n for _o, n in reads) <= sum(end - start for start, end in regions) + 2 * 512 * len(regions)


def test_a_9_gib_disk_costs_its_data(tmp_path):
    size = 9 * GIB
    writes = [(0, 512), (5 * GIB + 12345, 70 * KIB), (size - 512, 512)]
    source = make_sparse(str(tmp_path / "src"), size, writes)
    archive = str(tmp_path / "image.tar.gz")
    seconds, first, _l = stream(source, archive)
    assert os.path.getsize(archive) < MIB
    assert seconds < 3
    with open(archive, "rb") as f:
        header = gzip.GzipFile(fileobj=f).read(512)
    assert header[483] == 0x80  # realsize over 8 GiB: base-256
    check_with_tarfile(archive, source, size, tmp_path)
    if GNU_TAR:
        extracted = check_with_gnu_tar(archive, source, size, tmp_path)
        assert os.stat(extracted).st_blocks * 512 < 16 * MIB  # extracted sparse
        gnu = gnu_tar_stream(source)
        with open(archive, "rb") as f:
            mine = gzip.GzipFile(fileobj=f).read()
        if gnu[386:482] == mine[386:482]:  # GNU tar saw the same map (it does on ext4, tmpfs)
            assert mine == gnu
    assert stream(source, str(tmp_path / "again.tar.gz"))[1] == first


def test_base_256_sizes_in_the_header():
    # a member storing more than 8 GiB of data, at map offsets past 8 GiB (no file needed)
    size = 40 * GIB
    regions = [(0, 512), (9 * GIB, 9 * GIB), (30 * GIB, 512), (31 * GIB, 512), (32 * GIB, 512)]
    blocks = targz.tar_header_blocks(regions, size)
    assert len(blocks) == 1024
    header = blocks[:512]
    assert header[124] == 0x80 and header[483] == 0x80
    info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
    assert info.size == 9 * GIB + 4 * 512  # the stored size, before the map is applied
    structs, isextended, realsize = info._sparse_structs  # pylint: disable=protected-access
    assert structs == regions[:4] and isextended and realsize == size
    assert blocks[512:536] == targz.tar_number(32 * GIB, 12) + targz.tar_number(512, 12)
    assert blocks[536:560] == targz.tar_number(size, 12) + targz.tar_number(0, 12)
    assert blocks[560:1016] == bytes(456) and blocks[1016] == 0


def test_tar_numbers():
    assert targz.tar_number(0, 12) == b"00000000000\0"
    assert targz.tar_number(8 ** 11 - 1, 12) == b"77777777777\0"
    assert targz.tar_number(8 ** 11, 12) == b"\x80\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00"
    assert targz.tar_number(0o644, 8) == b"0000644\0"
    with pytest.raises(ValueError):
        targz.tar_number(-1, 12)
    with pytest.raises(ValueError):
        targz.tar_number(256 ** 11, 12)


def test_a_file_cut_short_while_read_fails(monkeypatch, tmp_path):
    source = make_sparse(str(tmp_path / "src"), MIB, [(0, 4096)])
    monkeypatch.setattr(targz.os, "pread", lambda fd, n, offset: b"")  # as if truncated after mapping
    fd = os.open(source, os.O_RDONLY)
    try:
        with pytest.raises(OpsError, match="ended at 0 bytes"):
            b"".join(targz.targz_chunks(fd, MIB))
    finally:
        monkeypatch.undo()
        os.close(fd)


@pytest.mark.parametrize("kwargs", [{"size": -1}, {"chunk": 0}, {"level": 10}])
def test_bad_arguments(kwargs, tmp_path):
    source = make_sparse(str(tmp_path / "src"), MIB, [])
    fd = os.open(source, os.O_RDONLY)
    try:
        args = dict({"size": MIB}, **kwargs)
        with pytest.raises(ValueError):
            next(targz.targz_chunks(fd, **args))
    finally:
        os.close(fd)
