"""The generation engine: problems from a source go to a teacher; every trace lands in the run ledger.

``generate(config, run_dir)`` is resumable: problems and completed traces already in the ledger are
skipped, so re-running the same command after a crash or Ctrl-C finishes the job without paying
twice. The engine is async; at most ``concurrency`` requests are in flight.

For a teacher behind a server (``RemoteTeacher``: GPT-4o, vLLM, …) the engine also

- serves a request from the run's content-addressed cache when the same request was answered before
  (``use_cache``), so a re-run after a crash, Ctrl-C or a validator change never pays twice;
- throttles with token buckets for requests and tokens per minute (``rpm``, ``tpm``), which follow
  the server's ``x-ratelimit-*`` headers;
- retries what may succeed (429, 5xx, timeouts, lost connections, empty or malformed bodies) with
  exponential backoff and jitter, honouring ``Retry-After``; a ``TeacherError`` (bad key, unknown
  model, bad request) stops the run at once with its one-line message;
- asks once more with twice the ``max_tokens`` after a truncated answer (``finish_reason=length``);
- prices every request (``lbdata.pricing``) and stops cleanly before ``budget_usd`` would be exceeded:
  requests in flight finish, nothing new starts, and ``BudgetExceeded`` says how to resume.

With several base URLs the teacher spreads the requests over the servers (``lbdata.teachers.fleet``);
with ``samples`` > 1 the samples of one problem and variant are asked for in one request (``n``) when
the server supports it; cached prompt tokens are priced at the model's cached rate. With ``batch`` the
requests go through the provider's Batch API instead (``lbdata.teachers.batch``): same cache keys, same
ledger rows, half the price.

With ``max_attempts`` > 1 every new trace is validated as it arrives and a rejected one is requested
again (next attempt: a new trace id and seed) up to that many times; every attempt and its verdict
stay in the ledger.

The package's modules, in the order a run uses them:

- ``config``: ``GenerateConfig``, what to generate;
- ``planner``: the jobs of a run (base traces, skips, attempts, samples sharing a request), shared by
  the run and ``dry_run``;
- ``sender``: one request to a server-backed teacher (cache, budget, rate limits, retries, price),
  also used by ``lbdata judge`` and ``lbdata eval --base-url``;
- ``engine``: the queue and workers that take every job to its end, and the ledger writes;
- ``summary``: ``GenerateSummary`` and the progress bar's stats line;
- ``run``: ``generate()``; ``estimate``: ``dry_run()`` and ``DryRunEstimate``.
"""

from lbdata.generate.config import GenerateConfig
from lbdata.generate.estimate import DryRunEstimate, dry_run
from lbdata.generate.planner import trace_seed
from lbdata.generate.run import generate
from lbdata.generate.sender import BACKOFF_INITIAL_S, BACKOFF_MAX_S, cache_entry
from lbdata.generate.summary import GenerateSummary

__all__ = ["BACKOFF_INITIAL_S", "BACKOFF_MAX_S", "DryRunEstimate", "GenerateConfig", "GenerateSummary", "cache_entry",
           "dry_run", "generate", "trace_seed"]
