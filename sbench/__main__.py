"""`python -m sbench` is the same as the `sbench` console script."""

from sbench.cli import main

raise SystemExit(main())
