"""Head-office reports (SPEC E1–E5, C4, F5, I5): queries over the summaries, exports.

The read side only: the summary tables are kept at ingest by the store
(:mod:`central.store.summary`); reports read them through
:class:`central.store.reader.Reader`, never the store's internals.

* :mod:`central.reports.scope` — periods and organisation scope (org-code prefixes).
* :mod:`central.reports.catalog` — every report, as a :class:`~central.reports.catalog.Report`.
* :mod:`central.reports.quality` — branches with missing or disagreeing data (F5).
* :mod:`central.reports.bookings`, :mod:`central.reports.staff` — appointment counts and
  the staff search by 工号 (I5).
* :mod:`central.reports.export` — the same report as ``.xlsx`` (with a chart) or CSV.
* :mod:`central.reports.api` — the JSON API under ``/api/reports`` (and ``/api/alerts``).

This package imports nothing heavy at import time.
See docs/reports.md.
"""
