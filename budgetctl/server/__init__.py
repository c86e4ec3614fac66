"""``budgetctl serve``: the configured store (data dir or PostgreSQL) over HTTP.

Two protocols: budgetctl's atomic API under ``/v1/`` (:mod:`.api`) and LiteLLM's hosted budget
protocol (:mod:`.litellm`), behind one guard (:mod:`.security`: token, body limit, log line).
Starlette and uvicorn (the ``server`` extra) are imported only here, and only by ``serve``.
"""
