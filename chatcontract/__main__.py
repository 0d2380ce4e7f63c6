"""``python -m chatcontract``."""

from chatcontract.cli import main

main()
