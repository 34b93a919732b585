"""`python -m bot console|telegram|slack`."""

from bot.cli import main

raise SystemExit(main())
