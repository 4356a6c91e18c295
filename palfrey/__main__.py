"""`python -m palfrey` and the `palfrey` console script."""

from __future__ import annotations

from palfrey.cli import main

if __name__ == "__main__":
    main(prog_name="palfrey")
