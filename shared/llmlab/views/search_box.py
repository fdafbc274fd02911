"""A search box (ipywidgets): semantic and BM25 hits side by side, on a corpus you choose.

``side_by_side(query, index, k)`` is the logic the box calls (testable without widgets);
``SearchBox(corpora)`` is the widget: a text box, a corpus dropdown, a ``k`` slider and two
result columns. The BM25 index of a corpus is built the first time it is searched.
Leaves out: hybrid ranking (Phase 4) and highlighting matched words.
"""

from __future__ import annotations

from collections.abc import Mapping

from llmlab.search.bm25 import BM25Index
from llmlab.search.folder_index import format_hit
from llmlab.search.semantic_index import Hit, SemanticIndex


def keyword_twin(index: SemanticIndex) -> BM25Index:
    """A BM25 index over the same texts, ids and metadata as ``index``."""
    bm25 = BM25Index()
    bm25.add(index.texts, ids=index.ids, metadata=index.metadata)
    return bm25


def side_by_side(
    query: str, index: SemanticIndex, k: int = 3, bm25: BM25Index | None = None
) -> tuple[list[Hit], list[Hit]]:
    """Semantic hits and BM25 hits for the same query over the same texts."""
    bm25 = keyword_twin(index) if bm25 is None else bm25
    return index.search(query, k=k), bm25.search(query, k=k)


class SearchBox:
    """``SearchBox({"help centre": index, "your notes": notes_index}).widget`` -> display it."""

    def __init__(
        self, corpora: Mapping[str, SemanticIndex], query: str = "", width: int = 70
    ) -> None:
        import ipywidgets as widgets

        if not corpora:
            raise ValueError("SearchBox needs at least one corpus: {'name': SemanticIndex, ...}.")
        self.corpora = dict(corpora)
        self.keyword: dict[str, BM25Index] = {}  # built on first use
        self.width = width
        self.box = widgets.Text(
            value=query,
            description="Search:",
            continuous_update=False,
            layout=widgets.Layout(width="70%"),
        )
        self.corpus = widgets.Dropdown(options=list(self.corpora), description="Corpus:")
        self.k = widgets.IntSlider(value=3, min=1, max=10, description="k:")
        self.semantic_out, self.keyword_out = widgets.Output(), widgets.Output()
        for w in (self.box, self.corpus, self.k):
            w.observe(self.run, names="value")
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.box, self.corpus]),
                self.k,
                widgets.HBox(
                    [self.semantic_out, self.keyword_out], layout=widgets.Layout(width="100%")
                ),
            ]
        )

    def search(self, query: str, corpus: str, k: int = 3) -> tuple[list[Hit], list[Hit]]:
        """What the box shows for ``query`` on ``corpus``: (semantic hits, BM25 hits)."""
        if corpus not in self.keyword:
            self.keyword[corpus] = keyword_twin(self.corpora[corpus])
        return side_by_side(query, self.corpora[corpus], k, self.keyword[corpus])

    def run(self, _change: object = None) -> None:
        """Search with the box's current query, corpus and k, and show both columns."""
        for out in (self.semantic_out, self.keyword_out):
            out.clear_output()
        if not self.box.value.strip():
            return
        semantic, keyword = self.search(self.box.value, self.corpus.value, self.k.value)
        with self.semantic_out:
            print("SEMANTIC")
            for rank, hit in enumerate(semantic, start=1):
                print(format_hit(rank, hit, width=self.width))
        with self.keyword_out:
            print("KEYWORD (BM25)")
            for rank, hit in enumerate(keyword, start=1):
                print(format_hit(rank, hit, width=self.width))
            if not keyword:
                print("(no document shares a word with the query)")
