"""Head-office reports (SPEC E1–E5, C4, F5): summaries kept at ingest, queries, exports.

* :mod:`central.reports.summary` — the summary tables, folded from events at ingest.
* :mod:`central.reports.scope` — periods and organisation scope (org-code prefixes).
* :mod:`central.reports.catalog` — every report, as a :class:`~central.reports.catalog.Report`.
* :mod:`central.reports.export` — the same report as ``.xlsx`` (with a chart) or CSV.
* :mod:`central.reports.api` — the JSON API under ``/api/reports`` (and ``/api/alerts``).

This package imports nothing heavy at import time: the store imports the summariser.
See docs/reports.md.
"""
