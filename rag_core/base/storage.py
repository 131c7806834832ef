"""Azure Storage clients (Blob, Queue, Table) built from the settings: the one door to the Storage SDK.

With a connection string (Azurite locally, ``UseDevelopmentStorage=true``) the
SDK clients are built from it; with only an account name (Azure, managed
identity) they use ``DefaultAzureCredential``, so no keys live in settings.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import cached_property

from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableServiceClient, UpdateMode
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy, QueueClient, QueueServiceClient

from rag_core.base.settings import Settings

# The rest of rag_core reaches Azure Storage through this module alone: the
# client types it hands out and the errors they raise are re-exported here.
__all__ = [
    "AzureError",
    "ContainerClient",
    "MatchConditions",
    "QueueClient",
    "ResourceExistsError",
    "ResourceModifiedError",
    "ResourceNotFoundError",
    "Storage",
    "TableClient",
    "UpdateMode",
]


@dataclass
class Storage:
    """Lazily built storage clients for one settings object."""

    settings: Settings

    def _credential(self) -> TokenCredential:
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential()

    @cached_property
    def blobs(self) -> BlobServiceClient:
        s = self.settings
        if s.storage_connection_string:
            return BlobServiceClient.from_connection_string(s.storage_connection_string)
        return BlobServiceClient(
            f"https://{s.storage_account_name}.blob.core.windows.net", credential=self._credential()
        )

    @cached_property
    def queues(self) -> QueueServiceClient:
        s = self.settings
        if s.storage_connection_string:
            return QueueServiceClient.from_connection_string(s.storage_connection_string)
        return QueueServiceClient(
            f"https://{s.storage_account_name}.queue.core.windows.net", credential=self._credential()
        )

    @cached_property
    def tables(self) -> TableServiceClient:
        s = self.settings
        if s.storage_connection_string:
            return TableServiceClient.from_connection_string(s.storage_connection_string)
        return TableServiceClient(
            f"https://{s.storage_account_name}.table.core.windows.net", credential=self._credential()
        )

    def container(self, name: str) -> ContainerClient:
        """A container client; the container is created on first use."""
        client = self.blobs.get_container_client(name)
        with contextlib.suppress(ResourceExistsError):
            client.create_container()
        return client

    def queue(self, name: str) -> QueueClient:
        """A queue client speaking base64, as the Functions queue trigger expects."""
        client = self.queues.get_queue_client(
            name,
            message_encode_policy=BinaryBase64EncodePolicy(),
            message_decode_policy=BinaryBase64DecodePolicy(),
        )
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
        return client

    def table(self, name: str) -> TableClient:
        """A table client; the table is created on first use."""
        return self.tables.create_table_if_not_exists(name)
