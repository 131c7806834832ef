"""The shared base every layer may use: settings, Azure Storage clients, API keys, logging."""

from rag_core.base.auth import AuthError, Caller, authenticate
from rag_core.base.settings import Settings, get_settings, load_settings
from rag_core.base.storage import Storage

__all__ = ["AuthError", "Caller", "Settings", "Storage", "authenticate", "get_settings", "load_settings"]
