"""`vkel vote`: reconcile the knowledge of several LLMs into `visual_knowledge[entity]`.

--method llm (default): per entity and aspect, a voter LLM reads the n answers and returns the
value they agree on (soft voting: paraphrases agree; a lone claim is dropped; N/A when they
disagree); then one summary call condenses the voted aspects into a short appearance description.
--method majority: offline, no LLM: per aspect the answer most similar to the others (token
overlap) wins, and the summary joins the voted aspects.

Obvious cases skip the voter (all N/A, one lone claim, identical answers, a single source), which
saves tokens and makes them deterministic. `meta.vote.votes[entity][aspect]` keeps the votes.
"""

from __future__ import annotations

import re
from typing import Iterator

from ..core import hierarchy
from ..core.errors import ErrorPolicy, VkelError
from .ask import NA, _json_object, _record_error, load_templates, parse_answer, sentence_of
from .llm.base import Endpoint
from .llm.ledger import usage_of
from .llm.parallel import Pools, fan_out
from ..core.records import meta

METHODS = ("llm", "majority")
MIN_AGREEMENT = 0.2  # majority: the winner must share this much (Jaccard) with another answer
DESCRIPTION = "description"  # the aspect of a free-text answer

_STOP = set("a an the of and or in on at to is are was were be with its it his her their this that for as by "
            "from usually often typically has have who which".split())


def is_na(value: str | None) -> bool:
    return value is None or re.sub(r"[^a-z]", "", value.lower()) in ("", "na", "none", "unknown", "notapplicable")


def tokens(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower())) - _STOP


def similarity(a: str, b: str) -> float:
    ta, tb = tokens(a), tokens(b)
    return len(ta & tb) / len(ta | tb) if ta | tb else float(a.strip().lower() == b.strip().lower())


def _obvious(values: list[str | None]) -> str | None:
    """The vote when no judgement is needed, else None."""
    claims = [v for v in values if not is_na(v)]
    if not claims:
        return NA
    if len(values) == 1:
        return claims[0]  # a single source: nothing to vote against
    if len(claims) == 1:
        return NA  # a lone claim is dropped
    if len({c.strip().lower() for c in claims}) == 1 and len(claims) == len(values):
        return claims[0]
    return None


def majority(values: list[str | None], min_agreement: float = MIN_AGREEMENT) -> str:
    """The claim with the highest total token overlap with the other claims (the earliest on a tie);
    N/A when it shares less than `min_agreement` with every other claim."""
    obvious = _obvious(values)
    if obvious is not None:
        return obvious
    claims = [v.strip() for v in values if not is_na(v)]
    best, best_score, best_support = None, -1.0, 0.0
    for i, claim in enumerate(claims):
        sims = [similarity(claim, other) for j, other in enumerate(claims) if j != i]
        if sum(sims) > best_score:
            best, best_score, best_support = claim, sum(sims), max(sims)
    return best if best_support >= min_agreement else NA


def join_summary(votes: dict[str, str]) -> str:
    parts = [f"{aspect.replace('_', ' ')}: {value}" for aspect, value in votes.items() if not is_na(value)]
    return "; ".join(parts) if parts else NA


# ---------------------------------------------------------------- reading the knowledge

def _coarse_of(record: dict, entity: str) -> str | None:
    for field in ("stage1", "entities", "predictions"):
        for item in record.get(field) or []:
            if isinstance(item, dict) and item.get("text") == entity:
                return item.get("coarse") or hierarchy.coarse_of(item.get("fine") or "")
    return None


def _all_aspects(templates: dict) -> list[str]:
    names = ["fine_type"]
    for table in templates["types"].values():
        names += [a for a in table["aspects"] if a not in names]
    return names


def answers_of(record: dict, entity: str, templates: dict) -> dict[str, dict[str, str]]:
    """llm -> aspect -> sentence, from meta.knowledge.aspects when `vkel knowledge` left it, else
    parsed from the knowledge text; a free-text answer is one `description` aspect."""
    stored = ((meta(record).get("knowledge") or {}).get("aspects") or {}).get(entity) or {}
    out = {}
    for llm, text in (record.get("knowledge") or {}).get(entity, {}).items():
        parsed = stored.get(llm) if isinstance(stored.get(llm), dict) else parse_answer(text, _all_aspects(templates))
        out[llm] = parsed or {DESCRIPTION: str(text).strip()}
    return out


def aspect_table(answers: dict[str, dict[str, str]]) -> dict[str, list[str | None]]:
    """aspect -> the n answers' values (None where an LLM did not answer that aspect)."""
    order: list[str] = []
    for parsed in answers.values():
        order += [a for a in parsed if a not in order]
    return {aspect: [parsed.get(aspect) for parsed in answers.values()] for aspect in order}


# ---------------------------------------------------------------- the LLM voter

