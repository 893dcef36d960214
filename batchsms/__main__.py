"""``python -m batchsms``: the same as the ``batchsms`` command."""

from .cli import run

if __name__ == "__main__":  # helper processes re-import the main module: never run the CLI twice
    run()
