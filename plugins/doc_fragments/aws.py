# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection options of provider aws, named as amazon.aws names them.
    DOCUMENTATION = r"""
options:
  region:
    description:
      - The AWS region, for example V(us-east-1).
      - Defaults to the region of O(zone), then to the E(AWS_REGION) or E(AWS_DEFAULT_REGION)
        environment variables and the shared config file, as in boto3.
      - Only with O(provider=aws).
    type: str
    aliases: [aws_region]
  zone:
    description:
      - The availability zone of volumes and instances, for example V(us-east-1a). Required to
        create a volume or run an instance; checked against the region's zones before anything
        is changed.
      - With O(provider=gcp), the zone of disks and instances, for example V(us-central1-a).
      - Only with a cloud O(provider).
    type: str
    aliases: [availability_zone]
  endpoint_url:
    description:
      - Send every EC2 and EBS request to this URL instead of AWS' own endpoints, for example a
        local test endpoint. E(AWS_ENDPOINT_URL) works as in boto3.
      - With O(provider=gcp), the Compute Engine API endpoint (operations are polled there too).
      - With O(provider=azure), the Resource Manager endpoint (V(https://management.azure.com)
        when omitted).
      - Only with a cloud O(provider).
    type: str
    aliases: [aws_endpoint_url]
  profile:
    description:
      - A profile of the shared AWS config and credentials files.
    type: str
    aliases: [aws_profile]
  access_key:
    description:
      - The AWS access key id. Without it, boto3 finds credentials as it always does
        (E(AWS_ACCESS_KEY_ID), the shared files, an instance role).
    type: str
    aliases: [aws_access_key_id]
  secret_key:
    description:
      - The AWS secret access key. It never appears in a result or a message.
    type: str
    aliases: [aws_secret_access_key]
  session_token:
    description:
      - The AWS session token for temporary credentials.
    type: str
    aliases: [aws_session_token]
  validate_certs:
    description:
      - Verify the endpoint's TLS certificate.
    type: bool
    default: true
notes:
  - Provider aws needs the Python packages boto3 and botocore on the managed host.
  - Throttling and transient errors are retried by botocore (standard mode, 8 attempts), and
    each snapshot block a bounded number of times more.
requirements:
  - boto3 (with O(provider=aws))
"""

    # The bounded waits every cloud backend does.
    WAITS = r"""
options:
  wait:
    description:
      - Wait until what a mutating call started is done (a snapshot completed, a volume
        available or attached, an instance running). Without it, the module returns once the
        calls were accepted.
      - With O(provider=gcp), every operation is still waited for (each step of a flow needs the
        last one done); V(false) skips only the wait for the final state (an instance
        C(RUNNING), an attachment read back).
    type: bool
    default: true
  wait_timeout:
    description:
      - How long one wait may take, in seconds; then the module fails and says what it waited
        for and what it saw last.
    type: int
    default: 600
"""
