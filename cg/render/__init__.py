"""Stage 6, render: every way a result is shown. `table.py` the terminal table and JSON,
`export.py` CSV, Markdown, LaTeX and the notebook display, `draw.py` the pictures (DOT,
Mermaid, SVG, PNG, HTML) with `clusters.py` for composites, `diagnostics.py` the error
reports (human, plain, JSON, GitHub), `reports.py` the text of edges, Jacobians and paths."""
