"""`vkel knowledge`: for every entity of every record, ask each configured LLM how the entity looks
(one prompt per coarse type, from resources/knowledge_templates.json or --templates), and write
`knowledge[entity][llm name]` in input order, streaming.

Per record, `meta.knowledge.aspects[entity][llm]` keeps the parsed answer (aspect -> sentence, or
null for a free-text answer) for `vkel vote`, and `meta.llm_usage.knowledge` the calls and tokens.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Iterator

from ..core import hierarchy
from ..core.errors import ErrorPolicy, VkelError
from .llm.base import Endpoint
from .llm.ledger import usage_of
from .llm.parallel import Pools, fan_out
from ..core.progress import log
from ..core.records import meta

SOURCES = ("auto", "stage1", "gold")
FALLBACK_TYPE = "other"
NA = "N/A"


# ---------------------------------------------------------------- templates

@lru_cache(maxsize=1)
def default_templates() -> dict:
    text = resources.files("vkel_cli.resources").joinpath("knowledge_templates.json").read_text("utf-8")
    return json.loads(text)


def load_templates(path: str | None = None) -> dict:
    """The shipped templates, with the top-level texts and the types of `path` (same format) over them."""
    base = json.loads(json.dumps(default_templates()))
    if not path:
        return base
    try:
        with open(path, encoding="utf-8") as handle:
            override = json.load(handle)
    except OSError as err:
        raise VkelError(f"cannot read templates: {err.strerror}", path) from None
    except ValueError as err:
        raise VkelError(f"templates are not valid JSON: {err}", path) from None
    if not isinstance(override, dict):
        raise VkelError("templates must be a JSON object", path)
    for key in ("system", "task", "format"):
        if key in override:
            base[key] = override[key]
    for coarse, table in (override.get("types") or {}).items():
        if not isinstance(table, dict) or not isinstance(table.get("aspects"), dict) or not table["aspects"]:
            raise VkelError(f"types.{coarse} needs an `aspects` object (aspect -> what to describe)", path)
        base["types"][coarse] = table
    return base


def type_template(templates: dict, coarse: str | None) -> tuple[str, dict]:
    coarse = (coarse or "").lower()
    if coarse in templates["types"]:
        return coarse, templates["types"][coarse]
    return coarse or FALLBACK_TYPE, templates["types"][FALLBACK_TYPE]


def aspects_for(templates: dict, coarse: str | None) -> list[str]:
    return ["fine_type", *type_template(templates, coarse)[1]["aspects"]]


def build_messages(templates: dict, entity: str, coarse: str | None, sentence: str) -> list[dict]:
    coarse_name, table = type_template(templates, coarse)
    fines = hierarchy.fine_types(coarse_name) or hierarchy.fine_types(FALLBACK_TYPE)
    keys = ["fine_type", *table["aspects"]]
    fill = {"{entity}": entity, "{coarse}": coarse_name, "{sentence}": sentence,
            "{fine_types}": ", ".join(fines), "{keys}": ", ".join(f'"{k}"' for k in keys)}

    def render(text: str) -> str:
        for key, value in fill.items():  # plain replacement: user templates may contain JSON braces
            text = text.replace(key, value)
        return text

    lines = [render(templates["task"]), "", f"Entity: {entity}", f"Coarse type: {coarse_name}",
             f"Sentence: {sentence}", "", render(table.get("instruction", "Describe:")),
             f"- fine_type: the fine-grained type, one of: {', '.join(fines)}"]
    lines += [f"- {aspect}: {render(what)}" for aspect, what in table["aspects"].items()]
    lines += ["", render(templates["format"])]
    return [{"role": "system", "content": templates["system"]}, {"role": "user", "content": "\n".join(lines)}]


# ---------------------------------------------------------------- answers

def norm_key(key: str) -> str:
    key = re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")
    return key.replace("colour", "color")


_KEY_ALIASES = {"type": "fine_type", "fine_grained_type": "fine_type", "fine": "fine_type", "finetype": "fine_type"}


def _key_map(aspects: list[str]) -> dict[str, str]:
    table = {norm_key(a): a for a in aspects}
    table.update({k.replace("_", ""): a for k, a in list(table.items())})
    table.update({alias: "fine_type" for alias in _KEY_ALIASES})
    return table


def _value(value) -> str:
    if value is None or value == "":
        return NA
    if isinstance(value, str):
        return value.strip() or NA
    if isinstance(value, list):
        return "; ".join(_value(v) for v in value) or NA
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _json_object(text: str):
    text = re.sub(r"```(?:json)?", "", text)
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    candidate = text[start:end + 1]
    for attempt in (candidate, re.sub(r",\s*([}\]])", r"\1", candidate)):
        try:
            value = json.loads(attempt)
            return value if isinstance(value, dict) else None
        except ValueError:
            continue
    return None


def parse_answer(text: str, aspects: list[str]) -> dict[str, str] | None:
    """aspect -> sentence from a JSON object in the answer (code fences, prose around it and
    trailing commas tolerated), else from `aspect: sentence` lines naming known aspects; None
    when the answer is free text. Keys are normalised to the template's aspect names; unknown
    keys are kept (normalised)."""
    known = _key_map(aspects)
    obj = _json_object(text or "")
    if obj is not None:
        out = {}
        for key, value in obj.items():
            name = known.get(norm_key(str(key)), known.get(norm_key(str(key)).replace("_", ""), norm_key(str(key))))
            out[name] = _value(value)
        return out or None
    out = {}
    for line in (text or "").splitlines():
        match = re.match(r"^\s*[-*•]?\s*\**([A-Za-z][A-Za-z _/-]{0,40}?)\**\s*[:=]\s*(.+?)\s*$", line)
        if match:
            name = known.get(norm_key(match.group(1))) or known.get(norm_key(match.group(1)).replace("_", ""))
            if name:
                out[name] = _value(match.group(2).strip().strip('",'))
    return out or None


def render_answer(aspects: dict[str, str]) -> str:
    """The knowledge text written into records: one `aspect: sentence` line per aspect."""
    return "\n".join(f"{key.replace('_', ' ')}: {value}" for key, value in aspects.items())


# ---------------------------------------------------------------- records

def entities_of(record: dict, source: str) -> tuple[str, list[tuple[str, str | None]]]:
    """(the source used, [(entity text, coarse type)]) without repeats, in order of appearance."""
    if source == "auto":
        source = "stage1" if record.get("stage1") is not None else "gold"
    field = "stage1" if source == "stage1" else "entities"
    items = record.get(field)
    if items is None:
        hint = "run `vkel predict --stage 1` first, or use --from gold" if source == "stage1" else "use --from stage1"
        raise VkelError(f"record has no `{field}` ({hint})")
    seen, out = set(), []
    for item in items:
        text = item.get("text") if isinstance(item, dict) else None
        if isinstance(text, str) and text.strip() and text not in seen:
            seen.add(text)
            coarse = item.get("coarse") or (hierarchy.coarse_of(item.get("fine") or "") if item.get("fine") else None)
            out.append((text, coarse))
    return source, out


def sentence_of(record: dict) -> str:
    tokens = record.get("tokens")
    return " ".join(tokens) if tokens else str(record.get("text") or "")


def ask(endpoint: Endpoint, templates: dict, entity: str, coarse: str | None, sentence: str, params: dict):
    completion = endpoint.complete(build_messages(templates, entity, coarse, sentence), **params)
    parsed = parse_answer(completion.text, aspects_for(templates, coarse))
    return completion, parsed


def run(pairs, policy: ErrorPolicy, endpoints: list[Endpoint], templates: dict | None = None,
        source: str = "auto", params: dict | None = None, missing: list | None = None) -> Iterator[dict]:
    """Add `knowledge` to each record of `pairs` ((record, location) pairs), in order, streaming.

    A failure for one entity (after the endpoint's retries) goes to `policy`; in skip/ignore mode
    the record keeps the other answers and gets `meta.errors.knowledge`. Entities left with no
    knowledge at all are appended to `missing` as (record id, entity) and logged at the end."""
    if source not in SOURCES:
        raise VkelError(f"--from must be one of {', '.join(SOURCES)}, not {source!r}")
    templates = templates or load_templates()
    params = params or {}
    missing = [] if missing is None else missing
    pools = Pools(endpoints)

    def plan(item):
        record, _ = item
        try:
            used, entities = entities_of(record, source)
        except VkelError as err:
            return err, []
        sentence = sentence_of(record)
        jobs = [((text, ep.name), pools.submit(ep.name, ask, ep, templates, text, coarse, sentence, params))
                for text, coarse in entities for ep in endpoints]
        return (used, entities), jobs

    def finish(item, context, jobs):
        record, where = item
        if isinstance(context, VkelError):
            _record_error(record, context.message)
            policy.handle(context.at(str(where)))
            return record
        used, entities = context
        knowledge = {text: {} for text, _ in entities}
        aspects = {text: {} for text, _ in entities}
        completions: dict[str, list] = {ep.name: [] for ep in endpoints}
        errors = []
        for (text, llm), future in jobs:
            try:
                completion, parsed = future.result()
            except VkelError as err:
                errors.append(f"no knowledge for entity {text!r}: {err}" if f"LLM {llm!r}" in str(err)
                              else f"no knowledge for entity {text!r} from LLM {llm!r}: {err}")
                continue
            completions[llm].append(completion)
            knowledge[text][llm] = render_answer(parsed) if parsed else completion.text.strip()
            aspects[text][llm] = parsed
        record["knowledge"] = knowledge
        info = meta(record)
        info["knowledge"] = {"from": used, "aspects": aspects}
        info.setdefault("llm_usage", {})["knowledge"] = usage_of(completions)
        missing.extend((record.get("id"), text) for text in knowledge if not knowledge[text])
        for message in errors:
            _record_error(record, message)
            policy.handle(VkelError(message, f"record {record.get('id')!r}"))
        return record

    try:
        yield from fan_out(pairs, plan, finish, limit=4 * pools.capacity)
    finally:
        pools.shutdown()
    if missing:
        shown = ", ".join(f"{rid!r}:{text!r}" for rid, text in missing[:20])
        more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        log(f"{len(missing)} entit{'y has' if len(missing) == 1 else 'ies have'} no knowledge (record:entity): "
            f"{shown}{more}")


def _record_error(record: dict, message: str, stage: str = "knowledge") -> None:
    errors = meta(record).setdefault("errors", {})
    errors[stage] = "; ".join(filter(None, [errors.get(stage), message]))
