"""``lbdata view``: a local, static HTML viewer of runs and corpus versions.

``build_run_view(run_dir)``, ``build_corpus_view("NAME@VER")`` and ``build_diff_view(A, B)`` write a
folder that opens from disk (``file://``) in any browser: an overview page with counts and matplotlib
plots, and a sample browser whose rows live in paged data shards loaded on demand. No server, no
network, no CDN, no telemetry.
"""

from lbdata.view.build import ViewConfig, ViewSummary, build_corpus_view, build_diff_view, build_run_view

__all__ = ["ViewConfig", "ViewSummary", "build_corpus_view", "build_diff_view", "build_run_view"]
