"""`python -m acudevice.cli`."""

from acudevice.cli.main import main

main()
