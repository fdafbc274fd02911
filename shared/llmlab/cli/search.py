"""``llmlab search FOLDER "query" [-k 5] [--rebuild]``: semantic search over a folder of notes.

Bad input (a folder that is missing, not a folder, or has no .md/.txt files; an empty query;
``-k`` below 1) is one line on stderr and exit code 2, checked before the model loads. A query
longer than the embedder reads (256 tokens, about 1,000 characters of English) is searched with
the part the model reads, and one warning line says where it was cut.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from llmlab.cli.errors import ArgumentParser, run

FLAGS = {"k (the number of results)": "-k"}  # library wording -> the flag the learner typed
SNIPPET = 40  # characters of the cut point shown in the long-query warning


def warn(message: str) -> None:
    """One warning line on stderr, in the same shape as the errors."""
    print(f"llmlab search: warning: {' '.join(str(message).split())}", file=sys.stderr)


def long_query_warning(query: str, model) -> str | None:
    """The warning for a query the embedder cuts, or None if it reads all of it."""
    from llmlab.search.embeddings import text_read, token_count

    read = text_read(query, model).rstrip()
    if len(read) >= len(query.rstrip()):
        return None
    tail = " ".join(read[-SNIPPET:].split())
    return (
        f"the query is {len(query):,} characters ({token_count(query, model):,} tokens) but the "
        f"embedding model reads at most {model.max_seq_length} tokens, so only its first "
        f"{len(read):,} characters were searched for (up to ...{tail!r})."
    )


def search(args: argparse.Namespace) -> int:
    from llmlab.search.folder_index import check_folder, format_hit, index_folder
    from llmlab.search.semantic_index import check_query

    check_query(args.query, args.k)  # empty query, bad -k: before anything slow
    check_folder(args.path)  # missing, a file, no notes: before the model loads
    from transformers.utils import logging as hf_logging

    from llmlab.search.embeddings import default_embedder

    hf_logging.disable_progress_bar()  # no "Loading weights" bar in a terminal tool
    model = default_embedder()
    note = long_query_warning(args.query, model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index, rebuilt = index_folder(args.path, model, rebuild=args.rebuild)
    for w in caught:  # e.g. "the cached index cannot be used (...); rebuilding it"
        warn(str(w.message))
    if note:
        warn(note)
    hits = index.search(args.query, k=args.k)
    files = len({m["source"] for m in index.metadata})
    state = "built" if rebuilt else "cached"
    print(f"{len(index)} passages from {files} files ({state} index, model {index.model_name})\n")
    for rank, hit in enumerate(hits, start=1):
        print(format_hit(rank, hit))
    return 0


def cli(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="llmlab search",
        description="Semantic search over the .md/.txt files of a folder (indexed by paragraph, cached).",
    )
    parser.add_argument("path", help="folder of .md/.txt notes")
    parser.add_argument("query", help="what to look for, in your own words")
    parser.add_argument("-k", type=int, default=5, help="number of results (default: 5)")
    parser.add_argument(
        "--rebuild", action="store_true", help="ignore the cached index and rebuild it"
    )
    return run("search", lambda: search(parser.parse_args(argv)), FLAGS)
