"""Keep secrets out of everything lbdata writes or prints.

A server address may carry credentials (``http://user:sk-…@host/v1``) or a key in its query string
(``…/v1?api-key=…``). The address is used as given to send requests, but every copy that is stored
(``config.json``, the ledger, manifests, cards, the viewer) or shown (logs, errors) goes through
``redact`` first: user info becomes ``***@``, secret-looking query values become ``***``, and bare
API keys (``sk-…``, ``hf_…``) in free text are masked.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
_SECRET_PARAM = re.compile(r"key|token|secret|passw|pwd|sig|auth|credential|session", re.I)
_SECRET_FIELD = re.compile(r"^(api[_-]?key|key|token|api[_-]?token|secret|password|authorization)$", re.I)
_BARE_KEY = re.compile(r"\b(sk-[A-Za-z0-9_-]{8,}|hf_[A-Za-z0-9]{8,}|Bearer\s+[A-Za-z0-9._~+/=-]{8,})")


def redact_url(url: str) -> str:
    """``url`` without user info and with secret-looking query values masked."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:  # not parseable as a URL: mask what follows the scheme
        scheme, _, _ = url.partition("://")
        return f"{scheme}://{MASK}"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{'[' + host + ']' if ':' in host else host}{port}"
    query, fragment = _redact_params(parts.query), parts.fragment
    if "=" in fragment:  # a fragment in key=value form (``#access_token=…``)
        fragment = _redact_params(fragment)
    # a key in the path (``/v1/keys/sk-…/``) or a bare fragment: the URL is not a file name, mask it
    return urlunsplit((parts.scheme, netloc, _BARE_KEY.sub(MASK, parts.path), query, _BARE_KEY.sub(MASK, fragment)))


def _redact_params(query: str) -> str:
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, MASK if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="*")


def _redact_urls(text: str) -> str:
    return _URL.sub(lambda m: redact_url(m.group()), text)


def redact_text(text: str) -> str:
    """Free text (a log line, an error) with every URL redacted and bare API keys masked."""
    return _BARE_KEY.sub(MASK, _redact_urls(text))


def redact(obj: Any) -> Any:
    """A copy of a JSON-like settings value with secret fields masked and the URLs in its strings redacted.

    Bare-key masking is left to free text: in settings it would also hit a file named ``sk-learn.jsonl``.
    """
    if isinstance(obj, dict):
        return {k: MASK if isinstance(k, str) and _SECRET_FIELD.match(k) and obj[k] else redact(v)
                for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(redact(v) for v in obj)
    if isinstance(obj, str):
        return _redact_urls(obj)
    return obj


__all__ = ["MASK", "redact", "redact_text", "redact_url"]
