# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Nanos releases where ops gets them: the release store's layout, and fetching from it.

The store, as ops reads it (nanovms/ops lepton/const.go, lepton/nightly.go):
  <location>/latest.txt                                        the current release's version
  <location>/<version>/nanos-release-linux-<version>.tar.gz    a release
  <location>/nightly/nanos-nightly-linux.tar.gz                the nightly build
  <location>/nightly/nanos-nightly-linux.timestamp             when it was built
ops installs the nightly build into <home>/nightly/ and keeps the timestamp it installed in
<home>/nightly/nanos-nightly-linux.timestamp; it never names nightly in latest.txt.

Every request goes through ansible.module_utils.urls.open_url (proxies from the environment,
certificate checks, timeouts), is retried a bounded number of times on connection errors and
5xx answers, and gives up within the timeout when the store does not answer.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import http.client
import os
import socket
import ssl
import time
import urllib.error
import urllib.parse

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import SSLValidationError, open_url

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError

DEFAULT_RELEASE_URL = "https://storage.googleapis.com/nanos/release/"
NIGHTLY = "nightly"
LATEST = "latest"
NIGHTLY_BASE = "nanos-nightly-linux"
NIGHTLY_STAMP = NIGHTLY_BASE + ".timestamp"
ATTEMPTS = 3
BACKOFF = 1.0  # seconds before the second attempt; doubled for each further one
CHUNK = 1024 * 1024
AGENT = "unikernel.ops"


def location(release_url):
    """The release location with one trailing slash, checked for a scheme we can read."""
    url = (release_url or DEFAULT_RELEASE_URL).strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in ("http", "https", "file"):
        raise OpsError("release_url %r is not an http, https or file URL" % (release_url,))
    check_url(url, "release_url")
    return url.rstrip("/") + "/"


def check_url(url, what):
    """Refuse a URL urllib cannot parse (a bracket left open, a port that is no number) before
    anything is fetched, naming the option it came from. Returns its port (None for none)."""
    try:
        return urllib.parse.urlsplit(url).port
    except ValueError as e:
        raise OpsError("%s %r is not a valid URL: %s" % (what, url, e))


def release_file(version):
    return "nanos-release-linux-%s.tar.gz" % version


def release_tarball_url(release_url, version):
    return "%s%s/%s" % (location(release_url), version, release_file(version))


def latest_url(release_url):
    return location(release_url) + "latest.txt"


def nightly_tarball_url(release_url):
    return "%s%s/%s.tar.gz" % (location(release_url), NIGHTLY, NIGHTLY_BASE)


def nightly_stamp_url(release_url):
    return "%s%s/%s" % (location(release_url), NIGHTLY, NIGHTLY_STAMP)


class _Retry(Exception):
    """A failure worth another attempt (no answer, a broken connection, a 5xx)."""

    def __init__(self, why):
        super(_Retry, self).__init__(why)
        self.why = why


def _describe(e):
    """A short human reason for a urllib / socket failure."""
    if isinstance(e, urllib.error.HTTPError):
        return "answered %d %s" % (e.code, e.reason)
    if isinstance(e, urllib.error.URLError):
        e = e.reason if not isinstance(e.reason, str) else e
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "no answer (timed out)"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return str(e) or type(e).__name__


class Fetcher:
    """GETs with bounded retries. timeout: seconds for the store to answer a request, all its
    attempts together, and for each read of a body once it answered. downloads: what download()
    fetched, as {url, bytes, seconds, attempts}."""

    def __init__(self, timeout=60, validate_certs=True, attempts=ATTEMPTS, backoff=BACKOFF):
        if timeout <= 0:
            raise OpsError("timeout must be a positive number of seconds, not %r" % (timeout,))
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.downloads = []

    def _open(self, url, wait):
        try:
            return open_url(url, timeout=wait, validate_certs=self.validate_certs,
                            http_agent=AGENT, decompress=False, use_netrc=False)
        except urllib.error.HTTPError as e:
            e.close()
            if e.code >= 500:
                raise _Retry(_describe(e))
            if e.code == 404:
                raise OpsError("GET %s answered 404 Not Found: the store has no such file" % url,
                               url=url, status=e.code)
            raise OpsError("GET %s %s" % (url, _describe(e)), url=url, status=e.code)
        except (SSLValidationError, ssl.CertificateError) as e:
            raise OpsError("GET %s: the server's certificate was refused (%s); give the right "
                           "CA to the host or set validate_certs=false" % (url, e), url=url)
        except urllib.error.URLError as e:
            if isinstance(e.reason, (ssl.SSLError, ssl.CertificateError)):
                raise OpsError("GET %s: TLS failed (%s)" % (url, e.reason), url=url)
            if isinstance(e.reason, FileNotFoundError):
                raise OpsError("GET %s: no such file" % url, url=url)
            raise _Retry(_describe(e))
        except (ValueError, http.client.InvalidURL) as e:  # no retry mends a URL
            raise OpsError("GET %s: not a URL that can be fetched (%s)" % (url, e), url=url)
        except (UrlsConnectionError, http.client.HTTPException, OSError) as e:
            raise _Retry(_describe(e))

    def _attempts(self, url, body):
        """Call body(response, attempt) until it returns, within the bounds; return its value."""
        deadline = time.monotonic() + self.timeout
        started = time.monotonic()
        why, made = None, 0
        for attempt in range(1, self.attempts + 1):
            left = deadline - time.monotonic()
            if attempt > 1:
                delay = self.backoff * 2 ** (attempt - 2)
                if left <= delay + 0.05:
                    break  # no time left for another attempt
                time.sleep(delay)
                left -= delay
            made = attempt
            try:
                resp = self._open(url, left)
            except _Retry as e:
                why = e.why
                continue
            try:
                with resp:
                    return body(resp, attempt)
            except _Retry as e:
                why = e.why
                deadline = time.monotonic() + self.timeout  # it answered, then broke off
            except (http.client.HTTPException, OSError) as e:
                why = _describe(e)
                deadline = time.monotonic() + self.timeout
        raise OpsError("GET %s failed after %d attempt%s in %.1f s: %s" % (
            url, made, "" if made == 1 else "s", time.monotonic() - started, why),
            url=url)

    def read_text(self, url, limit=4096):
        """A small text file (latest.txt, a timestamp), stripped."""
        def body(resp, dummy):
            data = resp.read(limit + 1)
            if len(data) > limit:
                raise OpsError("GET %s: more than %d bytes; this is not a release store's "
                               "%s" % (url, limit, url.rsplit("/", 1)[-1]), url=url)
            try:
                return data.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise OpsError("GET %s: not text" % url, url=url)
        return self._attempts(url, body)

    def download(self, url, dest):
        """Stream url into dest (owner-only, replaced on each attempt), never all in memory.
        Returns and records {url, bytes, seconds, attempts}."""
        started = time.monotonic()

        def body(resp, attempt):
            length = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
            got = 0
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                while True:
                    chunk = resp.read(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    got += len(chunk)
            if length is not None and length.isdigit() and got != int(length):
                raise _Retry("the connection closed after %d of %s bytes" % (got, length))
            return got, attempt

        got, attempts = self._attempts(url, body)
        info = {"url": url, "bytes": got, "seconds": round(time.monotonic() - started, 3),
                "attempts": attempts}
        self.downloads.append(info)
        return info
