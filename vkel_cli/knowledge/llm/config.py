"""Which LLMs to use: a TOML file (--llm-config) and/or inline --llm specs.

TOML, either form (see docs/knowledge.md):

    [[llm]]                          [llm.gpt]
    name = "gpt"                     base_url = "https://api.openai.com/v1"
    base_url = "https://..."         model = "gpt-4o-mini"
    model = "gpt-4o-mini"            api_key_env = "OPENAI_API_KEY"
    api_key_env = "OPENAI_API_KEY"   max_concurrency = 8
    max_concurrency = 8              params = { temperature = 0 }

A local model: `path = "/models/qwen"` (kind "local" implied). Inline:
`--llm NAME=URL,model=M[,key_env=VAR,concurrency=N,timeout=S,retries=N,PARAM=VALUE...]`,
`--llm NAME=local:PATH` (or any value that is not an http(s) URL: a local model directory).
"""

from __future__ import annotations

import os
from dataclasses import fields

from ...core.errors import VkelError
from .base import EndpointSpec

_FIELDS = {f.name for f in fields(EndpointSpec)}
_ALIASES = {"key_env": "api_key_env", "concurrency": "max_concurrency", "url": "base_url"}
DEFAULT_PARAMS = {"temperature": 0}  # reproducible answers, and stable cache keys across runs


def _load_toml(path: str) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise VkelError("reading --llm-config needs Python 3.11+ or the `tomli` package") from None
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as err:
        raise VkelError(f"cannot read LLM config: {err.strerror}", path) from None
    except tomllib.TOMLDecodeError as err:
        raise VkelError(f"invalid TOML: {err}", path) from None


def _spec(name: str, table: dict, where: str) -> EndpointSpec:
    values: dict = {"name": name, "params": dict(DEFAULT_PARAMS)}
    for key, value in table.items():
        key = _ALIASES.get(key, key)
        if key == "params":
            if not isinstance(value, dict):
                raise VkelError(f"LLM {name!r}: params must be a table", where)
            values["params"].update(value)
        elif key in _FIELDS:
            values[key] = value
        else:
            raise VkelError(f"LLM {name!r}: unknown key {key!r} (known: {', '.join(sorted(_FIELDS - {'name'}))}, "
                            "key_env, concurrency)", where)
    if values.get("path") and "kind" not in table:
        values["kind"] = "local"
    try:
        spec = EndpointSpec(**values)
        spec.max_concurrency = int(spec.max_concurrency)
        spec.timeout, spec.retries = float(spec.timeout), int(spec.retries)
    except (TypeError, ValueError) as err:
        raise VkelError(f"LLM {name!r}: {err}", where) from None
    if spec.max_concurrency < 1:
        raise VkelError(f"LLM {name!r}: max_concurrency must be >= 1", where)
    if spec.kind == "openai" and not (spec.base_url and spec.model):
        raise VkelError(f"LLM {name!r}: needs base_url and model", where)
    if spec.kind == "local" and not spec.path:
        raise VkelError(f"LLM {name!r}: a local model needs path", where)
    return spec


def specs_from_toml(path: str) -> list[EndpointSpec]:
    data = _load_toml(path)
    tables = data.get("llm")
    if isinstance(tables, list):  # [[llm]] with name = ...
        specs = []
        for i, table in enumerate(tables):
            name = table.get("name")
            if not isinstance(name, str) or not name:
                raise VkelError(f"[[llm]] entry {i + 1} has no name", path)
            specs.append(_spec(name, {k: v for k, v in table.items() if k != "name"}, path))
        return specs
    if isinstance(tables, dict):  # [llm.NAME]
        return [_spec(name, table, path) for name, table in tables.items()]
    raise VkelError("no [[llm]] or [llm.NAME] tables", path)


def _scalar(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def spec_from_inline(text: str) -> EndpointSpec:
    where = f"--llm {text}"
    head, *rest = text.split(",")
    name, sep, value = head.partition("=")
    if not sep or not name or not value:
        raise VkelError("expected NAME=URL,model=M[,key_env=VAR,concurrency=N] or NAME=local:PATH", where)
    table: dict = {}
    if value.startswith(("http://", "https://")):
        table["base_url"] = value
    else:
        table["path"] = value.removeprefix("local:")
    params = {}
    for part in rest:
        key, sep, item = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise VkelError(f"expected KEY=VALUE, got {part!r}", where)
        if _ALIASES.get(key, key) in _FIELDS:
            table[key] = item
        else:  # anything else is a request parameter: temperature=0.2, max_tokens=512
            params[key] = _scalar(item)
    if params:
        table["params"] = params
    return _spec(name, table, where)


def resolve(config: str | None, inline: list[str] | None) -> list[EndpointSpec]:
    """Every configured LLM, config file first; $VKEL_LLM_CONFIG when neither is given."""
    config = config or (None if inline else os.environ.get("VKEL_LLM_CONFIG"))
    specs = specs_from_toml(config) if config else []
    specs += [spec_from_inline(text) for text in inline or []]
    seen = set()
    for spec in specs:
        if spec.name in seen:
            raise VkelError(f"LLM name {spec.name!r} is configured twice")
        seen.add(spec.name)
    if not specs:
        raise VkelError("no LLM configured: give --llm-config FILE or --llm NAME=URL,model=M (see docs/knowledge.md)")
    return specs


def select(specs: list[EndpointSpec], only: list[str] | None) -> list[EndpointSpec]:
    """The specs named in `only` (all when it is empty), in configured order; unknown names are errors."""
    if not only:
        return specs
    names = [spec.name for spec in specs]
    unknown = [name for name in only if name not in names]
    if unknown:
        raise VkelError(f"--only names LLM(s) not configured: {', '.join(unknown)} (configured: {', '.join(names)})")
    return [spec for spec in specs if spec.name in only]


def open_endpoints(config: str | None, inline: list[str] | None, *, use_cache: bool = True, ledger=None,
                   specs: list[EndpointSpec] | None = None, only: list[str] | None = None):
    """Build every configured LLM (or those named in `only`), wrapped with the shared cache (unless
    use_cache is false) and the ledger: the endpoints `vkel knowledge` and `vkel vote` call."""
    from .base import build
    from .cache import Cache, CachedEndpoint

    specs = select(specs if specs is not None else resolve(config, inline), only)
    cache = Cache() if use_cache else None
    return [CachedEndpoint(build(spec), cache, ledger) for spec in specs]
