"""`python -m hub.cli` runs the `sovhub` command."""

from hub.cli.entry import main

main()
