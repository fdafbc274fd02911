"""Views: how llmlab shows things, kept apart from the logic they show.

One module per view: self-contained HTML/SVG/JS pages (they render offline: no CDN, no URLs),
matplotlib figures, terminal bars and ipywidgets apps. A view takes the data a logic module
returns and draws it; it never computes model outputs itself.
"""
