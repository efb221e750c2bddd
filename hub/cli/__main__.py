"""`python -m hub.cli` runs the `sovhub` command."""

from hub.cli.main import main

main()
