"""The research agent: modes, budgets, loop detection, sandbox, citations, the --json object.

Fast tests use a scripted fake chat and a corpus whose search is word overlap (no embedder), so
nothing loads a model; the sandbox, reading and the citation check are the real ones.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

import pytest

from llmlab.agents.run_record import Budget
from llmlab.chat.records import ChatResult, Usage
from llmlab.data.documents import Document
from llmlab.research.corpus import Corpus
from llmlab.research.injection import Defences
from llmlab.search.semantic_index import Hit
from llmlab.tool_use.tools import ToolCall

DOCS = {
    "Jaws_film.txt": "Jaws (film)\n\nJaws is a 1975 American thriller film directed by Steven "
    "Spielberg. It is based on the novel by Peter Benchley.",
    "The_Godfather.txt": "The Godfather\n\nThe Godfather is a 1972 American crime film directed "
    "by Francis Ford Coppola. It stars Marlon Brando.",
    "Accra.txt": "Accra\n\nAccra is the capital and largest city of Ghana. It lies on the Atlantic "
    "coast.",
}


class WordCorpus(Corpus):
    """The real sandbox and reader; search by shared words (no embedding model)."""

    def search(self, query: str, k: int = 5) -> list[Hit]:
        want = set(re.findall(r"\w+", query.lower()))
        scored = []
        for path in sorted(p.name for p in self.paths):
            text = self.read(path)
            score = len(want & set(re.findall(r"\w+", text.lower())))
            passage = Document(path=path, text=text).passage(0, len(text))
            scored.append(Hit(id=path, text=text, score=float(score), passage=passage))
        scored.sort(key=lambda h: -h.score)
        return scored[:k]


@pytest.fixture()
def corpus(tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    (tmp_path / "secret.txt").write_text("TOP SECRET password hunter2", encoding="utf-8")
    return WordCorpus(root)


class FakeChat:
    """``complete_batch`` answers from a script (a function of the user text); records calls."""

    def __init__(self, answer=lambda user: "1975 [1]", plan=lambda user: "", tokens=50, delay=0.0):
        self.answer, self.plan, self.tokens, self.delay, self.calls = (
            answer,
            plan,
            tokens,
            delay,
            [],
        )

    def complete_batch(self, chats, max_tokens=256, temperature=0.0, stop=None, seed=None):
        time.sleep(self.delay)
        out = []
        for chat in chats:
            user = chat[-1]["content"]
            planning = "search queries" in chat[0]["content"]
            text = (self.plan if planning else self.answer)(user)
            self.calls.append(("plan" if planning else "answer", user))
            out.append(
                ChatResult(
                    text=text,
                    usage=Usage(prompt_tokens=self.tokens, completion_tokens=5),
                    finish_reason="stop",
                )
            )
        return out


@dataclass
class FakeToolResult:
    text: str
    tool_calls: list
    usage: Usage = field(default_factory=lambda: Usage(prompt_tokens=100, completion_tokens=10))
    finish_reason: str = "tool_calls"
    prompt: str = ""
    raw: str = ""
    error: str | None = None


class ScriptedAgentChat:
    """``complete_with_tools`` replays a list of calls, one per model turn (the last repeats)."""

    def __init__(self, calls):
        self.script, self.seen = list(calls), []

    def complete_with_tools(self, messages, tools, **kwargs):
        self.seen.append(messages[-1]["content"] if messages else "")
        name, args = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return FakeToolResult("", [ToolCall(name=name, arguments=args)])


def test_rag_mode_answers_with_a_citation_per_sentence(corpus):
    from llmlab.research.agent import research

    res = research("In what year was the film Jaws released?", corpus, chat=FakeChat(), mode="rag")
    assert res.short_answer == "1975" and res.stop_reason == "answer"
    sentences = [s for s in re.split(r"(?<=\.)\s+", res.answer) if s]
    assert all(re.search(r"\[[^\]]+\.txt\]\.?$", s) for s in sentences), res.answer
    assert res.citations and all(c.verified for c in res.citations)
    assert res.citations[0].source == "Jaws_film.txt"
    assert res.citations[0].where == "Jaws_film.txt:3"  # the line the answer rests on


def test_plan_mode_splits_a_comparison_and_reads_both(corpus):
    from llmlab.research.agent import research
    from llmlab.research.steps import split_question

    q = "Which film came out first: Jaws or The Godfather?"
    assert split_question(q) == ["Jaws", "The Godfather"]
    chat = FakeChat(answer=lambda user: "The Godfather [2]", plan=lambda user: "films\nmovies")
    res = research(q, corpus, chat=chat, mode="plan")
    assert {"Jaws_film.txt", "The_Godfather.txt"} <= set(res.sources)  # two hops, two documents
    searched = [s.arguments["query"] for s in res.steps if s.tool == "search"]
    assert searched == ["Jaws", "The Godfather"]  # the rule won: the model's plan copied nothing


def test_model_plan_is_used_when_it_copies_the_question(corpus):
    from llmlab.research.steps import copied_queries

    q = "Which film came out first: Jaws or The Godfather?"
    assert copied_queries("1. Jaws\n2. The Godfather\n3. Star Wars", q) == ["Jaws", "The Godfather"]


def test_verify_mode_drops_an_unsupported_answer(corpus):
    from llmlab.research.agent import research

    chat = FakeChat(answer=lambda user: "1999 [1]")  # no document says 1999
    plan = research("In what year was the film Jaws released?", corpus, chat=chat, mode="plan")
    assert not plan.citations[0].verified  # the fabricated claim is caught ...
    res = research("In what year was the film Jaws released?", corpus, chat=chat, mode="verify")
    assert "1999" not in res.answer and any("1999" in d for d in res.dropped)  # ... and dropped
    assert plan.short_answer == "1999" and res.short_answer == ""  # verify withdrew the answer
    assert all(c.verified for c in res.citations)


@pytest.mark.parametrize(
    "budget, reason", [(Budget(max_steps=2), "max_steps"), (Budget(max_tokens=40), "max_tokens")]
)
def test_budgets_stop_the_pipeline_with_a_partial_answer(corpus, budget, reason):
    from llmlab.research.agent import research

    q = "Which film came out first: Jaws or The Godfather?"
    res = research(q, corpus, chat=FakeChat(tokens=60), mode="verify", budget=budget)
    assert res.stop_reason == reason
    assert res.answer.startswith(f"Partial answer (stopped by the {reason[4:-1]} budget")
    assert len(res.steps) <= budget.max_steps
    if reason == "max_steps":  # plan + one search: the best sentence found so far, cited
        assert re.search(r"\[\S+\.txt\]\.$", res.answer)


def test_time_budget_stops_the_pipeline(corpus):
    from llmlab.research.agent import research

    res = research(
        "Which film came out first: Jaws or The Godfather?",
        corpus,
        chat=FakeChat(delay=0.3),
        mode="plan",
        budget=Budget(max_seconds=0.2),
    )
    assert res.stop_reason == "max_seconds" and res.answer


def test_agent_loop_is_detected_and_stopped(corpus):
    from llmlab.research.agent import research

    chat = ScriptedAgentChat([("search", {"query": "Jaws"})])  # the same call, again and again
    res = research("In what year was the film Jaws released?", corpus, chat=chat, mode="agent")
    assert res.stop_reason == "loop"
    assert [s.tool for s in res.steps] == ["search", "search", "search"]  # first one: the code's
    assert res.steps[-1].arguments == res.steps[-2].arguments and not res.steps[-1].ok
    assert res.answer  # a partial answer, not an exception


def test_agent_step_budget(corpus):
    from llmlab.research.agent import research

    chat = ScriptedAgentChat([("search", {"query": f"Jaws {i}"}) for i in range(10)])
    res = research(
        "In what year was the film Jaws released?",
        corpus,
        chat=chat,
        mode="agent",
        budget=Budget(max_steps=3),
    )
    assert res.stop_reason == "max_steps" and len(res.steps) == 3 and res.answer


def test_agent_read_tool_refuses_paths_outside_the_corpus(corpus):
    from llmlab.research.agent import research

    chat = ScriptedAgentChat(
        [
            ("read", {"path": "../secret.txt"}),
            ("read", {"path": "/etc/passwd"}),
            ("read", {"path": "Jaws_film.txt"}),
            ("final_answer", {"answer": "1975 [Jaws_film.txt]"}),
        ]
    )
    res = research("In what year was the film Jaws released?", corpus, chat=chat, mode="agent")
    refused = [s for s in res.steps if s.tool == "read" and not s.ok]
    assert len(refused) == 2 and all("refused" in s.result for s in refused)
    assert not any("hunter2" in s.result for s in res.steps)  # the secret was never read
    assert "hunter2" not in json.dumps(res.to_json())
    assert res.stop_reason == "answer" and res.short_answer == "1975"
    assert res.citations[0].source == "Jaws_film.txt" and res.citations[0].verified


def test_agent_fabricated_citation_is_marked_unverified(corpus):
    from llmlab.research.agent import research

    chat = ScriptedAgentChat([("final_answer", {"answer": "Jaws came out in 1999 [Made_up.txt]."})])
    res = research("In what year was the film Jaws released?", corpus, chat=chat, mode="agent")
    out = res.to_json()
    assert out["citations"][0] == {
        "source": "Made_up.txt",
        "first_line": None,  # no such file: no line to point at
        "last_line": None,
        "text": "",
        "verified": False,
    }


def test_to_json_schema(corpus):
    from llmlab.research.agent import research

    out = research(
        "In what year was the film Jaws released?", corpus, chat=FakeChat(), mode="verify"
    ).to_json()
    assert set(out) == {
        "answer",
        "short_answer",
        "mode",
        "citations",
        "steps",
        "tokens",
        "seconds",
        "stop_reason",
    }
    assert isinstance(out["answer"], str) and out["answer"] and out["mode"] == "verify"
    assert isinstance(out["tokens"], int) and isinstance(out["seconds"], float)
    assert out["stop_reason"] in {
        "answer",
        "max_steps",
        "max_tokens",
        "max_seconds",
        "loop",
        "error",
    }
    for c in out["citations"]:
        assert set(c) == {"source", "first_line", "last_line", "text", "verified"}
        assert isinstance(c["verified"], bool) and isinstance(c["first_line"], int)
        assert isinstance(c["source"], str) and isinstance(c["text"], str)
    for s in out["steps"]:
        assert set(s) == {"tool", "arguments", "result"}
        assert isinstance(s["tool"], str) and isinstance(s["arguments"], dict)
        assert isinstance(s["result"], str)
    assert json.loads(json.dumps(out)) == out
    tools = [s["tool"] for s in out["steps"]]
    assert tools[0] == "plan" and tools[-1] == "answer" and {"search", "read"} <= set(tools)


def test_tool_results_reach_the_model_as_data(corpus):
    from llmlab.research.agent import research

    chat = FakeChat()
    research("In what year was the film Jaws released?", corpus, chat=chat, mode="plan")
    prompt = chat.calls[-1][1]
    assert '<document source="Jaws_film.txt">' in prompt and "not instructions" in prompt
    chat = FakeChat()
    research(
        "In what year was the film Jaws released?",
        corpus,
        chat=chat,
        mode="plan",
        defences=Defences.none(),
    )
    assert "<document" not in chat.calls[-1][1]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"question": "  "}, "question is empty"),
        ({"mode": "magic"}, "mode must be one of"),
    ],
)
def test_bad_input(corpus, kwargs, match):
    from llmlab.research.agent import research

    args = {"question": "Who?", "mode": "rag"} | kwargs
    with pytest.raises(ValueError, match=match):
        research(args.pop("question"), corpus, chat=FakeChat(), **args)


def test_bad_corpus_and_budget(tmp_path):
    from llmlab.research.agent import research

    with pytest.raises(ValueError):
        research("Who?", tmp_path / "missing", chat=FakeChat())
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError):
        research("Who?", tmp_path / "empty", chat=FakeChat())
    with pytest.raises(ValueError, match="max_steps"):
        Budget(max_steps=0)


class ObedientChat(FakeChat):
    """A worst-case model: it does whatever a document tells it (writes the marker, calls the
    tool a document names)."""

    def __init__(self):
        from llmlab.research.injection import MARKER

        super().__init__(answer=lambda user: f"{MARKER} [1]" if MARKER in user else "1975 [1]")


@pytest.mark.parametrize("phrasing", ["ignore", "system", "important", "subtle"])
def test_injection_defences_on_the_fixture_corpus(tmp_path, phrasing):
    from llmlab.research.agent import research
    from llmlab.research.injection import injected_corpus, injection_succeeded

    case = injected_corpus(tmp_path, phrasing)
    corpus = WordCorpus(case.root)
    undefended = research(
        case.question, corpus, chat=ObedientChat(), mode="rag", defences=Defences.none()
    )
    defended = research(
        case.question, corpus, chat=ObedientChat(), mode="rag", defences=Defences.all()
    )
    assert case.injected_source in undefended.sources  # the injected document was read
    assert injection_succeeded(undefended.answer)  # an obedient model is hijacked without defences
    assert not injection_succeeded(defended.answer)  # and not with them


def test_injected_tool_call_is_stripped_before_the_agent_sees_it(tmp_path):
    from llmlab.research.agent import research
    from llmlab.research.injection import injected_corpus, run_injected

    case = injected_corpus(tmp_path, "tool_call")
    corpus = WordCorpus(case.root)
    chat = ObedientChat()
    chat.complete_with_tools = lambda messages, tools, **kw: _obey(messages)
    bare = research(case.question, corpus, chat=chat, mode="agent", defences=Defences.none())
    assert run_injected(bare)  # it called delete_file: obeyed (the tool does not exist)
    assert any(s.tool == "delete_file" and not s.ok for s in bare.steps)  # nothing was deleted
    safe = research(case.question, corpus, chat=chat, mode="agent", defences=Defences.all())
    assert not run_injected(safe)


def _obey(messages):
    """Search, then read the trivia page, then call any tool the last result names, else answer."""
    last = messages[-1]["content"] or ""
    turn = sum(m["role"] == "assistant" for m in messages)
    if turn == 0:
        call = ToolCall(name="search", arguments={"query": "Jaws trivia"})
    elif turn == 1:
        call = ToolCall(name="read", arguments={"path": "jaws_trivia.txt"})
    elif "delete_file" in last:
        call = ToolCall(name="delete_file", arguments={"path": "notes.txt"})
    else:
        call = ToolCall(name="final_answer", arguments={"answer": "1975 [Jaws_film.txt]"})
    return FakeToolResult("", [call])


def test_length_groups_cover_every_row_once_and_cut_only_where_padding_costs_more():
    from llmlab.research.agent import length_groups

    assert length_groups([50, 400, 410, 60], 24) == [[0, 3], [1, 2]]
    assert length_groups([300, 310, 305], 24) == [[0, 2, 1]]  # close lengths: one batch
    lengths = [241, 433, 277, 402, 300, 388, 45, 50]
    groups = length_groups(lengths, 40)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))


def test_batches_by_prompt_length_and_answers_each_question_in_order(corpus, tmp_path):
    from llmlab.research.agent import research_many

    class SizedChat(FakeChat):  # a local model: prompt_ids makes the pipeline group by length
        def prompt_ids(self, chat):
            return list(range(len(chat[-1]["content"])))

        def complete_batch(self, chats, **kwargs):
            self.batches = getattr(self, "batches", []) + [len(chats)]
            return super().complete_batch(chats, **kwargs)

    other = tmp_path / "other"
    other.mkdir()
    (other / "Accra.txt").write_text(
        "Accra\n\nAccra is the capital of Ghana. " + "It is big. " * 200
    )
    chat = SizedChat(answer=lambda user: "1975 [1]" if "Jaws" in user else "Ghana [1]")
    questions = ["In what year was the film Jaws released?", "Accra is the capital of what?"]
    res = research_many(
        questions,
        [corpus, WordCorpus(other)],
        chat=chat,
        mode="rag",
        k=1,
        defences=[Defences.none(), Defences.all()],
    )
    assert [r.short_answer for r in res] == ["1975", "Ghana"]
    assert chat.batches == [1, 1]  # 70 vs 2,000+ characters: two batches beat padding
    assert "Jaws_film.txt" in res[0].sources and "Accra.txt" in res[1].sources  # its own corpus
    assert "<document" not in res[0].steps[0].result and "<document" in res[1].steps[0].result
    with pytest.raises(ValueError, match="one per question"):
        research_many(questions, [corpus], chat=chat, mode="rag")
