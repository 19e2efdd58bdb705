# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection options of provider azure, named as azure.azcollection names them.
    # endpoint_url (unikernel.ops.aws) and access_token (unikernel.ops.gcp) serve Azure too.
    DOCUMENTATION = r"""
options:
  subscription_id:
    description:
      - The Azure subscription. Required with O(provider=azure); E(AZURE_SUBSCRIPTION_ID) when
        omitted.
    type: str
  resource_group:
    description:
      - The resource group that holds the disks, images and VMs. It must exist. Required with
        O(provider=azure).
    type: str
  location:
    description:
      - The Azure region new resources are made in, for example V(eastus). Required with
        O(provider=azure) to create something.
    type: str
  auth_source:
    description:
      - Where credentials come from, as in azure.azcollection. V(auto) (default) uses
        O(access_token) when given, then a service principal (O(client_id), O(secret),
        O(tenant)), then azure-identity's default chain (environment, managed identity, the
        Azure CLI). V(env) reads E(AZURE_CLIENT_ID), E(AZURE_CLIENT_SECRET) and
        E(AZURE_TENANT_ID); V(cli) the Azure CLI's login; V(msi) the managed identity.
    type: str
    choices: [auto, env, cli, msi]
  client_id:
    description:
      - The service principal's application id (or a user-assigned identity's, with
        O(auth_source=msi)).
    type: str
  secret:
    description:
      - The service principal's secret. It never appears in a result or a message.
    type: str
  tenant:
    description:
      - The service principal's tenant id.
    type: str
notes:
  - With O(provider=azure), O(endpoint_url) points the client at another Resource Manager
    endpoint; every long-running operation is polled until it ends, within O(wait_timeout).
  - Provider azure needs the Python packages azure-mgmt-compute, azure-storage-blob and
    azure-identity on the managed host.
requirements:
  - azure-mgmt-compute, azure-storage-blob and azure-identity (with O(provider=azure))
"""
