"""Entry point the Azure Functions host indexes: the HTTP API plus the queue, blob and timer functions.

Nothing is opened at import: the process' settings, storage clients and
knowledge base are built on the first invocation (rag_core.context).
"""

from functions.app import create_function_app
from rag_core.context import default_context

app = create_function_app(default_context)
