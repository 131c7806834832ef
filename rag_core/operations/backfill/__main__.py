"""``python -m rag_core.operations.backfill``: see :mod:`rag_core.operations.backfill.cli`."""

from rag_core.operations.backfill.cli import main

raise SystemExit(main())
