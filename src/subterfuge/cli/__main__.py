"""`python -m subterfuge.cli` runs the command line."""

from subterfuge.cli.main import main

main()
