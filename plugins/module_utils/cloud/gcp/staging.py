# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Disk bytes to Compute Engine: the sparse file streamed as the .tar.gz holding disk.raw that
images.insert imports, through a resumable upload to the staging bucket. Nothing is written to
disk on the way (no second copy), and holes are never read."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.unikernel.ops.plugins.module_utils.cloud.targz import targz_chunks

CHUNK = 8 * 1024 * 1024  # a multiple of 256 KiB, as resumable uploads need
PREFIX = "unikernel-ops/"


def object_url(bucket, name):
    """The form images.insert's rawDisk.source takes."""
    return "https://storage.googleapis.com/%s/%s" % (bucket, name)


def upload_disk(conn, bucket, object_name, fd, size):
    """Stream fd as <object_name> (a .tar.gz holding disk.raw); returns facts of the upload."""
    started = time.monotonic()
    sent = [0]

    def run():
        blob = bucket.blob(object_name, chunk_size=CHUNK)
        with blob.open("wb", content_type="application/gzip") as out:
            for chunk in targz_chunks(fd, size, chunk=CHUNK):
                out.write(chunk)
                sent[0] += len(chunk)
        return blob
    conn.log.write("storage.objects.insert", "gs://%s/%s" % (bucket.name, object_name), run,
                   note="resumable upload of disk.raw, %d bytes" % size)
    return {"object": "gs://%s/%s" % (bucket.name, object_name), "bytes_sent": sent[0],
            "disk_bytes": size, "seconds": round(time.monotonic() - started, 3)}


def delete_object(conn, gs_url):
    """Delete a staging object we made (gs://bucket/name); gone already is fine."""
    if not gs_url or not gs_url.startswith("gs://"):
        return
    bucket_name, dummy, name = gs_url[5:].partition("/")
    if not name.startswith(PREFIX):
        return  # never delete an object the collection did not make

    def run():
        blob = conn.storage.bucket(bucket_name).blob(name)
        try:
            blob.delete()
        except Exception as e:  # pylint: disable=broad-except
            if getattr(e, "code", None) != 404:
                raise
    if conn.log.check_mode:
        conn.log.plan("storage.objects.delete", gs_url)
    else:
        conn.log.write("storage.objects.delete", gs_url, run)
