"""What the dashboard pages and the video read-back route show, assembled from the knowledge base
and the job records: plain models a template or a JSON response renders without further queries.

Kept out of ``functions/`` so the pages, the API and the benchmarks share one assembly and the
HTTP layer stays a thin renderer; kept out of ``rag_core.knowledge`` because it also reads the
job records (``rag_core.jobs``), which the knowledge layer must not depend on.
"""
