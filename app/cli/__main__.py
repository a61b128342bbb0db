"""``python -m app.cli``: the same as the ``phantomchain`` console script."""

from app.cli import main

main()
