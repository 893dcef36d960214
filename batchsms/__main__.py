"""``python -m batchsms``: the same as the ``batchsms`` command."""

from .cli import main

main()
