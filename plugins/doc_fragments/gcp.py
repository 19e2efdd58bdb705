# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection options of provider gcp, named as google.cloud names them.
    DOCUMENTATION = r"""
options:
  project:
    description:
      - The Google Cloud project. Required with O(provider=gcp).
    type: str
  bucket:
    description:
      - The Cloud Storage bucket that stages uploads - volumes and images are sent to it as
        C(disk.raw) in a C(.tar.gz) (objects under C(unikernel-ops/)), and Compute Engine
        imports them from there. It must exist. Only with O(provider=gcp).
    type: str
  storage_endpoint_url:
    description:
      - Send Cloud Storage requests to this URL, for example a local emulator.
        E(STORAGE_EMULATOR_HOST) works as in google-cloud-storage.
    type: str
  auth_kind:
    description:
      - How to authenticate - V(application) (default; Application Default Credentials,
        E(GOOGLE_APPLICATION_CREDENTIALS)), V(serviceaccount) (O(service_account_file)) or
        V(accesstoken) (O(access_token)).
    type: str
    choices: [application, serviceaccount, accesstoken]
  service_account_file:
    description:
      - A service account's JSON key file, with O(auth_kind=serviceaccount).
    type: path
  access_token:
    description:
      - An OAuth2 access token, with O(auth_kind=accesstoken). It never appears in a result or a
        message.
      - With O(provider=azure), a bearer token for Resource Manager, used when O(auth_source) is
        V(auto) or omitted.
    type: str
notes:
  - With O(provider=gcp), O(endpoint_url) points the Compute Engine clients at another endpoint,
    and O(zone) is the zone of disks and instances (it is checked before anything changes).
  - Provider gcp needs the Python packages google-cloud-compute and google-cloud-storage on the
    managed host.
requirements:
  - google-cloud-compute and google-cloud-storage (with O(provider=gcp))
"""
