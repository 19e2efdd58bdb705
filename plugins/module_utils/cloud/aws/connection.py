# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""boto3 clients from the module's connection options, and AWS errors as clear messages.

Credentials come from the options or, as in boto3, from the environment, the shared config
files or an instance role. endpoint_url points every client at one endpoint (a local moto
server in the tests). No credential is ever put into a message or a result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.unikernel.ops.plugins.module_utils.cloud.calls import CallLog
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import OpsHome

try:
    import boto3
    import botocore.config
    import botocore.exceptions
    HAS_BOTO3 = True
except ImportError:
    HAS_BOTO3 = False

# Client-side retries of throttling and transient errors, as amazon.aws' AWSRetry does.
RETRIES = {"max_attempts": 8, "mode": "standard"}
# Codes worth another try in the block uploader, on top of botocore's own retries.
RETRYABLE = ("ThrottlingException", "RequestThrottledException", "InternalServerException",
             "ServiceUnavailableException", "InternalError", "RequestLimitExceeded")


def explain(e):
    """(message, details) for boto3's errors, None for anything else."""
    if not HAS_BOTO3:
        return None
    if isinstance(e, botocore.exceptions.ClientError):
        err = e.response.get("Error", {})
        meta = e.response.get("ResponseMetadata", {})
        code = err.get("Code") or "Unknown"
        return ("%s: %s" % (code, err.get("Message") or e)), {
            "error": {"code": code, "message": err.get("Message")},
            "response_metadata": {"request_id": meta.get("RequestId"),
                                  "http_status_code": meta.get("HTTPStatusCode")}}
    if isinstance(e, botocore.exceptions.NoCredentialsError):
        return ("no AWS credentials: set access_key and secret_key, a profile, or the "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY environment variables"), {}
    if isinstance(e, botocore.exceptions.BotoCoreError):
        return str(e), {"error": {"code": type(e).__name__}}
    return None


def retryable(e):
    if HAS_BOTO3 and isinstance(e, botocore.exceptions.ClientError):
        return e.response.get("Error", {}).get("Code") in RETRYABLE
    return HAS_BOTO3 and isinstance(e, (botocore.exceptions.ConnectionError,
                                        botocore.exceptions.ReadTimeoutError))


class AwsConnection:
    """One region's clients and the task's CallLog."""

    def __init__(self, params, check_mode=False):
        if not HAS_BOTO3:
            raise OpsError("provider aws needs the Python packages boto3 and botocore on the "
                           "managed host (pip install boto3)")
        self.params = params
        self.home = OpsHome(params.get("ops_dir"))
        self.zone = params.get("zone")
        self.wait = params.get("wait", True)
        self.wait_timeout = params.get("wait_timeout") or 600
        self.log = CallLog("AWS", check_mode, explain)
        try:
            session = boto3.session.Session(
                profile_name=params.get("profile"),
                aws_access_key_id=params.get("access_key"),
                aws_secret_access_key=params.get("secret_key"),
                aws_session_token=params.get("session_token"),
                region_name=params.get("region") or self._region_of_zone(self.zone))
        except botocore.exceptions.ProfileNotFound as e:
            raise OpsError("AWS profile %r was not found: %s" % (params.get("profile"), e))
        self.region = session.region_name
        if not self.region:
            raise OpsError("no AWS region: set region (or zone, or AWS_DEFAULT_REGION)")
        self._session = session
        self._client_args = dict(
            endpoint_url=params.get("endpoint_url"), verify=params.get("validate_certs", True),
            config=botocore.config.Config(retries=RETRIES, max_pool_connections=32,
                                          user_agent_extra="unikernel.ops"))
        self.ec2 = session.client("ec2", **self._client_args)
        self._ebs = None

    @property
    def ebs(self):
        """The EBS direct API client, made when first needed (most tasks never send a block)."""
        if self._ebs is None:
            self._ebs = self._session.client("ebs", **self._client_args)
        return self._ebs

    @staticmethod
    def _region_of_zone(zone):
        # us-east-1a -> us-east-1; local zones (us-west-2-lax-1a) need region set
        if zone and zone[-1].isalpha() and zone[-2].isdigit():
            return zone[:-1]
        return None

    def require_zone(self):
        """The zone, checked against the region's zones (read-only)."""
        if not self.zone:
            raise OpsError("zone is required with provider aws (the availability zone of the "
                           "volumes and instances, for example %sa)" % self.region)
        zones = self.log.read("ec2.DescribeAvailabilityZones", self.region,
                              self.ec2.describe_availability_zones)["AvailabilityZones"]
        names = sorted(z["ZoneName"] for z in zones)
        if self.zone not in names:
            raise OpsError("zone %r is not an availability zone of region %s (zones: %s)"
                           % (self.zone, self.region, ", ".join(names) or "none"))
        return self.zone


def tag_list(tags):
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def tag_dict(resource):
    return dict((t["Key"], t["Value"]) for t in resource.get("Tags") or [])


def user_tags(tags):
    """The user's tags as strings; keys the collection keeps for itself are refused."""
    out = {}
    for k, v in (tags or {}).items():
        k = str(k)
        if k in ("Name", "CreatedBy") or k.startswith("unikernel-ops:") or k.startswith("aws:"):
            raise OpsError("tag %r is set by the collection (or by AWS) and cannot be given" % k)
        out[k] = "" if v is None else str(v)
    return out
