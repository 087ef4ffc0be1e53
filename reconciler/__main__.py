"""`python -m reconciler` runs the `llm-registry` command."""

from reconciler.cli import main

if __name__ == "__main__":
    main()
