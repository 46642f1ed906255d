"""ipywidgets explorers used by the chapters (one module per part of the book).

Every explorer is paired with a static figure in its chapter, because widgets do not
recompute in the static book. Explorers are functions that return the widget; the
figure they draw comes from a plain function that the static figure reuses.
"""
