"""Tests for llmlab.rag.answer_checks: a generated sentence is kept only if a passage supports it."""

from __future__ import annotations

from types import SimpleNamespace

from llmlab.data.documents import Document
from llmlab.rag.answer_checks import (
    check_answer,
    check_citations,
    cut_at_boundary,
    exact_terms,
    segments,
    support,
)

CERTS = Document(
    path="https-certificates.md",
    text=(
        "# HTTPS Certificates\n\n"
        "By default, pip verifies certificates with its bundled store.\n\n"
        "## Using a specific certificate store\n\n"
        "The `--cert` option (and the corresponding `PIP_CERT` environment variable) allow\n"
        "users to specify a different certificate store/bundle for pip to use.\n\n"
        "## Using system certificate stores\n\n"
        "Use the truststore feature to use the system store.\n"
    ),
)


def hits(*docs):
    return [SimpleNamespace(passage=d.passage(0, len(d.text))) for d in docs]


def test_check_citations_removes_unretrieved_passages():
    assert check_citations("Yes [1][7].", 3) == ("Yes [1].", [7])
    assert check_citations("A [2, 9] and B [0].", 3) == ("A [2] and B.", [9, 0])
    assert check_citations("Run python -m venv .venv [1].", 1)[0] == "Run python -m venv .venv [1]."


def test_exact_terms_are_what_a_paraphrase_may_not_change():
    assert exact_terms("Use the `--cert-bundle` flag with pip.") == {"--cert-bundle"}
    assert exact_terms("Put it in ~/.netrc and run pip freeze -h [1].") == {"~/.netrc", "-h"}
    assert exact_terms("Requests uses certifi since 2.16.") >= {"2.16"}


def test_an_invented_flag_is_unsupported_and_the_real_one_supported():
    text = CERTS.text
    assert support("Use the --cert option to give pip a certificate bundle.", text) >= 0.5
    assert support("Use the --cert-bundle option to give pip a certificate bundle.", text) == 0.0


def test_check_answer_cites_the_supporting_lines_and_drops_the_rest():
    answer = (
        "Use the --cert option to point pip at a certificate bundle [1]. "
        "You can also install a proxy server that supports pip [1]."
    )
    checked, checks, lines = check_answer(answer, hits(CERTS), lambda s: CERTS)
    assert [c.supported for c in checks] == [True, False]
    assert checked == "Use the --cert option to point pip at a certificate bundle [1]."
    (where,) = lines
    assert (where.first_line, where.last_line) == (7, 8)  # the --cert lines, not the heading
    assert "proxy" not in checked


def test_an_uncited_sentence_gets_the_lines_that_support_it():
    checked, checks, lines = check_answer(
        "The PIP_CERT environment variable also works.", hits(CERTS), lambda s: CERTS
    )
    assert checks[0].added and checks[0].supported and checked.endswith("[1].")
    assert "PIP_CERT" in lines[0].text


def test_segments_keep_a_code_block_whole_and_cut_at_boundary():
    text = "Run this:\n\n```bash\npip install x\n\npip list\n```\n\nThen it works. Yes."
    parts = [text[a:b].strip() for a, b in segments(text)]
    assert parts == [
        "Run this:",
        "```bash\npip install x\n\npip list\n```",
        "Then it works.",
        "Yes.",
    ]
    assert cut_at_boundary("Use copy().\n```python\nx = y.co") == "Use copy()."
    assert cut_at_boundary("Use copy() [1]. Then you can do the thing that") == "Use copy() [1]."
    assert (
        cut_at_boundary("Done.") == "Done." and cut_at_boundary("no end at all") == "no end at all"
    )


def test_a_lead_in_left_alone_is_dropped_with_its_citation():
    """ "...use the --cert option as follows:" with the code block cut off: nothing is shown, so
    nothing is cited (a citation never hangs on an empty answer)."""
    text = "To use a specific certificate bundle, use the --cert option as follows:"
    checked, checks, lines = check_answer(text, hits(CERTS), lambda s: CERTS)
    assert [c.supported for c in checks] == [True]  # the sentence itself is supported
    assert checked == "" and lines == []
