"""The one redactor for every URL a command prints, logs or writes.

A storage URL (``search.storage``) or an MLflow URI (``search.mlflow_uri``) may carry a password:
as userinfo (``user:PASSWORD@host``), as a query parameter (``?password=``, ``?token=``,
``?sslkey=``...), inside libpq's ``options`` (``options=-c password=...``) or in a fragment. A
study's files (``search.json``, ``pareto.json``, the config recorded in the study), its status
and its log lines are shared, so each of these goes through :func:`redact_url` (a URL) or
:func:`redact_text` (a message that may quote one, such as a library's error).

The grammar is read by hand rather than by SQLAlchemy's or urllib's parser: a password with an
unescaped ``@``, ``#`` or ``/`` confuses both, and a redactor must hide too much rather than too
little. Hidden parts become ``***``; a URL with ``***`` in it is known to be a redacted copy
(``search.domain.recorded_storage_url``).
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

HIDDEN = "***"
# A query parameter whose name holds one of these (any case) carries a secret: password, passwd,
# pass, pwd, secret, token, access_token, key, api_key, sslkey, auth, credential, sig(nature).
SECRET_WORDS = ("pass", "pwd", "secret", "token", "key", "auth", "credential", "sig")
_SECRET_ASSIGNMENT = re.compile(rf"({'|'.join(SECRET_WORDS)})[\w.-]*\s*=", re.IGNORECASE)  # in a value: options=-c password=...
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_SHORTEST_QUOTED_SECRET = 4  # shorter known secrets are not searched for in free text (they would hit ordinary words)


def redact_url(url: str) -> str:
    """``url`` with its secrets replaced by ``***``: the password of its userinfo (the user stays),
    the value of every query parameter whose name or value names a secret, and its fragment.

    A URL with a raw ``@``, ``?`` or ``#`` in a password reads differently to SQLAlchemy, to urllib
    and to a person; every part that any of these readings takes for a secret is hidden."""
    shown, end = [], 0
    for start, stop in sorted(_secret_spans(url)):
        if start >= end:  # else it overlaps the span just hidden, which it extends
            shown.append(url[end:start] + HIDDEN)
        end = max(end, stop)
    return "".join(shown) + url[end:]


def redact_text(text: str, *urls: str | None) -> str:
    """A message with every URL in it redacted, and the secrets of ``urls`` (the URLs the message
    may quote in another form, e.g. percent-decoded by a library) hidden wherever they appear."""
    text = _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
    secrets = {form for url in urls if url for secret in url_secrets(url) for form in (secret, unquote_plus(secret))}
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= _SHORTEST_QUOTED_SECRET:
            text = text.replace(secret, HIDDEN)
    return text


def url_secrets(url: str) -> list[str]:
    """The parts of ``url`` that :func:`redact_url` hides."""
    return [url[start:stop] for start, stop in _secret_spans(url)]


def redact_config(values: dict) -> dict:
    """A config's plain values with the secrets a URL may carry (storage, MLflow) redacted."""
    search = dict(values.get("search") or {})
    for key in ("storage", "mlflow_uri"):
        if isinstance(search.get(key), str):
            search[key] = redact_url(search[key])
    return {**values, "search": search} if "search" in values else values


def _secret_spans(url: str) -> list[tuple[int, int]]:
    """``(start, stop)`` of every secret in ``url`` under each reading of it (non-empty spans)."""
    body = url.index("://") + 3 if "://" in url else 0
    spans = [*_password_spans(url, body), *_query_spans(url), *_fragment_spans(url)]
    return [(start, stop) for start, stop in spans if stop > start]


def _password_spans(url: str, body: int) -> list[tuple[int, int]]:
    """The password of the userinfo as SQLAlchemy reads it (``user:PASSWORD@``, a user without ``:``
    or ``/``, the first ``@`` after it), as urllib reads it (within the address, up to the last
    ``@``) and up to the last ``@`` of the whole URL (the host can hold none)."""
    spans = []
    colon = url.find(":", body)
    if colon >= 0 and "/" not in url[body:colon] and "@" not in url[body:colon]:
        for at in (url.find("@", colon), url.rfind("@")):
            if at > colon:
                spans.append((colon + 1, at))
    address_end = min([i for i in (url.find(c, body) for c in "/?#") if i >= 0], default=len(url))
    userinfo = url[body:address_end].rpartition("@")[0]
    if ":" in userinfo:
        spans.append((body + userinfo.index(":") + 1, body + len(userinfo)))
    return spans


def _query_spans(url: str) -> list[tuple[int, int]]:
    """The values of the query parameters that name a secret (``password=``, ``options=-c password=``)."""
    question = url.find("?")
    if question < 0:
        return []
    hash_sign = url.find("#", question)
    spans, position = [], question + 1
    for pair in url[question + 1: hash_sign if hash_sign >= 0 else len(url)].split("&"):
        name, equals, value = pair.partition("=")
        if equals and _is_secret(name, value):
            spans.append((position + len(name) + 1, position + len(pair)))
        position += len(pair) + 1
    return spans


def _fragment_spans(url: str) -> list[tuple[int, int]]:
    hash_sign = url.find("#")
    return [(hash_sign + 1, len(url))] if hash_sign >= 0 else []


def _is_secret(name: str, value: str) -> bool:
    plain_name = unquote_plus(name).lower()
    return any(word in plain_name for word in SECRET_WORDS) or bool(_SECRET_ASSIGNMENT.search(unquote_plus(value)))


__all__ = ["HIDDEN", "SECRET_WORDS", "redact_config", "redact_text", "redact_url", "url_secrets"]
