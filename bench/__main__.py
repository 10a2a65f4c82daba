"""``python -m bench`` runs the same CLI as the ``bench`` console script."""

from bench.cli.main import main

raise SystemExit(main())