VOTE_SYSTEM = "You reconcile the answers of several language models. You answer with JSON only."
SUMMARY_SYSTEM = "You write short, concrete visual descriptions."


def vote_messages(entity: str, coarse: str | None, sentence: str, aspect: str, values: list[str | None]) -> list[dict]:
    listed = "\n".join(f"{i}. {NA if is_na(v) else v}" for i, v in enumerate(values, 1))
    text = (f'{len(values)} models described the {aspect.replace("_", " ")} of "{entity}" ({coarse or "entity"}), '
            f"mentioned in: {sentence}\n\nAnswers:\n{listed}\n\n"
            "Vote on these answers. Answers that mean the same thing agree, even in other words (synonyms, "
            "paraphrases, more or less detail). Return the value that most answers agree on, as one short sentence. "
            'If only one answer makes a claim, or the answers contradict each other, the value is "N/A".\n'
            'Answer with one JSON object: {"value": "..."}')
    return [{"role": "system", "content": VOTE_SYSTEM}, {"role": "user", "content": text}]


def summary_messages(entity: str, coarse: str | None, votes: dict[str, str]) -> list[dict]:
    facts = "\n".join(f"- {a.replace('_', ' ')}: {v}" for a, v in votes.items() if not is_na(v))
    text = (f'What is known about how "{entity}" ({coarse or "entity"}) looks:\n{facts}\n\n'
            "Write one short description (at most two sentences) of its appearance that would help someone find it "
            "in a picture. Answer with the description only.")
    return [{"role": "system", "content": SUMMARY_SYSTEM}, {"role": "user", "content": text}]


def parse_vote(text: str) -> str:
    obj = _json_object(text or "")
    if obj is not None and "value" in obj:
        value = obj["value"]
        return NA if is_na(str(value)) else str(value).strip()
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    return NA if is_na(line) else line.strip('"')


def vote_entity(voter: Endpoint, entity: str, coarse: str | None, sentence: str,
                answers: dict[str, dict[str, str]], params: dict):
    """(votes, summary, completions) for one entity with the LLM voter."""
    completions, votes = [], {}
    for aspect, values in aspect_table(answers).items():
        value = _obvious(values)
        if value is None:
            completion = voter.complete(vote_messages(entity, coarse, sentence, aspect, values), **params)
            completions.append(completion)
            value = parse_vote(completion.text)
        votes[aspect] = value
    if all(is_na(v) for v in votes.values()):
        return votes, NA, completions
    completion = voter.complete(summary_messages(entity, coarse, votes), **params)
    completions.append(completion)
    return votes, completion.text.strip() or join_summary(votes), completions


def run(pairs, policy: ErrorPolicy, method: str = "llm", voter: Endpoint | None = None,
        templates: dict | None = None, params: dict | None = None) -> Iterator[dict]:
    """Add `visual_knowledge` (and meta.vote) to each record of `pairs`, in order, streaming."""
    if method not in METHODS:
        raise VkelError(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
    if method == "llm" and voter is None:
        raise VkelError("--method llm needs a voter LLM (--voter NAME with --llm-config/--llm)")
    templates = templates or load_templates()
    params = params or {}
    pools = Pools([voter]) if method == "llm" else None

    def plan(item):
        record, _ = item
        sentence = sentence_of(record)
        jobs = []
        for entity, by_llm in (record.get("knowledge") or {}).items():
            if not by_llm:
                continue  # no LLM answered for it (see meta.errors.knowledge)
            answers = answers_of(record, entity, templates)
            coarse = _coarse_of(record, entity)
            if method == "majority":
                jobs.append((entity, _done(_majority_entity(answers))))
            else:
                jobs.append((entity, pools.submit(voter.name, vote_entity, voter, entity, coarse, sentence,
                                                  answers, params)))
        return None, jobs

    def finish(item, _context, jobs):
        record, _ = item
        visual, votes, completions = {}, {}, []
        for entity, future in jobs:
            try:
                votes[entity], visual[entity], used = future.result()
            except VkelError as err:
                message = f"no visual knowledge for entity {entity!r}: {err}"
                _record_error(record, message, "vote")
                policy.handle(VkelError(message, f"record {record.get('id')!r}"))
                continue
            completions += used
        record["visual_knowledge"] = visual
        info = meta(record)
        info["vote"] = {"method": method, **({"voter": voter.name} if method == "llm" else {}), "votes": votes}
        if method == "llm":
            info.setdefault("llm_usage", {})["vote"] = usage_of({voter.name: completions})
        return record

    try:
        yield from fan_out(pairs, plan, finish, limit=4 * (pools.capacity if pools else 1))
    finally:
        if pools:
            pools.shutdown()


def _majority_entity(answers: dict[str, dict[str, str]]):
    votes = {aspect: majority(values) for aspect, values in aspect_table(answers).items()}
    return votes, join_summary(votes), []


def _done(value):
    from concurrent.futures import Future

    future = Future()
    future.set_result(value)
    return future
