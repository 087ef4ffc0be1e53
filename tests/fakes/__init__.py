"""Fakes for the outside world that tests talk to over real I/O (see provider.py)."""
