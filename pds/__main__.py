"""`python -m pds` runs the CLI."""

from pds.cli import main

main()
