"""`python -m trainops ...`: the operator CLI."""

from trainops.cli import main

raise SystemExit(main())
