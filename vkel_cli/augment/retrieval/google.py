"""Google Programmable Search (Custom Search JSON API) with `searchType=image`.

The key and engine id come from $VKEL_GOOGLE_API_KEY and $VKEL_GOOGLE_CSE_ID (the key is registered as
a secret, so it never reaches logs). Results are cached per query under the vkel cache, so a re-run or an
interrupted run does not spend the daily query quota again."""

from __future__ import annotations

import hashlib
import os

import orjson

from ...fetch import http
from ...core.errors import VkelError, contains_secret, redact_excerpt, register_secret
from ...core.paths import cache_path
from ...core.records import Record, atomic_path
from . import Retriever

DEFAULT_URL = "https://www.googleapis.com/customsearch/v1"
MAX_NUM = 10  # the API returns at most 10 results per request


class GoogleImages(Retriever):
    name = "google"

    def __init__(self, api_key: str, engine_id: str, base_url: str = DEFAULT_URL, timeout: float = 30.0,
                 retries: int = 4, safe: str = "active", use_cache: bool = True):
        register_secret(api_key)
        self.api_key, self.engine_id, self.base_url = api_key, engine_id, base_url
        self.timeout, self.safe, self.use_cache = timeout, safe, use_cache
        self.policy = http.RetryPolicy(retries=retries)

    def _cache_file(self, query: str, n: int):
        digest = hashlib.sha256(orjson.dumps([self.base_url, self.engine_id, query, n, self.safe])).hexdigest()
        return cache_path("retrieval", "google", digest[:2], f"{digest}.json")

    def candidates(self, record: Record, query: str, n: int) -> list[str]:
        cache = self._cache_file(query, n) if self.use_cache else None
        if cache is not None and cache.exists():
            return orjson.loads(cache.read_bytes())["links"][:n]
        params = {"key": self.api_key, "cx": self.engine_id, "q": query, "searchType": "image",
                  "num": min(n, MAX_NUM), "safe": self.safe}
        try:
            response = http.request("GET", self.base_url, params=params, timeout=self.timeout, policy=self.policy)
        except http.HTTPFailure as err:
            raise VkelError(f"image search failed: {err.message}") from None
        if response.status_code != 200:
            raise VkelError(f"image search failed: HTTP {response.status_code}: {_api_message(response)}")
        try:
            items = response.json().get("items") or []
            # A link that carries the key (a server echoing the request) is dropped, not stored or fetched.
            links = [item["link"] for item in items if isinstance(item, dict) and isinstance(item.get("link"), str)
                     and not contains_secret(item["link"])]
        except (ValueError, AttributeError) as err:
            raise VkelError(f"image search returned something that is not its JSON: {err}") from None
        if cache is not None:
            with atomic_path(str(cache)) as handle:
                handle.write(orjson.dumps({"query": query, "links": links}))
        return links[:n]


def _api_message(response) -> str:
    try:
        return redact_excerpt(str(response.json()["error"]["message"]), 300)
    except (ValueError, KeyError, TypeError):
        return redact_excerpt(response.text, 300)


def from_options(*, search_url: str | None = None, timeout: float = 30.0, retries: int = 4, **_ignored) -> GoogleImages:
    key = os.environ.get("VKEL_GOOGLE_API_KEY")
    engine = os.environ.get("VKEL_GOOGLE_CSE_ID")
    missing = [name for name, value in (("VKEL_GOOGLE_API_KEY", key), ("VKEL_GOOGLE_CSE_ID", engine)) if not value]
    if missing:
        raise VkelError(f"--retriever google needs {' and '.join(missing)} in the environment "
                        "(a Custom Search API key and a Programmable Search engine id with image search on)")
    base = search_url or os.environ.get("VKEL_GOOGLE_BASE_URL") or DEFAULT_URL
    return GoogleImages(key, engine, base, timeout=timeout, retries=retries)
