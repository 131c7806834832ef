"""The Azure Functions layer: thin adapters from HTTP, queue, blob and timer events onto rag_core.

``functions.app.create_function_app`` assembles them (``function_app.py`` calls it);
``functions.local_host`` runs the same handlers without the Functions host.
"""
