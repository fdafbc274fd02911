"""Data: the text the lessons and the apps read.

- ``datasets``: every bundled data set by name (STS-B, Wikipedia leads, the Python docs and
  FAQ, the research questions).
- ``readers``: a file of a docs folder read as text (``Document``), or the reason it is skipped.
- ``paragraphs``: a folder of notes cut into paragraphs with file and line numbers (Phase 1).
- ``headings``: where the sections of reST and Markdown text start.

No models: builds on ``runtime`` only for the cache folder.
"""
