"""`python -m syncctl`."""

from syncctl.main import main

main()
