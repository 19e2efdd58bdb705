# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""google-cloud-compute and google-cloud-storage clients from the module's options, waits on
operations, and Google's errors as clear messages.

Authentication as google.cloud does it (auth_kind application, serviceaccount, accesstoken).
endpoint_url points the Compute clients at another endpoint; every operation is waited for with
operations clients built with the same options, because the SDK's own op.result() polls
compute.googleapis.com whatever endpoint the client was given.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.unikernel.ops.plugins.module_utils.cloud.calls import CallLog
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.waits import wait_until
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import OpsHome

try:
    import google.auth
    import google.auth.exceptions
    import google.oauth2.credentials
    import google.oauth2.service_account
    from google.api_core import exceptions as gexc
    from google.api_core.client_options import ClientOptions
    from google.cloud import compute_v1, storage
    HAS_GCP = True
except ImportError:
    compute_v1 = None  # checked in GcpConnection: the module explains what to install
    HAS_GCP = False

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


def explain(e):
    """(message, details) for Google's errors, None for anything else."""
    if not HAS_GCP:
        return None
    if isinstance(e, gexc.GoogleAPICallError):
        reasons = [x.get("reason") for x in (e.errors or []) if isinstance(x, dict)]
        return "%s %s" % (e.code, e.message), {
            "error": {"code": e.code, "message": e.message, "reasons": reasons}}
    if isinstance(e, google.auth.exceptions.GoogleAuthError):
        return "authentication failed: %s" % e, {"error": {"code": type(e).__name__}}
    return None


def not_found(e):
    return HAS_GCP and isinstance(e, gexc.NotFound)


def credentials(params):
    kind = params.get("auth_kind") or "application"
    if kind == "accesstoken":
        token = params.get("access_token")
        if not token:
            raise OpsError("auth_kind accesstoken needs access_token")
        return google.oauth2.credentials.Credentials(token=token)
    if kind == "serviceaccount":
        path = params.get("service_account_file")
        if not path:
            raise OpsError("auth_kind serviceaccount needs service_account_file")
        try:
            return google.oauth2.service_account.Credentials.from_service_account_file(
                path, scopes=SCOPES)
        except (OSError, ValueError) as e:
            raise OpsError("cannot read service_account_file %s: %s" % (path, e))
    try:
        return google.auth.default(scopes=SCOPES)[0]
    except google.auth.exceptions.DefaultCredentialsError as e:
        raise OpsError("no Google credentials: set auth_kind (serviceaccount with "
                       "service_account_file, or accesstoken with access_token), or "
                       "GOOGLE_APPLICATION_CREDENTIALS (%s)" % e)


class GcpConnection:
    """One project's clients and the task's CallLog."""

    def __init__(self, params, check_mode=False):
        if not HAS_GCP:
            raise OpsError("provider gcp needs the Python packages google-cloud-compute and "
                           "google-cloud-storage on the managed host")
        self.params = params
        self.home = OpsHome(params.get("ops_dir"))
        self.project = params.get("project")
        if not self.project:
            raise OpsError("project is required with provider gcp")
        self.zone = params.get("zone")
        self.wait = params.get("wait", True)
        self.wait_timeout = params.get("wait_timeout") or 600
        self.log = CallLog("GCP", check_mode, explain)
        self._creds = credentials(params)
        endpoint = params.get("endpoint_url")
        kw = {"credentials": self._creds, "transport": "rest"}
        if endpoint:
            kw["client_options"] = ClientOptions(api_endpoint=endpoint)
        self.disks = compute_v1.DisksClient(**kw)
        self.images = compute_v1.ImagesClient(**kw)
        self.instances = compute_v1.InstancesClient(**kw)
        self.zones = compute_v1.ZonesClient(**kw)
        self.zone_operations = compute_v1.ZoneOperationsClient(**kw)
        self.global_operations = compute_v1.GlobalOperationsClient(**kw)
        self._storage = None

    @property
    def storage(self):
        """The Cloud Storage client, made when first needed. STORAGE_EMULATOR_HOST works as in
        google-cloud-storage; storage_endpoint_url sets the endpoint explicitly."""
        if self._storage is None:
            kw = {"project": self.project, "credentials": self._creds}
            if self.params.get("storage_endpoint_url"):
                kw["client_options"] = {"api_endpoint": self.params["storage_endpoint_url"]}
            self._storage = storage.Client(**kw)
        return self._storage

    def require_zone(self):
        if not self.zone:
            raise OpsError("zone is required with provider gcp (for example us-central1-a)")
        try:
            self.log.read("compute.zones.get", self.zone, self.zones.get, project=self.project,
                          zone=self.zone)
        except OpsError as e:
            if (e.details.get("error") or {}).get("code") == 404:
                raise OpsError("zone %r does not exist in project %s" % (self.zone, self.project),
                               **e.details)
            raise
        return self.zone

    def require_bucket(self):
        name = self.params.get("bucket")
        if not name:
            raise OpsError("bucket is required with provider gcp to upload volumes and images "
                           "(the Cloud Storage bucket that stages the disk.raw archives)")
        bucket = self.log.read("storage.buckets.get", name, self.storage.lookup_bucket, bucket_name=name)
        if bucket is None:
            raise OpsError("bucket %r does not exist (or this account cannot see it); create it "
                           "first: it stages the disk.raw archives uploaded to Compute Engine"
                           % name)
        return bucket

    def list_labelled(self, call, client, request_type, label, kind, **kwargs):
        """Every resource the collection made of this kind (by its label), all pages."""
        request = request_type(filter="labels.%s=%s" % (label, kind), **kwargs)
        return self.log.read(call, kwargs.get("zone") or self.project,
                             lambda: list(client.list(request=request)))

    def get(self, call, resource, fn, **kwargs):
        """A read that returns None for 404."""
        try:
            return self.log.read(call, resource, fn, **kwargs)
        except OpsError as e:
            if (e.details.get("error") or {}).get("code") == 404:
                return None
            raise

    def wait_for(self, operation, zone=None):
        """Until the operation is DONE (bounded by wait_timeout); its error as an OpsError."""
        name = operation.name
        if zone:
            def get():
                return self.log.read("compute.zoneOperations.get", name,
                                     self.zone_operations.get, project=self.project, zone=zone,
                                     operation=name)
        else:
            def get():
                return self.log.read("compute.globalOperations.get", name,
                                     self.global_operations.get, project=self.project,
                                     operation=name)

        def probe():
            op = get()
            return op.status == compute_v1.Operation.Status.DONE, op
        # always waited for, even with wait: false - the next step of a flow needs its result
        op = wait_until(probe, "operation %s" % name, self.wait_timeout)
        if op.error and op.error.errors:
            errs = "; ".join("%s: %s" % (x.code, x.message) for x in op.error.errors)
            raise OpsError("GCP operation %s (%s on %s) failed: %s" % (
                name, op.operation_type, op.target_link, errs),
                error={"code": op.http_error_status_code, "message": errs})
        return op
