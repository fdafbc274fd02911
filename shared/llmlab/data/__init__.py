"""Data: the text the lessons and the apps read.

- ``datasets``: every bundled data set by name (STS-B, Wikipedia leads, the Python docs and
  FAQ, the research questions).
- ``documents``: the vocabulary: a ``Document`` (a file's text) and a ``Passage`` (a piece of
  it with its offsets and lines: what an index stores and an answer cites).
- ``readers``: a file of a docs folder read as a ``Document``, or the reason it is skipped.
- ``paragraphs``: a folder of notes cut into paragraph ``Passage``s (Phase 1).
- ``headings``: where the sections of reST and Markdown text start.

No models: builds on ``runtime`` only for the cache folder.
"""
